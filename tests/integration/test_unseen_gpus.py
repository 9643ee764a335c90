"""GPUs named in ``openai.gpus`` that this machine does not see: energy that cannot be had stops
pre-flight (exit 1, naming them) instead of a whole run that ends with "energy unavailable". The
dry run says the same on a machine with GPUs; on one with none (a CPU runner checking a file
that runs elsewhere) it is a note."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving import StubServer

from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.dry_run import clear_caches, dry_run
from llenergymeasure.energy import hardware
from llenergymeasure.energy.sources import nvml_status
from tests.fakes.pynvml import FakeGpu, FakeNvml


def server_file(path: Path, stub: StubServer, gpus: str) -> Path:
    path.write_text(f"model: {stub.model}\nbackend: openai\nn: 2\ndataset: builtin\nwarmup: {{enabled: false}}\n"
                    f"baseline: {{enabled: false}}\nopenai:\n  base_url: {stub.base_url}\n  gpus: {gpus}\n")
    return path


no_gpu_here = pytest.mark.skipif(bool(nvml_status()[1]), reason="needs a machine where NVML sees no GPU")


@no_gpu_here
def test_a_run_naming_gpus_this_machine_lacks_stops_before_any_request(run_llem, tmp_path):
    with StubServer() as stub:
        proc = run_llem("run", str(server_file(tmp_path / "exp.yaml", stub, "[0, 1]")), "-o", str(tmp_path / "out"),
                        timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "openai.gpus: GPU 0 is not visible to this process (visible: none); NVML: " in proc.stderr, proc.stderr
    assert "energy.source: none to measure without energy" in proc.stderr
    assert stub.headers and all("Content-Length" not in h for h in stub.headers)  # GET /models only, no prompt
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@no_gpu_here
def test_without_any_gpu_here_the_dry_run_notes_them_for_the_machine_that_runs_it(run_llem, tmp_path):
    with StubServer() as stub:
        proc = run_llem("run", "--dry-run", str(server_file(tmp_path / "exp.yaml", stub, "[0, 1]")), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "openai.gpus: GPU 0 is not visible to this process (visible: none)" in proc.stdout
    assert "(no GPU here; checked again where it runs)" in proc.stdout


def test_on_a_gpu_machine_the_dry_run_fails_on_a_gpu_it_does_not_have(tmp_path):
    hardware.set_pynvml(FakeNvml([FakeGpu("GPU-aaaaaaaa-1", counter_mj=lambda t: int(t * 100_000))]))
    clear_caches()
    try:
        with StubServer() as stub:
            config = load_experiment_config(server_file(tmp_path / "exp.yaml", stub, "[0, 1]"),
                                            user_config_defaults={})
            report = dry_run(config, None)
            config_ok = load_experiment_config(server_file(tmp_path / "ok.yaml", stub, "[GPU-aaaaaaaa-1]"),
                                               user_config_defaults={})
            fine = dry_run(config_ok, None)
    finally:
        hardware.set_pynvml(None)
        clear_caches()
    assert [p for p in report.problems if p.startswith("openai.gpus: GPU 1 is not visible to this process "
                                                        "(visible: 0 (GPU-aaaaaaaa-1))")], report.problems
    assert not [p for p in fine.problems if "openai.gpus" in p], fine.problems
