"""``llem ab BASELINE CANDIDATE``: two experiments measured in one session, windows interleaved in
ABBA order, and the paired verdict per gated metric, as a table.

Each side is an experiment file, or ``FILE::ID`` for one experiment of a study (the ids that
``llem run --dry-run FILE`` and ``pytest --co`` show). Gates: ``--fail-on``, else the candidate
file's ``regression:`` section, else joules_per_token:5%. Exit codes as ``llem compare``: 0 nothing
regressed, 1 a metric regressed (or was not measured, or the energy is suspect), a run error,
or a result that could not be saved where asked; 2 a config error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llenergymeasure.cli.errors import exit_codes

if TYPE_CHECKING:
    from llenergymeasure.config.benchmark_file import BenchmarkExperiment, BenchmarkFile


def ab(
    baseline: Annotated[str, typer.Argument(metavar="BASELINE", show_default=False,
                                            help="Reference (A): an experiment file, or FILE::ID.")],
    candidate: Annotated[str, typer.Argument(metavar="CANDIDATE", show_default=False,
                                             help="Candidate (B): an experiment file, or FILE::ID.")],
    pairs: Annotated[int, typer.Option("--pairs", metavar="N", min=1, max=1000,
                                       help="Windows of each side (A/B pairs); 3 or more for a verdict.")] = 5,
    fail_on: Annotated[
        list[str] | None,
        typer.Option("--fail-on", metavar="METRIC:THRESHOLD",
                     help="A gate, e.g. joules_per_token:5%; repeatable; replaces the candidate file's regression: "
                          "gate on that metric."),
    ] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="DIR",
                                                          help="Directory for both result JSON files.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    with exit_codes(verbose):
        failed = _ab(baseline, candidate, pairs, fail_on or [], output, quiet)
    if failed:
        raise typer.Exit(1)


def _ab(baseline: str, candidate: str, pairs: int, fail_on: list[str], output: str | None, quiet: bool) -> bool:
    import sys

    from llenergymeasure.cli.display import energy_label, print_table
    from llenergymeasure.cli.run import save_result
    from llenergymeasure.core.ab import judge_ab, run_ab
    from llenergymeasure.exceptions import ConfigError
    from llenergymeasure.results.regression import thresholds
    from llenergymeasure.results.tables import change_text, ci_text, fmt

    overrides = {"output_dir": output} if output else {}
    (_, a), (study_b, b) = _pick(baseline, overrides), _pick(candidate, overrides)
    try:
        gates = thresholds(study_b.regression, fail_on)
    except ValueError as exc:
        raise ConfigError(f"--fail-on: {exc}") from None

    print(f"A/B: {a.id} (A) vs {b.id} (B), {pairs} window(s) each in ABBA order after a settling pair",
          file=sys.stderr)
    run = run_ab(a.config, b.config, pairs, progress=not quiet)
    check = judge_ab(run, gates)
    for result in (run.reference, run.candidate):  # so that llem report judges the pair as this did
        result.ab["gates"] = [gate.spec for gate in gates]
    print(f"A {a.id}: {fmt(run.reference.metrics.joules_per_token)} J/token; "
          f"B {b.id}: {fmt(run.candidate.metrics.joules_per_token)} J/token; energy from {energy_label(run.candidate)}")
    print_table([{
        "metric": c.metric,
        "A (median)": fmt(c.baseline),
        "B (median)": fmt(c.candidate),
        "change": change_text(c.change, c.threshold.relative),
        "95% CI": ci_text(c.ci_low, c.ci_high, c.threshold.relative),
        "verdict": c.verdict,
    } for c in check.comparisons])
    for line in check.lines():
        print(f"  {line}")
    for hint in check.hints:  # what an inconclusive verdict would need
        print(f"  to resolve {hint}")
    unsaved = False
    for config, result in ((a.config, run.reference), (b.config, run.candidate)):
        where, error = save_result(result, config.output_dir)
        print(f"result {result.name}: {where}")
        if error is not None:  # the other side is still saved, and the verdict still decides
            print(f"Error: {error}", file=sys.stderr)
            unsaved = True
    return check.failed or unsaved


def _pick(spec: str, overrides: dict[str, str]) -> tuple[BenchmarkFile, BenchmarkExperiment]:
    """The experiment ``FILE`` (a file of one experiment) or ``FILE::ID`` names, with its file."""
    import difflib

    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.exceptions import ConfigError

    path, _, wanted = spec.partition("::")
    study = load_benchmark_file(Path(path), cli_overrides=overrides)
    ids = [e.id for e in study.experiments]
    if not wanted:
        if len(ids) > 1:
            raise ConfigError(f"{path}: holds {len(ids)} experiments; name one as {path}::ID "
                              f"(ids: {', '.join(ids[:10])}{', ...' if len(ids) > 10 else ''})")
        return study, study.experiments[0]
    for experiment in study.experiments:
        if experiment.id == wanted:
            return study, experiment
    close = difflib.get_close_matches(wanted, ids, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"its ids: {', '.join(ids[:10])}"
    raise ConfigError(f"{path}: no experiment {wanted!r}; {hint}")

