"""Read a YAML config file with ``yaml.safe_load`` semantics, keeping the line of every key.

The lines let every config error point at ``file:line``. Duplicate keys, which PyYAML would
silently resolve to the last one, are errors here: a benchmark that silently measures
something other than what its file seems to say is worse than one that refuses to start.

A config file is input from anyone who can open a pull request, so reading one is bounded:
its size, how deep it nests and how many values it holds are capped (see the ``MAX_*``
constants), and aliases count as everything they stand for, so a "billion laughs" file is
refused after reading its few hundred bytes instead of expanding to gigabytes. Control
characters (NUL, ESC, ...) in any key or value are refused too; a tab or newline is fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llenergymeasure.exceptions import ConfigError
from llenergymeasure.paths import path_kind
from llenergymeasure.text import BIDI

KeyPath = tuple[Any, ...]

MAX_FILE_BYTES = 1 << 20
"""A config file larger than 1 MiB is refused; a real one is a few kB."""

MAX_DEPTH = 32
"""Nesting levels of mappings and lists (a benchmark file needs four: experiments.0.pytorch.batch_size)."""

MAX_NODES = 100_000
"""Keys, values and list items in one file, each alias counted as all it stands for."""

# C0 controls but tab, newline and carriage return, DEL, C1 controls, and the bidirectional marks,
# embeddings, overrides and isolates (a name that reads as something else): never meant in a config value.
CONTROL_CHARACTERS = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")


@dataclass
class YamlDocument:
    """The data of one YAML file and the 1-based line of each key path in it."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of ``key_path``, or of its nearest enclosing key that has one."""
        for end in range(len(key_path), 0, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None

    def where(self, key_path: KeyPath = ()) -> str:
        line = self.line_of(key_path)
        return f"{self.path}:{line}" if line else str(self.path)


class _TooBig(Exception):
    """Composing stopped at a cap; ``line`` is where (1-based)."""

    def __init__(self, line: int, what: str) -> None:
        self.line = line
        self.what = what


class _PyEvents(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's own pure-Python event parser, for an install without libyaml."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# libyaml's event parser is iterative and about five times faster than the pure-Python one;
# composing stays in Python (below) so that depth and size are checked as the file is read.
try:
    from yaml._yaml import CParser as _Events
except ImportError:  # PyYAML built without libyaml
    _Events = _PyEvents


class _BoundedLoader(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver, _Events):
    """``yaml.SafeLoader`` that stops composing past MAX_DEPTH levels or MAX_NODES nodes.

    The depth check comes before Python's own recursion limit; aliases are not composed
    again (they are shared nodes), so ``_check_size`` counts what they expand to afterwards.
    """

    def __init__(self, text: str) -> None:
        _Events.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._nodes = 0

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        """An int, or a YAML error at its line for one too long for Python to convert (4,300 digits)."""
        try:
            return self.construct_yaml_int(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(str(node.value))} characters is past every limit llem has",
                node.start_mark) from None

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # +1: the scalar at the bottom is not a level
                raise _TooBig(self.peek_event().start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
            if self._nodes > MAX_NODES:
                raise _TooBig(self.peek_event().start_mark.line + 1, f"holds more than {MAX_NODES:,} keys and values")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_bounded_int)


def read_yaml(path: str | Path, text: str | None = None) -> YamlDocument:
    """Parse ``path`` (or ``text``, read from elsewhere, named as ``path`` in messages: a file as
    it was at a git revision); a missing, oversized or hostile file, bad syntax or a duplicate
    key is a ConfigError."""
    path = Path(path)
    text = _read_text(path) if text is None else _checked_text(path, text)
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:  # the reader checks every character up front
        raise ConfigError(_reader_error(path, text, exc)) from None
    doc = YamlDocument(path=path, data=None)
    try:
        node = _compose(path, text, loader)
        if node is None:
            return doc
        _check_size(path, node)
        _record_lines(node, (), doc)  # before constructing, which rewrites merge keys (<<: *base) in place
        doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:  # a tag safe_load refuses, an unhashable key
        raise ConfigError(_syntax_error(path, exc)) from None
    finally:
        loader.dispose()
    return doc


def _checked_text(path: Path, text: str) -> str:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: config file is larger than {MAX_FILE_BYTES / 2**20:g} MiB (the cap for a config file)")
    return text


def _read_text(path: Path) -> str:
    kind = path_kind(path)
    if kind not in (None, "a regular file"):  # a FIFO would block the read; /dev/zero never ends
        raise ConfigError(f"{path}: cannot read config file: it is {kind}, not a regular file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: config file is larger than {MAX_FILE_BYTES / 2**20:g} MiB (the cap for a config file); "
            "is this the right file?"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: cannot read config file (UnicodeDecodeError: {exc}); save it as UTF-8 text"
        ) from None


def _compose(path: Path, text: str, loader: _BoundedLoader) -> yaml.Node | None:
    """The node graph of ``text``: aliases are still shared nodes here, nothing is expanded yet."""
    try:
        return loader.get_single_node()
    except _TooBig as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.what} (the cap for a config file)") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_error(path, text, exc)) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_syntax_error(path, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None


