"""``llem run``: run the experiments of a file (or one from flags), print summaries, save results.

Exit codes: 0 all ran, were saved, and every ``expect`` gate passed; 1 a run error, a result that
could not be saved where asked, or a failed gate; 2 a config error (nothing ran); 130 Ctrl-C and
143 SIGTERM (results already saved are kept; an interrupted study lists them).

With ``--ray`` (or ``--ray-address``) each experiment runs as a Ray task (``executors/ray.py``):
the results come back here, are saved as each one arrives and summed up in the same table.

Results are saved only with ``-o DIR`` (or ``output_dir`` in the file or the user config), never
by default: a run should not litter the working directory. Without one the summary says so.
An output_dir that cannot take the files is refused before anything is measured.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from llenergymeasure.cli.errors import exit_codes


def run(
    config: Annotated[Path | None, typer.Argument(metavar="FILE", show_default=False,
                                                help="Experiment file (YAML): one experiment or a study.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", metavar="MODEL", help="Model: hub id or local directory.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", metavar="BACKEND",
                                 help="Inference backend: pytorch, or openai (a server).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", metavar="DATASET",
                                 help="aienergyscore, builtin, synthetic, or a .jsonl file.")
    ] = None,
    n: Annotated[int | None, typer.Option("-n", metavar="N", help="Number of prompts.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", metavar="N", help="Batch size (pytorch.batch_size).")
    ] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", "-p", metavar="PRECISION",
                                 help="auto (the default: bf16 on a GPU that has it, fp16 on an older one, fp32 on a "
                                      "CPU), fp32, fp16 or bf16.")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option("--repeats", metavar="N", help="Measurement windows per experiment.")
    ] = None,
    max_output_tokens: Annotated[
        int | None, typer.Option("--max-output-tokens", metavar="N", help="Tokens generated per prompt, at most.")
    ] = None,
    max_input_tokens: Annotated[
        int | None, typer.Option("--max-input-tokens", metavar="N", help="Prompt tokens kept per prompt, at most.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N", help="random_seed: prompts, sampling, "
                                                                            "arrivals.")] = None,
    device: Annotated[
        str | None, typer.Option("--device", metavar="DEVICE", help="pytorch.device: auto, cpu, cuda or cuda:N.")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="DIR",
                     help="Directory for result JSON files (created if missing; files in it are never overwritten). "
                          "Without it nothing is saved."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", metavar="NAME",
                                 help="The environment variable holding the server's API key (openai.api_key_env; "
                                      "default OPENAI_API_KEY). A variable an experiment file names is read only "
                                      "when you name it here too.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, show the resolved config and a VRAM estimate; load nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (the summary still prints).")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show where each config value came from, and tracebacks.")
    ] = False,
    use_ray: Annotated[
        bool, typer.Option("--ray", help="Run each experiment as a Ray task: on the cluster in RAY_ADDRESS, else a "
                                         "new local Ray instance (needs the [ray] extra; a dry run ignores it).")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", metavar="ADDRESS", help="The Ray cluster to run on (HOST:PORT of "
                                                                          "its head); implies --ray.")
    ] = None,
) -> None:
    flags = {
        "model": model,
        "backend": backend,
        "dataset": dataset,
        "n": n,
        "pytorch.batch_size": batch_size,
        "precision": precision,
        "repeats": repeats,
        "max_output_tokens": max_output_tokens,
        "max_input_tokens": max_input_tokens,
        "random_seed": seed,
        "pytorch.device": device,
        "output_dir": output,
        "openai.api_key_env": api_key_env,
    }
    overrides = {key: value for key, value in flags.items() if value is not None}
    with exit_codes(verbose):
        experiments, expect, ramps = _load(config, overrides)
        if dry_run:
            _dry_run(experiments, verbose)
            return
        _check_output_dirs(experiments)
        if (use_ray or ray_address) and ramps:
            from llenergymeasure.exceptions import ConfigError

            raise ConfigError(f"{config}: a load ramp (openai.load) runs its points one after another against one "
                              "server; run it without --ray")
        if use_ray or ray_address:
            code = _run_on_ray(experiments, expect, ray_address)
        else:
            code = 1 if _run_all(experiments, expect, quiet, ramps) else 0
    if code:
        raise typer.Exit(code)


def _load(path: Path | None, overrides: dict[str, Any]) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
    """(id, config) pairs, the file's expect gates, and the ramp of each load point (by id)."""
    from llenergymeasure.config.benchmark_file import load_benchmark_file
    from llenergymeasure.config.loader import load_experiment_config

    if path is None:
        config = load_experiment_config(cli_overrides=overrides)
        return [(config.name or config.model, config)], {}, {}
    study = load_benchmark_file(path, cli_overrides=overrides)
    if any(e.reference for e in study.experiments):
        print(f"note: {path}: 'against:' is measured beside each experiment by pytest and llem ab; "
              "llem run measures each experiment alone", file=sys.stderr)
    ramps = {e.id: e.ramp for e in study.experiments if e.ramp}
    return [(e.id, e.config) for e in study.experiments], study.expect, ramps


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
            "batch": str(config.pytorch.batch_size) if config.backend == "pytorch" else "-",
            "VRAM estimate": f"{report.vram.total_gb:.2f} GB" if report.vram else "unavailable",
        } for exp_id, config, report in reports])
        print(f"GPU memory: {f'{gpu_gb:.1f} GB' if gpu_gb else 'no GPU visible'}")
    if len(reports) == 1 or verbose:
        for exp_id, config, report in reports:
            if len(reports) > 1:
                print()
            print(f"Config (resolved){' with sources' if verbose else ''}: {exp_id}")
            print_config(config, verbose)
            why_not = next((note for note in report.notes if note.startswith("no VRAM estimate:")), None)
            print(f"VRAM estimate: {vram_text(report.vram, gpu_gb, why_not)}")
    notes = dict.fromkeys(note for _, _, report in reports for note in report.notes)
    for note in notes:
        print(f"note: {note}")
    problems = _problems(reports)
    if problems:
        raise PreFlightError(problems)
    print("Dry run: config is valid.")


