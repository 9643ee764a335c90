"""The benchmark files here run on a tiny GPT-2 built offline, so CI needs no hub and no GPU.

The model is built once into ``.models/tiny-gpt2`` (git-ignored) before collection. The
builder uses numpy, safetensors and tokenizers only, so ``pytest benchmarks/ --llem-dry-run``
still never imports torch. It is written to a temporary directory and renamed into place, so
xdist workers starting together never see half a model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

TINY_MODEL = Path(__file__).parent / ".models" / "tiny-gpt2"


def pytest_configure(config: pytest.Config) -> None:
    if (TINY_MODEL / "model.safetensors").is_file():
        return
    from llenergymeasure.testing.tiny_model import build_tiny_gpt2

    TINY_MODEL.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-gpt2.", dir=TINY_MODEL.parent))
    build_tiny_gpt2(staging)
    try:
        os.rename(staging, TINY_MODEL)
    except OSError:  # another worker got there first
        shutil.rmtree(staging, ignore_errors=True)
