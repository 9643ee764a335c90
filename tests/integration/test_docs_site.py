"""The documentation site: ``mkdocs build --strict`` passes, and it shows everything the code has.

The reference pages are generated from the code at build time (docs/hooks/reference.py). These
tests check the built pages against the code, listed here independently of the hook: every config
key (a walk of the pydantic models), every ``--llem-*`` option (``pytest --help``), every ``llem``
command's options (its click command), every metric, every ``LLEM_*`` variable the code reads.
They also keep the pages' examples true: every benchmark or experiment file a page shows loads,
every workflow is YAML, every ``--llem-*`` option a page names exists, and README's module map
names every module of src/.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with ``mkdocs build --strict`` (a warning, a broken link or anchor fails it)."""
    if find_spec("mkdocs") is None or find_spec("material") is None:
        pytest.skip("mkdocs-material is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's notice about its successor: not ours
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def plain(text: str) -> str:
    """A page's text without its tags (a highlighted code block is a tag per token)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def first_cells(text: str) -> list[str]:
    """The code in the first cell of each table row: what a reference table lists (not the prose)."""
    return [html.unescape(span) for span in
            re.findall(r"<tr>\s*<td>(?:<strong>)?<code>(.*?)</code>", text, flags=re.DOTALL)]


def config_keys() -> list[str]:
    """Every key of an experiment, dotted, walked through the nested models."""
    from pydantic import BaseModel

    from llenergymeasure.config.models import ExperimentConfig

    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        keys = []
        for name, field in model.model_fields.items():
            keys.append(prefix + name)
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                keys += walk(field.annotation, f"{prefix}{name}.")
        return keys

    return walk(ExperimentConfig, "")


@pytest.fixture(scope="module")
def llem_options(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The plugin's options, as ``pytest --help`` lists them."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                          cwd=tmp_path_factory.mktemp("help"), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    options = set(re.findall(r"(--llem-[a-z]+(?:-[a-z]+)*)", done.stdout))
    assert {"--llem-against", "--llem-baseline", "--llem-save-baseline", "--llem-dry-run"} <= options, done.stdout
    assert len(options) >= 15, options
    return options


def test_the_config_reference_lists_every_key_of_the_models(site):
    from llenergymeasure.config.benchmark_file import FILE_KEYS

    keys = config_keys()
    assert len(keys) > 40 and {"pytorch.batch_size", "openai.base_url", "energy.source"} <= set(keys), keys
    shown = set(first_cells(page(site, "reference-config")))
    assert not set(keys) - shown, f"config keys missing from the reference: {sorted(set(keys) - shown)}"
    assert not set(FILE_KEYS) - shown, f"benchmark file keys missing: {sorted(set(FILE_KEYS) - shown)}"


def test_every_config_key_has_a_description(site):
    """A new field needs ``description=`` in config/models.py (or a note in docs/hooks/reference.py)."""
    text = page(site, "reference-config")
    rows = {html.unescape(key): row for key, row in re.findall(r"<tr>\s*<td><code>([\w.]+)</code></td>(.*?)</tr>",
                                                                text, flags=re.DOTALL)}
    assert len(rows) > 40, rows.keys()
    empty = [key for key, row in rows.items() if re.search(r"<td>\s*</td>\s*$", row)]
    assert not empty, f"config keys without a description: {empty}"


def test_the_pytest_reference_lists_every_llem_option(site, llem_options):
    text = page(site, "reference-pytest")
    shown = {re.match(r"--llem-[a-z-]+", cell).group() for cell in first_cells(text) if cell.startswith("--llem-")}
    assert not llem_options - shown, f"options missing from the reference: {sorted(llem_options - shown)}"
    assert {"llem_history", "llem_files"} <= set(first_cells(text))  # the ini keys


def test_the_cli_reference_lists_every_command_and_option(site):
    import click
    import typer.main

    from llenergymeasure.cli import app

    group = typer.main.get_command(app)
    assert {"run", "config", "compare", "ab", "report"} <= set(group.commands)
    sections = dict(re.findall(r'<h2 id="[^"]*"><code>(llem(?: \w+)?)</code>.*?</h2>(.*?)(?=<h2 |\Z)',
                               page(site, "reference-cli"), flags=re.DOTALL))
    for name, command in {"llem": group, **{f"llem {n}": c for n, c in group.commands.items()}}.items():
        assert name in sections, f"no section for {name}: {sorted(sections)}"
        words = {word.rstrip(",") for cell in first_cells(sections[name]) for word in cell.split()}
        options = [opt for param in command.params if isinstance(param, click.Option)
                   for opt in param.opts + param.secondary_opts]
        missing = [opt for opt in options if opt not in words]
        assert not missing, f"{name}: options missing from the reference: {missing}"
        rows = sections[name].count("<tr>") - 1  # the header row
        assert rows == len(command.params), f"{name}: {rows} rows for {len(command.params)} arguments and options"
    assert "--max-output-tokens" in sections["llem run"]


def test_the_metrics_reference_lists_every_metric(site):
    from llenergymeasure.results.metrics import METRIC_NAMES

    assert len(METRIC_NAMES) >= 15 and "joules_per_token" in METRIC_NAMES
    shown = set(first_cells(page(site, "reference-metrics")))
    assert not set(METRIC_NAMES) - shown, f"metrics missing: {sorted(set(METRIC_NAMES) - shown)}"


def test_every_llem_environment_variable_the_code_reads_is_documented(site):
    read = {name for path in (REPO / "src").rglob("*.py")
            for name in re.findall(r"\bLLEM_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))}
    assert {"LLEM_CONFIG", "LLEM_PROGRESS_INTERVAL_S"} <= read, read
    shown = set(first_cells(page(site, "reference-env")))
    assert not read - shown, f"environment variables missing from docs/reference-env.md: {sorted(read - shown)}"


def test_readmes_set_up_and_first_steps_are_the_sites_too(site):
    text = plain(page(site, "getting-started"))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = re.search(r"^python3 -m venv .*tiny_model.*$", readme, flags=re.MULTILINE).group()
    assert setup in text and "# benchmarks/llem_gpt2.yaml" in text and "--llem-against origin/main" in text
    assert "--8<--" not in text  # every snippet resolved
    assert "pip install 'pytest-llem[pytorch] @ git+" in plain(page(site, "install"))


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(first line, the rest) of each fenced code block of a page."""
    bodies = re.findall(r"^ *```\w*\n(.*?)^ *```", path.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)
    return [(first.strip(), rest) for first, _, rest in (body.partition("\n") for body in bodies)]


def test_every_config_file_the_pages_show_loads(tmp_path):
    from llenergymeasure.config.benchmark_file import load_benchmark_file

    loaded = []
    for path in PAGES:
        for first, rest in fenced_blocks(path):
            name = re.fullmatch(r"# ([\w./-]+\.ya?ml)", first)
            if name and not name.group(1).startswith(".github/") and name.group(1) != "mkdocs.yml":
                target = tmp_path / name.group(1)
                study = load_benchmark_file(target, user_config_defaults={}, text=rest)
                assert study.experiments, f"{path.name}: {name.group(1)}"
                loaded.append(f"{path.name}: {name.group(1)}")
    assert {"README.md: benchmarks/llem_gpt2.yaml", "serving.md: server.yaml", "ci.md: benchmarks/llem_cpu.yaml",
            "fleet.md: llem_70b.yaml"} <= set(loaded), loaded


def test_every_workflow_the_pages_show_is_yaml_with_jobs():
    workflows = []
    for path in PAGES:
        for first, rest in fenced_blocks(path):
            if first.startswith("# .github/workflows/"):
                workflow = yaml.safe_load(rest)
                assert workflow["jobs"] and all("steps" in job for job in workflow["jobs"].values()), first
                workflows.append(f"{path.name}: {first[2:]}")
    assert {"README.md: .github/workflows/energy.yml", "ci.md: .github/workflows/energy-cpu.yml"} <= set(workflows)


def test_every_llem_option_the_pages_name_exists(llem_options):
    named = {(path.name, option) for path in PAGES
             for option in re.findall(r"(--llem-[a-z]+(?:-[a-z]+)*)", path.read_text(encoding="utf-8"))}
    assert len(named) > 30, named
    unknown = sorted((page_name, option) for page_name, option in named if option not in llem_options)
    assert not unknown, f"options the plugin does not have: {unknown}"


def module_map() -> list[str]:
    """Paths the README's module map names: its tree entries, and the files a directory entry's text names."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Module map"):].split("```")[1]
    named, parents = [], {}
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= 20:  # blank, or the text of the entry above, continued
            if line.strip():
                named += [parents[max(parents)] + word for word in re.findall(r"[\w.]+\.(?:py|jsonl)", line)]
            continue
        entry, _, text = line.strip().partition(" ")
        parents = {level: path for level, path in parents.items() if level < indent}
        path = (parents[max(parents)] if parents else "") + entry
        parents[indent] = path if entry.endswith("/") else path.rsplit("/", 1)[0] + "/"
        named.append(path)
        if entry.endswith("/"):
            named += [path + word for word in re.findall(r"[\w.]+\.(?:py|jsonl)", text)]
    return named


def test_readmes_module_map_names_every_module():
    named = set(module_map())
    assert {"src/llenergymeasure/config/models.py", "src/pytest_llem/plugin.py"} <= named, sorted(named)
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "src").rglob("*.py")
               if "__pycache__" not in path.parts and path.name != "__init__.py"}
    assert len(modules) > 60
    missing = sorted(modules - named)
    assert not missing, f"modules missing from README's module map: {missing}"