def _problems(reports: list[Any]) -> list[str]:
    """Every problem, prefixed by its experiment's id in a study; one every experiment has (an
    unusable output_dir) is said once."""
    if len(reports) == 1:
        return list(reports[0][2].problems)
    shared = set.intersection(*(set(report.problems) for _, _, report in reports))
    return [*dict.fromkeys(p for _, _, report in reports for p in report.problems if p in shared),
            *(f"{exp_id}: {p}" for exp_id, _, report in reports for p in report.problems if p not in shared)]


def _check_output_dirs(experiments: list[Any]) -> None:
    """PreFlightError (exit 1) before anything is loaded when an output_dir cannot take result files."""
    from llenergymeasure.core.dry_run import output_dir_problem
    from llenergymeasure.exceptions import PreFlightError

    problems = dict.fromkeys(problem for _, config in experiments if (problem := output_dir_problem(config)))
    if problems:
        raise PreFlightError(list(problems))


def _run_all(experiments: list[Any], expect: dict[str, Any], quiet: bool, ramps: dict[str, str] | None = None) -> bool:
    """Run every experiment (one failing, or one whose result cannot be saved, does not stop the
    rest); True when any failed. When interrupted, a study lists what it finished and where it stopped.
    A load ramp (``ramps``: the ramp of each load point) with ``until: saturation`` skips its points
    after the first saturated one; its ``at: slo`` gates are checked once its points have run."""
    from llenergymeasure.core.runner import measure
    from llenergymeasure.exceptions import ConfigError, LLEMError

    ramps = ramps or {}
    single = len(experiments) == 1
    rows: list[dict[str, str]] = []
    saved_to: list[str] = []  # where each finished experiment's result is, as the summary says it
    failed = False
    ramp_points: dict[str, list[tuple[str, Any]]] = {}  # per ramp: (point id, its result or None), in order
    stopped: dict[str, str] = {}  # ramp -> the saturated point it stopped at
    skipped: dict[str, list[str]] = {}
    try:
        for exp_id, config in experiments:
            ramp = ramps.get(exp_id)
            if ramp in stopped:
                skipped.setdefault(ramp, []).append(exp_id)
                rows.append(_skipped_row(exp_id, f"the ramp stopped at {stopped[ramp]} (saturated; until: saturation)"))
                saved_to.append("-")
                continue
            if not single:
                print(f"[{len(rows) + 1}/{len(experiments)}] {exp_id}", file=sys.stderr)
            try:
                result = measure(config, progress=not quiet)
            except ConfigError:
                raise
            except LLEMError as exc:
                if single:
                    raise
                rows.append(_error_row(exp_id, exc))
                saved_to.append("-")
                failed = True
                if ramp:
                    ramp_points.setdefault(ramp, []).append((exp_id, None))
                continue
            row, where, not_ok = _keep(exp_id, result, config.output_dir, expect, single)
            failed = failed or not_ok
            if row is not None:
                rows.append(row)
                saved_to.append(where)
            if ramp:
                ramp_points.setdefault(ramp, []).append((exp_id, result))
                load = config.openai.load
                if result.load_point and result.load_point.get("saturated") and load.until == "saturation":
                    stopped[ramp] = exp_id
    except KeyboardInterrupt:
        if not single:
            _print_stopped(rows, saved_to, experiments)
        raise
    if not single:
        _print_summary(rows, experiments)
    for ramp, points in ramp_points.items():
        failed = _check_ramp(ramp, points, expect, skipped.get(ramp, [])) or failed
    return failed


