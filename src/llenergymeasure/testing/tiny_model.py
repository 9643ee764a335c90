"""Build a tiny GPT-2 offline: random weights, a byte-level BPE tokenizer trained in-process.

It writes the files of a hub checkpoint (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, generation_config.json) in the hub's layout, so every loading path is
exercised without a download. Built with numpy, safetensors and tokenizers only: no torch or
transformers import, so a conftest can build it before ``pytest --llem-dry-run`` (which must
not import torch) and it takes well under a second.

    python -m llenergymeasure.testing.tiny_model models/tiny-gpt2 [--layers 2] [--width 64]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

_CORPUS = [
    "The energy a language model spends per generated token is measured in joules.",
    "Power is sampled by the driver; energy counters accumulate in millijoules.",
    "A benchmark in continuous integration fails when joules per token regress.",
    "The quick brown fox jumps over the lazy dog while the GPU idles at forty watts.",
    "Explain the difference between latency and throughput in simple words.",
    "Write a short poem about a server room at night, humming with fans.",
]
EOS = "<|endoftext|>"
INIT_STD = 0.02  # GPT-2's initializer_range


def build_tiny_gpt2(
    directory: str | Path,
    *,
    layers: int = 2,
    width: int = 64,
    heads: int | None = None,
    context: int = 1024,
    seed: int = 0,
) -> Path:
    """Save a GPT-2 with random weights and its tokenizer to ``directory``; return the path.

    ``heads`` defaults to one per 64 channels (at least 2): 12 for a GPT-2-sized width of 768.
    """
    heads = heads or max(2, width // 64)
    if width % heads:
        raise ValueError(f"width {width} is not divisible by heads {heads}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    eos_id, vocab = _save_tokenizer(directory, context)
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": vocab,
        "n_positions": context,
        "n_embd": width,
        "n_layer": layers,
        "n_head": heads,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "initializer_range": INIT_STD,
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "tie_word_embeddings": True,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "torch_dtype": "float32",
    }
    _write_json(directory / "config.json", config)
    _write_json(directory / "generation_config.json", {"bos_token_id": eos_id, "eos_token_id": eos_id})
    _save_weights(directory / "model.safetensors", vocab, context, width, layers, seed)
    return directory


CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


def _save_tokenizer(directory: Path, context: int) -> tuple[int, int]:
    """Train a byte-level BPE on a small corpus; return (end-of-text id, vocabulary size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 20, trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    _write_json(directory / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "model_max_length": context,
        # A plain template, so a server can answer /v1/chat/completions with the tiny model.
        "chat_template": CHAT_TEMPLATE,
    })
    return tokenizer.token_to_id(EOS), tokenizer.get_vocab_size()


def _save_weights(path: Path, vocab: int, context: int, width: int, layers: int, seed: int) -> None:
    """GPT-2's initialisation: normal(0, 0.02), residual projections scaled by 1/sqrt(2 x layers)."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)

    def normal(*shape: int, std: float = INIT_STD) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    residual_std = INIT_STD / math.sqrt(2 * layers)
    tensors = {"transformer.wte.weight": normal(vocab, width), "transformer.wpe.weight": normal(context, width)}
    for i in range(layers):
        block = f"transformer.h.{i}"
        tensors.update({
            f"{block}.ln_1.weight": ones(width), f"{block}.ln_1.bias": zeros(width),
            f"{block}.attn.c_attn.weight": normal(width, 3 * width), f"{block}.attn.c_attn.bias": zeros(3 * width),
            f"{block}.attn.c_proj.weight": normal(width, width, std=residual_std),
            f"{block}.attn.c_proj.bias": zeros(width),
            f"{block}.ln_2.weight": ones(width), f"{block}.ln_2.bias": zeros(width),
            f"{block}.mlp.c_fc.weight": normal(width, 4 * width), f"{block}.mlp.c_fc.bias": zeros(4 * width),
            f"{block}.mlp.c_proj.weight": normal(4 * width, width, std=residual_std),
            f"{block}.mlp.c_proj.bias": zeros(width),
        })
    tensors.update({"transformer.ln_f.weight": ones(width), "transformer.ln_f.bias": zeros(width)})
    save_file(tensors, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """``python -m llenergymeasure.testing.tiny_model [--layers N] [--width N] DIRECTORY``."""
    parser = argparse.ArgumentParser(
        prog="python -m llenergymeasure.testing.tiny_model",
        description="Build a tiny GPT-2 (random weights, a tokenizer trained here) offline, in the hub's layout.",
    )
    parser.add_argument("directory", help="where to write the model (created if missing); prints it when done")
    parser.add_argument("--layers", type=_positive, default=2, help="transformer blocks (default 2)")
    parser.add_argument("--width", type=_positive, default=64, help="hidden size (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    args = parser.parse_args(argv)
    if args.directory.startswith("-"):  # only after "--": never a folder named like an option
        parser.error(f"a directory may not start with '-': {args.directory!r} (write ./{args.directory})")
    try:
        print(build_tiny_gpt2(args.directory, layers=args.layers, width=args.width, seed=args.seed))
    except (ValueError, OSError) as exc:
        parser.exit(1, f"error: {exc}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


if __name__ == "__main__":
    main()
