"""``llem run``: run the experiments of a file (or one from flags), print summaries, save results.

Exit codes: 0 all ran and every ``expect`` gate passed; 1 a run error or a failed gate;
2 a config error (nothing ran); 130 interrupted (results already saved are kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llenergymeasure.cli.errors import exit_codes


def run(
    config: Annotated[Path | None, typer.Argument(help="Experiment file (YAML): one experiment or a study.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model: hub id or local directory.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", "-b", help="Inference backend (pytorch).")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="aienergyscore, builtin, synthetic, or a .jsonl file.")
    ] = None,
    n: Annotated[int | None, typer.Option("-n", help="Number of prompts.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size (pytorch.batch_size).")] = None,
    precision: Annotated[str | None, typer.Option("--precision", "-p", help="fp32, fp16 or bf16.")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", help="Measurement windows per experiment.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Directory for result JSON files.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, show the resolved config and a VRAM estimate; load nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (the summary still prints).")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show where each config value came from, and tracebacks.")
    ] = False,
) -> None:
    flags = {
        "model": model,
        "backend": backend,
        "dataset": dataset,
        "n": n,
        "pytorch.batch_size": batch_size,
        "precision": precision,
        "repeats": repeats,
        "output_dir": output,
    }
    overrides = {key: value for key, value in flags.items() if value is not None}
    with exit_codes(verbose):
        experiments, expect = _load(config, overrides)
        if dry_run:
            _dry_run(experiments, verbose)
            return
        failed = _run_all(experiments, expect, quiet)
    if failed:
        raise typer.Exit(1)


def _load(path: Path | None, overrides: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """(id, config) pairs and the file's expect gates."""
    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.config.loader import load_experiment_config

    if path is None:
        config = load_experiment_config(cli_overrides=overrides)
        return [(config.name or config.model, config)], {}
    study = load_benchmark_file(path, cli_overrides=overrides)
    return [(e.id, e.config) for e in study.experiments], study.expect


def _dry_run(experiments: list[Any], verbose: bool) -> None:
    """Show what would run and check what can be checked here; PreFlightError (exit 1) on problems."""
    from llenergymeasure.cli.display import print_config, print_table, vram_text
    from llenergymeasure.core.dry_run import dry_run
    from llenergymeasure.core.vram import gpu_memory_gb
    from llenergymeasure.exceptions import PreFlightError

    gpu_gb = gpu_memory_gb()
    reports = [(exp_id, config, dry_run(config, gpu_gb)) for exp_id, config in experiments]
    if len(reports) > 1:
        print(f"{len(reports)} experiments (dry run: nothing loaded, nothing measured)")
        print_table([{
            "experiment": exp_id,
            "model": config.model,
            "precision": config.precision,
            "batch": str(config.pytorch.batch_size),
            "VRAM estimate": f"{report.vram.total_gb:.2f} GB" if report.vram else "unavailable",
        } for exp_id, config, report in reports])
        print(f"GPU memory: {f'{gpu_gb:.1f} GB' if gpu_gb else 'no GPU visible'}")
    if len(reports) == 1 or verbose:
        for exp_id, config, report in reports:
            if len(reports) > 1:
                print()
            print(f"Config (resolved){' with sources' if verbose else ''}: {exp_id}")
            print_config(config, verbose)
            print(f"VRAM estimate: {vram_text(report.vram, gpu_gb)}")
    notes = dict.fromkeys(note for _, _, report in reports for note in report.notes)
    for note in notes:
        print(f"note: {note}")
    problems = [f"{exp_id}: {problem}" if len(reports) > 1 else problem
                for exp_id, _, report in reports for problem in report.problems]
    if problems:
        raise PreFlightError(problems)
    print("Dry run: config is valid.")


def _run_all(experiments: list[Any], expect: dict[str, Any], quiet: bool) -> bool:
    """Run every experiment (one failing does not stop the rest); True when any failed."""
    import sys

    from llenergymeasure.cli.display import one_line, print_result, print_table, summary_row
    from llenergymeasure.core.runner import measure
    from llenergymeasure.exceptions import ConfigError, LLEMError
    from llenergymeasure.results.gates import check_expect

    rows, failed = [], False
    for exp_id, config in experiments:
        if len(experiments) > 1:
            print(f"[{len(rows) + 1}/{len(experiments)}] {exp_id}", file=sys.stderr)
        try:
            result = measure(config, progress=not quiet)
        except ConfigError:
            raise
        except LLEMError as exc:
            if len(experiments) == 1:
                raise
            print(f"Error in {exp_id}: {exc}", file=sys.stderr)
            rows.append(summary_row(exp_id, None, [], one_line(exc)))
            failed = True
            continue
        saved = str(result.save(config.output_dir)) if config.output_dir else None
        verdicts = check_expect(result, expect)
        failed = failed or not all(v.passed for v in verdicts)
        if len(experiments) == 1:
            print_result(result, verdicts, saved)
        else:
            rows.append(summary_row(exp_id, result, verdicts, None))
    if len(experiments) > 1:
        print_table(rows)
    return failed
