"""What the tool costs before it measures anything, side by side, as ratios measured in one run.

1. The plugin in every pytest session of the environment: a one-test session with the plugin
   and with ``-p no:llem`` (target: under 1.05x).
2. ``llem run --dry-run`` of a 10,000-point sweep against pytest running 10,000 no-op
   parametrized tests (both start a Python process and handle 10,000 points).
3. The README's main run (tiny GPT-2, CPU) with the garbage collector frozen before the load
   (the default) against the same run with ``LLEM_GC_FREEZE=0`` (as before the change).

Each pair is run alternately ``--rounds`` times, so a neighbour's load falls on both sides alike;
both the medians and the fastest runs are compared (on a shared machine the fastest run is the
one least disturbed, as timeit reports).

    python benchmarks/startup_costs.py [--rounds 15] [--skip-run]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP_POINTS = 10_000


def wall(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 5):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def compare(label: str, a: tuple[str, list[str], dict[str, str] | None], b: tuple[str, list[str], dict[str, str] | None],
            cwd: Path, rounds: int) -> None:
    """Run ``a`` and ``b`` alternately; print both medians and a/b."""
    times: dict[str, list[float]] = {a[0]: [], b[0]: []}
    for _ in range(rounds):
        for name, command, env in (a, b):
            times[name].append(wall(command, cwd, env))
    ma, mb = statistics.median(times[a[0]]), statistics.median(times[b[0]])
    fa, fb = min(times[a[0]]), min(times[b[0]])
    print(f"{label}: {a[0]} {ma:.3f} s, {b[0]} {mb:.3f} s (medians), ratio {ma / mb:.3f}; "
          f"fastest {fa:.3f} s vs {fb:.3f} s, ratio {fa / fb:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--skip-run", action="store_true", help="leave out the README run (the slowest part)")
    args = parser.parse_args()
    python = sys.executable
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "test_one.py").write_text("def test_one():\n    pass\n")
        compare("plain pytest session", ("plugin on", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                       "test_one.py"], None),
                ("plugin off", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:llem",
                                "test_one.py"], None), work, args.rounds)

        from llenergymeasure.testing.tiny_model import build_tiny_gpt2

        model = build_tiny_gpt2(work / "tiny-gpt2")
        sweep = work / "sweep.yaml"
        sweep.write_text(f"model: {model}\ndataset: builtin\nn: 4\nprecision: fp32\n"
                         f"sweep:\n  random_seed: {list(range(SWEEP_POINTS))}\n")
        (work / "test_noop.py").write_text(f"import pytest\n\n@pytest.mark.parametrize('point', range({SWEEP_POINTS}))\n"
                                           "def test_point(point):\n    pass\n")
        compare(f"{SWEEP_POINTS:,}-point sweep", ("llem run --dry-run", [python, "-m", "llenergymeasure.cli", "run",
                                                                         "--dry-run", str(sweep)], env),
                ("pytest no-op tests", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:llem",
                                        "test_noop.py"], None), work, max(3, args.rounds // 2))

        if not args.skip_run:
            run = [python, "-m", "llenergymeasure.cli", "run", "--model", str(model), "-d", "builtin", "-n", "8",
                   "--batch-size", "4", "-p", "fp32", "--quiet"]
            compare("README run", ("gc frozen", run, env), ("as before", run, {**env, "LLEM_GC_FREEZE": "0"}), work,
                    args.rounds)


if __name__ == "__main__":
    main()