def _syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    problem = exc.problem or exc.context or "invalid YAML"
    return f"{where}: YAML syntax error: {problem}"


def _reader_error(path: Path, text: str, exc: yaml.reader.ReaderError) -> str:
    """A character YAML does not allow in a file at all (NUL, most control characters).

    Found again here: libyaml counts its position in bytes, PyYAML in characters.
    """
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is None:
        return f"{path}: YAML error: {exc}"
    line = text.count("\n", 0, found.start()) + 1
    return f"{path}:{line}: character U+{ord(found.group()):04X} is not allowed in a YAML file; remove it"


def _check_size(path: Path, root: yaml.Node) -> None:
    """Refuse a graph deeper than MAX_DEPTH or with more than MAX_NODES once its aliases expand.

    Counting is memoized per node, so it is linear in the size of the text: a billion laughs
    is counted, not expanded. A recursive alias has no bottom and fails the depth cap.
    """
    seen: dict[int, tuple[int, int]] = {}  # node -> (nodes below and including it, its height)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        if id(node) in seen:
            total, height = seen[id(node)]
        else:
            if depth > MAX_DEPTH:
                raise _too_deep(path, node)
            children = (
                [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
                else node.value if isinstance(node, yaml.SequenceNode) else []
            )
            sizes = [measure(child, depth + 1) for child in children]
            total = min(1 + sum(size for size, _ in sizes), MAX_NODES + 1)
            height = 1 + max((h for _, h in sizes), default=0)
            seen[id(node)] = (total, height)
        if depth + height > MAX_DEPTH + 1:  # an alias reused deeper than where it was first met
            raise _too_deep(path, node)
        return total, height

    def count(node: yaml.Node, depth: int) -> int:
        return measure(node, depth)[0]

    if count(root, 0) > MAX_NODES:
        raise ConfigError(
            f"{path}: holds more than {MAX_NODES:,} keys and values once its aliases (*name) are expanded "
            "(the cap for a config file); a benchmark file needs a few dozen"
        )


def _too_deep(path: Path, node: yaml.Node) -> ConfigError:
    return ConfigError(f"{path}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep once its aliases "
                       "(*name) are expanded (the cap for a config file)")


def _record_lines(node: yaml.Node, key_path: KeyPath, doc: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as a key: constructing the document refuses it
            key = key_node.value
            line = key_node.start_mark.line + 1
            _check_characters(key_node, key_path, doc)
            if key in seen:
                raise ConfigError(
                    f"{doc.path}:{line}: duplicate key '{_dotted(key_path + (key,))}' "
                    f"(first at line {seen[key]}); remove one of them"
                )
            seen[key] = line
            doc.lines[key_path + (key,)] = line
            _record_lines(value_node, key_path + (key,), doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[key_path + (index,)] = item.start_mark.line + 1
            _record_lines(item, key_path + (index,), doc)
    else:
        _check_characters(node, key_path, doc)


def _check_characters(node: yaml.Node, key_path: KeyPath, doc: YamlDocument) -> None:
    """A control character written as an escape ("\\0", "\\x1b") in a quoted string."""
    if not isinstance(node, yaml.ScalarNode):
        return
    found = CONTROL_CHARACTERS.search(node.value)
    if found:
        what = f"in '{_dotted(key_path)}'" if key_path else "at the top level"
        raise ConfigError(
            f"{doc.path}:{node.start_mark.line + 1}: control character U+{ord(found.group()):04X} {what}; "
            "remove it (config values are plain text)"
        )


def _dotted(key_path: KeyPath) -> str:
    return ".".join(str(k) for k in key_path)
