"""RAPL against a fake powercap tree, and the labelled CPU estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.energy.cpu_estimate import WATTS_PER_THREAD_FALLBACK, CpuEstimateMeter, cpu_tdp
from llenergymeasure.energy.meters import create_meter
from llenergymeasure.energy.rapl import RaplMeter, rapl_zones
from llenergymeasure.exceptions import PreFlightError


def make_powercap(root: Path, package_uj: int, dram_uj: int, max_uj: int = 262_143_328_850) -> Path:
    package = root / "intel-rapl:0"
    for zone, name, value in ((package, "package-0", package_uj), (package / "intel-rapl:0:0", "core", 5),
                              (package / "intel-rapl:0:1", "dram", dram_uj)):
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return root


def set_counters(root: Path, package_uj: int, dram_uj: int) -> None:
    (root / "intel-rapl:0" / "energy_uj").write_text(f"{package_uj}\n")
    (root / "intel-rapl:0" / "intel-rapl:0:1" / "energy_uj").write_text(f"{dram_uj}\n")


def test_rapl_reads_package_and_dram_but_not_core(tmp_path):
    root = make_powercap(tmp_path, 1_000_000, 500_000)
    zones = rapl_zones(root)
    assert [z.name for z in zones] == ["package-0", "dram"]
    meter = RaplMeter(zones)
    meter.start()
    set_counters(root, 3_500_000, 750_000)
    reading = meter.stop()
    assert reading.source == "rapl" and not reading.estimated
    assert reading.energy_j == pytest.approx(2.75)
    assert reading.cpu_energy_j == reading.energy_j


def test_rapl_counter_wraparound(tmp_path):
    max_uj = 1_000_000
    root = make_powercap(tmp_path, 900_000, 0, max_uj=max_uj)
    meter = RaplMeter(rapl_zones(root))
    meter.start()
    set_counters(root, 100_000, 0)  # wrapped: 100 000 to the top, 100 000 after
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(0.2)
    assert "counter_wrapped" in [code for code, _ in reading.warnings]


def test_auto_on_cpu_prefers_rapl_when_readable(tmp_path, monkeypatch):
    make_powercap(tmp_path / "pc", 0, 0)
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(tmp_path / "pc"))
    assert create_meter(EnergyConfig(source="auto"), "cpu").source == "rapl"


def test_auto_on_cpu_without_rapl_falls_back_to_the_labelled_estimate():
    meter = create_meter(EnergyConfig(source="auto"), "cpu")
    assert meter.source == "cpu_estimate"
    meter.start()
    sum(i * i for i in range(300_000))
    reading = meter.stop()
    assert reading.estimated is True
    assert reading.energy_j > 0
    assert any(code == "energy_estimated" and "not a measurement" in text for code, text in reading.warnings)


def test_named_rapl_unavailable_is_a_preflight_error_saying_why():
    with pytest.raises(PreFlightError, match="rapl is unavailable: no RAPL domains"):
        create_meter(EnergyConfig(source="rapl"), "cpu")


def test_cpu_tdp_from_codecarbon_table_and_fallback():
    assert cpu_tdp("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz") == (150.0, "Intel Xeon Gold 6248")
    watts, matched = cpu_tdp("Imaginary CPU 9000")
    assert matched is None and watts > 0
    assert CpuEstimateMeter("Imaginary CPU 9000").watts_per_cpu_second == pytest.approx(WATTS_PER_THREAD_FALLBACK)
