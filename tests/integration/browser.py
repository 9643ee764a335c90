"""Headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ending in NUL on file descriptors 3 and 4), with no client library.

``Chromium.start()`` launches the browser; ``open_page(url)`` loads a page in a fixed-width
viewport and collects its console errors; ``Page.screenshot()``, ``Page.evaluate()`` and
``Page.chart_boxes()`` read it back. ``python tests/integration/browser.py PAGE.html OUT.png``
saves a screenshot of any page. docs/report.png is the screenshot test_report_browser.py takes of
the report of its real inputs: ``LLEM_DOCS_SCREENSHOT=docs/report.png pytest
tests/integration/test_report_browser.py`` writes it there.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")
TIMEOUT_S = 120.0  # per protocol call: a loaded 2-core machine can be very slow to start a browser
WIDTH = 1280
LAUNCHER = """
import fcntl, os, sys
ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
for fd in sys.argv[1:3]:
    os.close(int(fd))
for target, fd in zip((3, 4), ends):
    os.dup2(fd, target)
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str | None:
    """``$LLEM_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    if os.environ.get("LLEM_CHROMIUM"):
        return os.environ["LLEM_CHROMIUM"]
    return next((found for name in NAMES if (found := shutil.which(name))), None)


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One browser process and its protocol pipe."""

    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int, profile: str) -> None:
        self.process, self.to_browser, self.from_browser, self.profile = process, to_browser, from_browser, profile
        self.buffer = b""
        self.next_id = 0
        self.responses: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    @classmethod
    def start(cls, binary: str) -> Chromium:
        profile = tempfile.mkdtemp(prefix="llem-chromium-")
        commands_r, commands_w = os.pipe()
        replies_r, replies_w = os.pipe()
        # A small launcher puts the pipe ends on fds 3 and 4, where Chromium expects them (moving them
        # out of the way first: either may already be 3 or 4), then becomes Chromium.
        process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(commands_r), str(replies_w), binary, *FLAGS,
                                    f"--user-data-dir={profile}", "about:blank"], pass_fds=(commands_r, replies_w),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        os.close(commands_r)
        os.close(replies_w)
        browser = cls(process, commands_w, replies_r, profile)
        browser.call("Browser.getVersion")  # the pipe works
        return browser

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = TIMEOUT_S) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data):]
        deadline = time.monotonic() + timeout
        while ident not in self.responses:
            self._read(deadline, method)
        reply = self.responses.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, session: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event.get("params", {})
            seen = len(self.events)
            self._read(deadline, method)

    def _read(self, deadline: float, waiting_for: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrowserError(f"{waiting_for}: no answer from Chromium in time")
        ready, _, _ = select.select([self.from_browser], [], [], left)
        if not ready:
            return
        chunk = os.read(self.from_browser, 1 << 20)
        if not chunk:
            raise BrowserError(f"{waiting_for}: Chromium closed the pipe (exit {self.process.poll()})")
        *messages, self.buffer = (self.buffer + chunk).split(b"\0")
        for raw in messages:
            message = json.loads(raw)
            if "id" in message:
                self.responses[message["id"]] = message
            else:
                self.events.append(message)

    def open_page(self, url: str, height: int = 900) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, first_event=len(self.events))
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        page.resize(height)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return page

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=30)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group of the browser we started
            self.process.wait(timeout=30)
        for fd in (self.to_browser, self.from_browser):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Page:
    browser: Chromium
    session: str
    first_event: int
    size: tuple[int, int] = field(default=(WIDTH, 900))

    def resize(self, height: int) -> None:
        self.browser.call("Emulation.setDeviceMetricsOverride",
                          {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
                          session=self.session)
        self.size = (WIDTH, height)

    def evaluate(self, expression: str) -> Any:
        reply = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                  session=self.session)
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression[:60]}...: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self) -> bytes:
        """The whole page (the viewport grown to its height), as PNG."""
        import base64

        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.resize(min(height, 16000))
        data = self.browser.call("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        return base64.b64decode(data)

    def chart_boxes(self) -> list[dict[str, Any]]:
        """Each chart's id, kind and box in page pixels."""
        return json.loads(self.evaluate("""JSON.stringify([...document.querySelectorAll("figure.chart")].map(f => {
            const r = f.querySelector("svg").getBoundingClientRect();
            return {id: f.id, kind: f.dataset.kind, x: r.x + scrollX, y: r.y + scrollY,
                    width: r.width, height: r.height};
        }))"""))

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls and error log entries (a refused load,
        a CSP violation) on this page so far."""
        errors = []
        for event in self.browser.events[self.first_event:]:
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif event["method"] == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return errors


def main(page_path: str, out: str) -> None:
    binary = find_chromium()
    if binary is None:
        sys.exit("no Chromium found")
    browser = Chromium.start(binary)
    try:
        page = browser.open_page(Path(page_path).resolve().as_uri())
        Path(out).write_bytes(page.screenshot())
        print(out, page.console_errors() or "no console errors")
    finally:
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
