"""A GPU meter and a CPU meter read over the same window: energy summed, domains kept apart."""

from __future__ import annotations

from llenergymeasure.energy.base import EnergyMeter, EnergyReading, probes_of, update_period_s
from llenergymeasure.energy.sampler import Probe


class CombinedMeter:
    def __init__(self, gpu: EnergyMeter, cpu: EnergyMeter) -> None:
        self.gpu, self.cpu = gpu, cpu
        self.source = f"{gpu.source}+{cpu.source}"
        self.update_period_s = max(update_period_s(gpu), update_period_s(cpu))

    def probes(self) -> dict[str, Probe]:
        return {**probes_of(self.gpu), **probes_of(self.cpu)}

    def start(self) -> None:
        self.gpu.start()
        self.cpu.start()

    def stop(self) -> EnergyReading:
        cpu = self.cpu.stop()
        gpu = self.gpu.stop()
        known = [r.energy_j for r in (gpu, cpu) if r.energy_j is not None]
        return EnergyReading(
            source=self.source,
            energy_j=sum(known) if gpu.energy_j is not None else None,
            gpu_energy_j=gpu.gpu_energy_j,
            cpu_energy_j=cpu.cpu_energy_j,
            estimated=gpu.estimated or cpu.estimated,
            suspect=gpu.suspect or cpu.suspect,
            unavailable_reason=gpu.unavailable_reason,
            warnings=gpu.warnings + cpu.warnings,
            devices=gpu.devices + cpu.devices,
            timeline={**gpu.timeline, **cpu.timeline},
        )

    def close(self) -> None:
        try:
            self.gpu.close()
        finally:
            self.cpu.close()
