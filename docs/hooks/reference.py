"""mkdocs hook: the reference pages' tables, generated from the code at build time.

A reference page holds marker lines such as ``<!-- reference: config -->``; ``on_page_markdown``
replaces each with a markdown table built from the code itself, so the reference cannot drift:

    config        every key of an experiment (config/models.py, walked through the nested models)
    file-keys     the keys a benchmark file adds (config/benchmark_file.py's FILE_KEYS and docstring)
    pytest        every option of the plugin (pytest_llem.plugin.pytest_addoption, called here)
    pytest-ini    every ini key of the plugin (the same call)
    cli           every llem command with its arguments and options (the typer app, through click)
    metrics       every metric name (results/metrics.py's METRICS table)

An unknown marker, or a benchmark-file key the docstring does not describe, fails the build.
Nothing here imports torch or transformers.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MARKER = re.compile(r"^<!-- reference: ([\w-]+) -->$", flags=re.MULTILINE)

# What a key is for, where config/models.py gives the field no ``description=`` (a description
# there wins). Every name here must be a real key: the build fails otherwise.
NOTES = {
    "name": "the experiment's name in summaries and item ids; default: the model (or the file's name)",
    "model": "a Hugging Face hub id or a local directory (with `backend: openai`, the id the server lists)",
    "backend": "`pytorch` (transformers in this process) or `openai` (a running OpenAI-compatible server)",
    "dataset": "`aienergyscore`, `builtin` (offline), `synthetic`, or a `.jsonl` file",
    "precision": "the weights' dtype (pytorch backend)",
    "random_seed": "seeds prompt selection, sampling and a server's request arrivals",
    "max_input_tokens": "prompt tokens kept per prompt, at most (pytorch backend; `synthetic` prompts have "
                        "exactly this many)",
    "max_output_tokens": "tokens generated per prompt, at most",
    "repeats": "measurement windows; 5 when a baseline or A/B is in play and the file sets none",
    "output_dir": "where result JSON files go; without it nothing is saved",
    "decoder": "how tokens are chosen; greedy by default",
    "decoder.preset": "a named set of the sampling keys below (deterministic, standard, creative, factual); "
                      "keys set beside it win",
    "decoder.do_sample": "sample instead of greedy decoding",
    "decoder.temperature": "sampling temperature",
    "decoder.top_k": "sample from the k most likely tokens (0: no limit); not sent to a server",
    "decoder.top_p": "nucleus sampling",
    "decoder.repetition_penalty": "not sent to a server",
    "decoder.ignore_eos": "generate `max_output_tokens` whatever the model says (sent to a server as vLLM's "
                          "`ignore_eos`)",
    "warmup.enabled": "run warmup batches before measuring",
    "baseline.enabled": "measure idle power before the model loads (the `net_*` metrics)",
    "baseline.duration_seconds": "how long idle power is measured",
    "baseline.cache_ttl_seconds": "how long a measured idle power is reused",
    "energy.source": "where energy comes from: `auto` picks NVML, else RAPL, else the CPU estimate",
    "energy.sample_interval_ms": "how often the sampler polls power and telemetry",
    "energy.carbon_intensity_g_per_kwh": "for the CO2 figure; else `LLEM_CARBON_INTENSITY`, else "
                                         "`energy.carbon_country`",
    "pytorch.batch_size": "prompts per `generate` call (`--batch-size`)",
    "pytorch.device": "`auto`, `cpu`, `cuda` or `cuda:N`",
    "pytorch.attn_implementation": "transformers' attention kernel; default: transformers' choice",
    "pytorch.use_cache": "the KV cache",
    "pytorch.torch_compile": "`torch.compile` the model before warmup",
    "pytorch.trust_remote_code": "run a hub model's own code; off unless set",
    "pytorch.revision": "a hub revision (branch, tag or commit)",
    "openai.base_url": "the server's API root; requests go to `{base_url}/completions`",
}


class Key(NamedTuple):
    path: str  # dotted, as a sweep: names it
    type: str
    default: str
    constraints: str
    description: str
    section: bool = False


def config_keys() -> list[Key]:
    """Every key of an experiment, sections first, then their fields, in the models' order."""
    from llenergymeasure.config.models import ExperimentConfig

    return _walk(ExperimentConfig, "")


