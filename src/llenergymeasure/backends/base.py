"""The Backend protocol: load a model, tokenize prompts ahead of time, generate a batch.

The runner owns the measurement protocol; a backend only does inference and reports what it
counted. Everything expensive that is not inference (loading, tokenizing, moving inputs to
the device) happens before the energy window opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from llenergymeasure.config.models import ExperimentConfig


@dataclass
class BatchOutput:
    """What one generate call produced. Token counts exclude padding."""

    input_tokens: int
    output_tokens: int
    latency_s: float
    ttft_s: float | None
    itls_s: list[float] = field(default_factory=list)  # gaps between streamed tokens, where streamed
    # A served request's clock (time.perf_counter()), for a load point's steady window
    # (serving/steady_state.py): when it was sent, when each piece of text came, when it ended.
    sent_at: float | None = None
    token_times: list[float] = field(default_factory=list)
    done_at: float | None = None


class Backend(Protocol):
    name: str
    device: str  # "cpu", "cuda:0", ..., or "server:<base_url>" for a server

    def load(self, config: ExperimentConfig, device: str, device_map: dict[str, int | str] | None = None) -> None:
        """Load model and tokenizer onto ``device`` (chosen by pre-flight: "cpu", "cuda:0", ...), or
        spread over GPUs by ``device_map`` (pre-flight's plan: module name -> GPU index, cpu, disk)."""
        ...

    def prepare(self, prompts: list[str]) -> list[Any]:
        """Tokenize into device-resident batches of ``pytorch.batch_size`` (or the backend's knob;
        a server backend's "batches" are its requests)."""
        ...

    def run(self, batches: list[Any], bar: Any) -> list[BatchOutput]:
        """Run every batch (one measurement window's work, or the warmup's), calling
        ``bar.update(1)`` as each finishes; one output per batch, in order."""
        ...

    def synchronize(self) -> None:
        """Wait for queued device work, so a clock or counter read sees all of it."""
        ...

    def reset_peak_memory(self) -> None: ...

    def peak_memory_mb(self) -> float | None: ...

    def environment(self) -> dict[str, Any]:
        """Versions and device names for the result's environment snapshot."""
        ...

    def unload(self) -> None: ...


def get_backend(name: str) -> Backend:
    if name == "pytorch":
        from llenergymeasure.backends.pytorch import PyTorchBackend

        return PyTorchBackend()
    if name == "openai":
        from llenergymeasure.backends.openai import OpenAIBackend

        return OpenAIBackend()
    raise ValueError(f"unknown backend {name!r}")  # unreachable: the config allows only known names
