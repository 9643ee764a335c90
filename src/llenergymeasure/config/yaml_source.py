"""Read a YAML config file with ``yaml.safe_load`` semantics, keeping the line of every key.

The lines let every config error point at ``file:line``. Duplicate keys, which PyYAML would
silently resolve to the last one, are errors here: a benchmark that silently measures
something other than what its file seems to say is worse than one that refuses to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llenergymeasure.exceptions import ConfigError

KeyPath = tuple[Any, ...]


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


def read_yaml(path: str | Path) -> YamlDocument:
    """Parse ``path``; a missing file, bad syntax or a duplicate key is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from None

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None
    finally:
        loader.dispose()

    doc = YamlDocument(path=path, data=data)
    if node is not None:
        _record_lines(node, (), doc)
    return doc


def _record_lines(node: yaml.Node, key_path: KeyPath, doc: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
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


def _dotted(key_path: KeyPath) -> str:
    return ".".join(str(k) for k in key_path)
