"""Inference backends behind one protocol (see base.py). Only ``pytorch`` (transformers) for now."""

from llenergymeasure.backends.base import Backend, BatchOutput, get_backend

__all__ = ["Backend", "BatchOutput", "get_backend"]
