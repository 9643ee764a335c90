"""Build a tiny GPT-2 offline: random weights, a byte-level BPE tokenizer trained in-process.

It has the same files as a hub checkpoint (config.json, model.safetensors, tokenizer.json,
...), so every loading path is exercised without a download. About a second to build.

    python -m llenergymeasure.testing.tiny_model models/tiny-gpt2
"""

from __future__ import annotations

import sys
from pathlib import Path

_CORPUS = [
    "The energy a language model spends per generated token is measured in joules.",
    "Power is sampled by the driver; energy counters accumulate in millijoules.",
    "A benchmark in continuous integration fails when joules per token regress.",
    "The quick brown fox jumps over the lazy dog while the GPU idles at forty watts.",
    "Explain the difference between latency and throughput in simple words.",
    "Write a short poem about a server room at night, humming with fans.",
]


def build_tiny_gpt2(directory: str | Path, *, layers: int = 2, width: int = 64, context: int = 1024, seed: int = 0) -> Path:
    """Save a tiny GPT-2 and its tokenizer to ``directory`` and return the path."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    directory = Path(directory)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    eos = tokenizer.token_to_id("<|endoftext|>")
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(), n_positions=context, n_embd=width, n_layer=layers, n_head=2,
        bos_token_id=eos, eos_token_id=eos,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m llenergymeasure.testing.tiny_model DIRECTORY")
    print(build_tiny_gpt2(sys.argv[1]))