def _walk(model: type[BaseModel], prefix: str) -> list[Key]:
    keys = []
    for name, field in model.model_fields.items():
        path = prefix + name
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            doc = (field.annotation.__doc__ or "").strip().split("\n\n")[0]
            keys.append(Key(path, "section", "", "", _markdown(doc), section=True))
            keys.extend(_walk(field.annotation, path + "."))
        else:
            description = _markdown(field.description or NOTES.get(path, ""))
            keys.append(Key(path, _type(field.annotation), _default(field), _constraints(field.metadata), description))
    return keys


def _type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " | ".join(str(value) for value in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type(arg) for arg in args)
    if origin is list:
        return f"list[{_type(args[0])}]"
    if origin is dict:
        return f"map[{_type(args[0])}, {_type(args[1])}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        return "required"
    value = field.default
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()  # as YAML writes it
    return str(value)


def _constraints(metadata: list[Any]) -> str:
    """The bounds pydantic checks: ``>= 1``, ``<= 1000``, ``length <= 4095``, a pattern."""
    words = []
    for item in metadata:
        if isinstance(item, FieldInfo):  # a constraint inside Optional[Annotated[...]]
            words.append(_constraints(item.metadata))
            continue
        for attr, text in (("ge", ">= {}"), ("gt", "> {}"), ("le", "<= {}"), ("lt", "< {}"),
                           ("min_length", "length >= {}"), ("max_length", "length <= {}"), ("pattern", "`{}`")):
            value = getattr(item, attr, None)
            if value is not None:
                words.append(text.format(value))
    return ", ".join(word for word in words if word)


def config_table() -> str:
    rows = ["| key | type | default | range | what it is |", "|---|---|---|---|---|"]
    for key in config_keys():
        if key.section:
            rows.append(f"| **`{key.path}`** | section | | | {_cell(key.description)} |")
        else:
            rows.append(f"| `{key.path}` | {_cell(key.type)} | {_cell(key.default)} | {_cell(key.constraints)} | "
                        f"{_cell(key.description)} |")
    return "\n".join(rows)


def file_keys() -> dict[str, str]:
    """The benchmark file's own keys, each with the line its module docstring gives it."""
    from llenergymeasure.config import benchmark_file

    described: dict[str, str] = {}
    current = None
    for line in (benchmark_file.__doc__ or "").splitlines():
        entry = re.match(r"^ {4}(\w+):\s+(.*)$", line)
        if entry:
            current = entry.group(1)
            described[current] = _markdown(entry.group(2))
        elif current and re.match(r"^ {5,}\S", line):
            described[current] += " " + _markdown(line)
        else:
            current = None
    missing = [key for key in benchmark_file.FILE_KEYS if key not in described]
    if missing:
        raise ValueError(f"config/benchmark_file.py's docstring does not describe {', '.join(missing)}")
    return {key: described[key] for key in benchmark_file.FILE_KEYS}


def file_keys_table() -> str:
    rows = ["| key | what it is |", "|---|---|"]
    rows += [f"| `{key}` | {_cell(text)} |" for key, text in file_keys().items()]
    return "\n".join(rows)