def _skipped_row(exp_id: str, why: str) -> dict[str, str]:
    from llenergymeasure.cli.display import summary_row

    row = summary_row(exp_id, None, [], why)
    row["verdict"] = f"skipped: {why}"
    return row


def _check_ramp(ramp: str, points: list[tuple[str, Any]], expect: dict[str, Any], skipped: list[str]) -> bool:
    """Print the ``at: slo`` verdicts of one ramp; True when one failed."""
    from llenergymeasure.results.gates import check_at_slo

    verdicts = check_at_slo(points, expect, skipped)
    for verdict in verdicts:
        print(f"{ramp}: expect {'PASS' if verdict.passed else 'FAIL'}  {verdict.text}")
    return not all(verdict.passed for verdict in verdicts)


def _run_on_ray(experiments: list[Any], expect: dict[str, Any], address: str | None) -> int:
    """Every experiment as a Ray task; each result saved as it arrives, the table in the
    experiments' order at the end. The exit code: 0, 1 (a run error, a result not saved, a failed
    gate) or 2 (a task's config error). Interrupted: the unfinished tasks are cancelled and the
    finished ones listed."""
    from llenergymeasure.executors.ray import run_tasks

    single, total = len(experiments) == 1, len(experiments)
    rows: dict[int, dict[str, str]] = {}  # by the experiment's index
    saved_to: dict[int, str] = {}
    code = 0
    try:
        with contextlib.closing(run_tasks(experiments, address)) as tasks:
            for index, outcome in tasks:
                exp_id, config = experiments[index]
                on = f" on {outcome.host}" if outcome.host else ""
                if outcome.failure is not None:
                    error = outcome.failure.error()
                    if single:
                        raise error
                    print(f"[{len(rows) + 1}/{total}] {exp_id}: failed{on}", file=sys.stderr)
                    rows[index], saved_to[index] = _error_row(exp_id, error), "-"
                    code = max(code, error.exit_code)
                    continue
                if not single:
                    print(f"[{len(rows) + 1}/{total}] {exp_id}: done{on}", file=sys.stderr)
                row, where, failed = _keep(exp_id, outcome.result, config.output_dir, expect, single)
                code = max(code, int(failed))
                if row is not None:
                    rows[index], saved_to[index] = row, where
    except KeyboardInterrupt:
        if not single:
            _print_stopped_tasks(rows, saved_to, experiments)
        raise
    if not single:
        _print_summary([rows[index] for index in sorted(rows)], experiments)
    return code


