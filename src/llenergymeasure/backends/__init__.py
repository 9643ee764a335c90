"""Inference backends behind one protocol (see base.py): ``pytorch`` (transformers, in this process) and
``openai`` (an OpenAI-compatible server, measured from outside)."""

from llenergymeasure.backends.base import Backend, BatchOutput, get_backend

__all__ = ["Backend", "BatchOutput", "get_backend"]