class _Recorder:
    """Stands in for pytest's Parser: records what the plugin's ``pytest_addoption`` declares."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: list[tuple[str, str, Any, str]] = []

    def getgroup(self, *args: Any, **kwargs: Any) -> _Recorder:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.options.append((names, attrs))

    def addini(self, name: str, help: str, type: str | None = None, default: Any = None, **kwargs: Any) -> None:
        self.ini.append((name, type or "string", default, help))


def pytest_declarations() -> _Recorder:
    from pytest_llem import plugin

    recorder = _Recorder()
    plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    return recorder


def pytest_table() -> str:
    rows = ["| option | what it does |", "|---|---|"]
    for names, attrs in pytest_declarations().options:
        usage = ", ".join(names)
        if attrs.get("choices"):
            usage += " " + "{" + ",".join(attrs["choices"]) + "}"
        elif attrs.get("metavar"):
            usage += f"[={attrs['metavar']}]" if attrs.get("nargs") == "?" else f" {attrs['metavar']}"
        help_text = attrs.get("help", "").replace("%%", "%")  # argparse's escape
        rows.append(f"| `{usage}` | {_cell(help_text)} |")
    return "\n".join(rows)


def pytest_ini_table() -> str:
    rows = ["| ini key | type | default | what it does |", "|---|---|---|---|"]
    for name, kind, default, help_text in pytest_declarations().ini:
        if isinstance(default, list):
            default = " ".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        rows.append(f"| `{name}` | {kind} | {_cell(str(default or ''))} | {_cell(help_text)} |")
    return "\n".join(rows)


def cli_text() -> str:
    """A section per ``llem`` command: its help, and a row per argument and option, as
    ``llem COMMAND --help`` shows them (click's own help records)."""
    import click
    import typer.main

    from llenergymeasure.cli import app

    group = typer.main.get_command(app)
    root = click.Context(group, info_name="llem")
    commands = [("llem", group, root)] + [(f"llem {name}", command, click.Context(command, info_name=name, parent=root))
                                          for name, command in group.commands.items()]  # type: ignore[attr-defined]
    parts = []
    for title, command, context in commands:
        rows = ["| argument or option | what it does |", "|---|---|"]
        for param in command.params:
            usage, help_text = param.get_help_record(context) or (param.human_readable_name, "")
            rows.append(f"| `{usage}` | {_cell(help_text)} |")
        epilog = f"\n\n{command.epilog}" if command.epilog else ""
        parts.append(f"## `{title}`\n\n{_markdown(command.help or '')}{epilog}\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def metrics_table() -> str:
    from llenergymeasure.results.metrics import METRICS

    rows = ["| metric | unit | better | definition |", "|---|---|---|---|"]
    for name, (unit, better, definition) in METRICS.items():
        rows.append(f"| `{name}` | {unit} | {better} | {_cell(definition)} |")
    return "\n".join(rows)


def _markdown(text: str) -> str:
    """A docstring's text as one markdown line (reST's ``code`` is markdown's `code`)."""
    return " ".join(text.replace("``", "`").split())


def _cell(text: str) -> str:
    """Text for a table cell: a ``|`` outside a code span would end the cell (inside one it does not,
    and a backslash there would be shown)."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(part if index % 2 else part.replace("|", "\\|") for index, part in enumerate(parts))


RENDERERS = {
    "config": config_table,
    "file-keys": file_keys_table,
    "pytest": pytest_table,
    "pytest-ini": pytest_ini_table,
    "cli": cli_text,
    "metrics": metrics_table,
}


def render(markdown: str) -> str:
    """``markdown`` with every reference marker replaced by its table."""
    def replace(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind not in RENDERERS:
            raise ValueError(f"unknown reference marker {kind!r}; known: {', '.join(RENDERERS)}")
        return RENDERERS[kind]()

    return MARKER.sub(replace, markdown)


def check_notes() -> None:
    """Every NOTES entry names a real key (a renamed field would leave its note behind)."""
    real = {key.path for key in config_keys()}
    stale = sorted(set(NOTES) - real)
    if stale:
        raise ValueError(f"docs/hooks/reference.py NOTES names keys the config does not have: {', '.join(stale)}")


def on_config(config: Any) -> Any:
    from mkdocs.exceptions import PluginError

    try:  # a PluginError is one line of mkdocs' output, not a traceback
        check_notes()
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    try:
        return render(markdown)
    except ValueError as exc:
        raise PluginError(f"{page.file.src_path}: {exc}") from None