def _keep(exp_id: str, result: Any, output_dir: str | None, expect: dict[str, Any],
          single: bool) -> tuple[dict[str, str] | None, str, bool]:
    """Save a finished experiment's result and check its gates: (its table row, or None for a
    single experiment, whose detailed summary is printed now; where the result is; whether it failed)."""
    from llenergymeasure.cli.display import one_line, print_result, summary_row
    from llenergymeasure.results.gates import check_expect

    where, save_error = save_result(result, output_dir)
    verdicts = check_expect(result, expect)
    failed = save_error is not None or not all(v.passed for v in verdicts)
    if single:
        print_result(result, verdicts, where)
        if save_error:
            print(f"Error: {save_error}", file=sys.stderr)
        return None, where, failed
    row = summary_row(exp_id, result, verdicts, None)
    if save_error:
        row["verdict"] += f"; ERROR: {one_line(save_error)}"
        print(f"Error in {exp_id}: {save_error}", file=sys.stderr)
    return row, where, failed


def _error_row(exp_id: str, error: Exception) -> dict[str, str]:
    """An experiment that could not run: said on stderr, and its row."""
    from llenergymeasure.cli.display import one_line, summary_row

    print(f"Error in {exp_id}: {error}", file=sys.stderr)
    return summary_row(exp_id, None, [], one_line(error))


def _print_summary(rows: list[dict[str, str]], experiments: list[Any]) -> None:
    from llenergymeasure.cli.display import print_table

    print_table(rows)
    if rows and all(not config.output_dir for _, config in experiments):
        print(f"Results not saved: {KEEP_HINT.format(them='them')}.", file=sys.stderr)


KEEP_HINT = "pass -o DIR (or set output_dir in the file or the user config) to keep {them}"


def save_result(result: Any, output_dir: str | None) -> tuple[str, Exception | None]:
    """Save ``result`` in ``output_dir``: (where it is, as the summary says it; the NotSaved error
    when it had to go elsewhere or nowhere)."""
    from llenergymeasure.results.io import NotSaved

    if not output_dir:
        return f"not saved: {KEEP_HINT.format(them='it')}", None
    try:
        return str(result.save(output_dir)), None
    except NotSaved as exc:
        where = f"{exc.kept_at} (not in {output_dir})" if exc.kept_at else "NOT SAVED"
        return f"{where}: see the error below", exc


def _print_stopped(rows: list[dict[str, str]], saved_to: list[str], experiments: list[Any]) -> None:
    """An interrupted study: the table of what finished, with where each result is (stdout), and
    where it stopped (stderr)."""
    from llenergymeasure.cli.display import print_table

    if rows:
        print_table([{**row, "result": where} for row, where in zip(rows, saved_to)])
    done, total = len(rows), len(experiments)
    if done < total:
        not_started = total - done - 1
        print(f"Stopped at [{done + 1}/{total}] {experiments[done][0]}: {done} finished"
              + (f", {not_started} not started" if not_started else "") + ".", file=sys.stderr)


def _print_stopped_tasks(rows: dict[int, dict[str, str]], saved_to: dict[int, str], experiments: list[Any]) -> None:
    """An interrupted study on Ray: the table of what finished (in the study's order), with where
    each result is (stdout), and which experiments were cancelled (stderr)."""
    from llenergymeasure.cli.display import print_table

    if rows:
        print_table([{**rows[index], "result": saved_to[index]} for index in sorted(rows)])
    cancelled = [exp_id for index, (exp_id, _) in enumerate(experiments) if index not in rows]
    if cancelled:
        print(f"Stopped: {len(rows)} finished, {len(cancelled)} cancelled ({', '.join(cancelled)}).", file=sys.stderr)
