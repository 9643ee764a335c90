"""The transformers backend: AutoModelForCausalLM.generate on CPU or CUDA.

Choices that keep energy numbers repeatable and honest:
- greedy decoding unless the config samples; synthetic prompts and ``decoder.ignore_eos``
  generate exactly ``max_output_tokens`` (``min_new_tokens`` = ``max_new_tokens``);
- left padding, and token counts from the attention mask and the first end-of-text, so
  padding is never counted as work done;
- time to first token from a logits processor, which generate calls once the prefill has
  produced the first logits: one device sync per batch, instead of a streamer's copy to
  the host after every token;
- ``run_prefill`` runs each batch's prefill alone (generate with ``max_new_tokens=1``: the
  forward pass over the prompt and the first token), for the runner's prefill windows;
- a model spread over GPUs is placed by transformers/accelerate with the explicit device map
  pre-flight planned (so the GPUs measured are exactly the ones it occupies); inputs go to
  the GPU of its first module, and syncs and peak memory cover every GPU it is on.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList

from llenergymeasure.backends.base import BatchOutput
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.exceptions import BackendError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class _FirstTokenClock(LogitsProcessor):
    """Records when the first logits of a generate call exist (after a device sync)."""

    def __init__(self, synchronize: Any) -> None:
        self.synchronize = synchronize
        self.at: float | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.at is None:
            self.synchronize()
            self.at = time.perf_counter()
        return scores


class PyTorchBackend:
    name = "pytorch"

    def __init__(self) -> None:
        self.device = "cpu"
        self._gpus: list[int] = []  # every CUDA device the model is on
        self._model: Any = None
        self._tokenizer: Any = None
        self._generation: GenerationConfig | None = None
        self._prefill: GenerationConfig | None = None
        self._eos_ids: torch.Tensor | None = None
        self._config: ExperimentConfig | None = None

    def load(self, config: ExperimentConfig, device: str, device_map: dict[str, int | str] | None = None) -> None:
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self._config = config
        self.device = device
        self._gpus = sorted({t for t in device_map.values() if isinstance(t, int)}) if device_map else (
            [torch.device(device).index or 0] if device.startswith("cuda") else [])
        options = {"revision": config.pytorch.revision, "trust_remote_code": config.pytorch.trust_remote_code}
        # Never a pickle (pytorch_model.bin can run code when loaded): safetensors only.
        model_options: dict[str, Any] = {"dtype": DTYPES[config.precision], "use_safetensors": True, **options}
        if config.pytorch.attn_implementation:
            model_options["attn_implementation"] = config.pytorch.attn_implementation
        if device_map:
            model_options["device_map"] = device_map
        try:
            tokenizer = AutoTokenizer.from_pretrained(config.model, **options)
            model = AutoModelForCausalLM.from_pretrained(config.model, **model_options)
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            raise BackendError(f"cannot load model {config.model!r}: {_first_line(exc)}") from exc

        context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        wanted = config.max_input_tokens + config.max_output_tokens
        if context and wanted > context and not getattr(model.config, "rope_scaling", None):
            raise BackendError(
                f"max_input_tokens + max_output_tokens = {wanted} exceeds the context of {config.model!r} "
                f"({context} tokens); lower max_input_tokens or max_output_tokens"
            )

        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise BackendError(f"tokenizer of {config.model!r} has neither a pad nor an end-of-text token")
            tokenizer.pad_token = tokenizer.eos_token

        if device_map:
            model.eval()
            self.device = str(model.get_input_embeddings().weight.device)  # where the inputs go
        else:
            model.to(self.device).eval()
        if config.pytorch.torch_compile:
            model.forward = torch.compile(model.forward)
        torch.manual_seed(config.random_seed)

        self._model, self._tokenizer = model, tokenizer
        options = self._generation_options(config, model, tokenizer)
        self._generation = GenerationConfig(**options)
        self._prefill = GenerationConfig(**{**options, "max_new_tokens": 1, "min_new_tokens": None})
        eos = self._generation.eos_token_id
        eos_list = [eos] if isinstance(eos, int) else list(eos or [])
        self._eos_ids = torch.tensor(eos_list, device=self.device) if eos_list else None

    def _generation_options(self, config: ExperimentConfig, model: Any, tokenizer: Any) -> dict[str, Any]:
        decoder = config.decoder
        fixed_length = decoder.ignore_eos or config.dataset == "synthetic"
        options: dict[str, Any] = {
            "max_new_tokens": config.max_output_tokens,
            "min_new_tokens": config.max_output_tokens if fixed_length else None,
            "do_sample": decoder.do_sample,
            "repetition_penalty": decoder.repetition_penalty,
            "use_cache": config.pytorch.use_cache,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": model.generation_config.eos_token_id or tokenizer.eos_token_id,
        }
        if decoder.do_sample:
            options.update(temperature=decoder.temperature, top_k=decoder.top_k, top_p=decoder.top_p)
        else:  # unset the checkpoint's sampling defaults, which greedy decoding would warn about
            options.update(temperature=None, top_k=None, top_p=None)
        return options

    def prepare(self, prompts: list[str]) -> list[Any]:
        assert self._config is not None, "load() first"
        size = self._config.pytorch.batch_size
        return [
            self._tokenizer(
                prompts[start : start + size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self._config.max_input_tokens,
            ).to(self.device)
            for start in range(0, len(prompts), size)
        ]

    def run(self, batches: list[Any], bar: Any) -> list[BatchOutput]:
        outputs = []
        for batch in batches:
            outputs.append(self.generate(batch))
            bar.update(1)
        return outputs

    def run_prefill(self, batches: list[Any], bar: Any) -> list[BatchOutput]:
        """``run`` with each batch's prefill alone: one token per prompt, so no decode step."""
        outputs = []
        for batch in batches:
            outputs.append(self.generate(batch, prefill=True))
            bar.update(1)
        return outputs

    def generate(self, batch: Any, *, prefill: bool = False) -> BatchOutput:
        clock = _FirstTokenClock(self.synchronize)
        generation = self._prefill if prefill else self._generation
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                output = self._model.generate(
                    **batch, generation_config=generation, logits_processor=LogitsProcessorList([clock])
                )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"generate failed on {self.device}: {_first_line(exc)}") from exc
        self.synchronize()
        latency = time.perf_counter() - start
        generated = output[:, batch["input_ids"].shape[1] :]
        return BatchOutput(
            input_tokens=int(batch["attention_mask"].sum()),
            output_tokens=self._count_generated(generated),
            latency_s=latency,
            ttft_s=clock.at - start if clock.at is not None else None,
        )

    def _count_generated(self, generated: torch.Tensor) -> int:
        """Tokens up to and including each row's first end-of-text; what follows is padding."""
        length = generated.shape[1]
        if self._eos_ids is None or self._generation.min_new_tokens == self._generation.max_new_tokens:
            return generated.numel()
        is_eos = torch.isin(generated, self._eos_ids)
        first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, length)
        return int(first.sum())

    def synchronize(self) -> None:
        for gpu in self._gpus:
            torch.cuda.synchronize(gpu)

    def reset_peak_memory(self) -> None:
        for gpu in self._gpus:
            torch.cuda.reset_peak_memory_stats(gpu)

    def peak_memory_mb(self) -> float | None:
        """The peak of every GPU the model is on, summed (None on the CPU)."""
        if not self._gpus:
            return None
        return sum(torch.cuda.max_memory_allocated(gpu) for gpu in self._gpus) / 2**20

    def environment(self) -> dict[str, Any]:
        gpus = [torch.cuda.get_device_name(gpu) for gpu in self._gpus]  # the ones measured
        return {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "cuda": torch.version.cuda,
            "device": self.device,
            "gpus": gpus,
        }

    def unload(self) -> None:
        self._model = self._tokenizer = None
        gc.collect()
        if self._gpus:
            torch.cuda.empty_cache()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
