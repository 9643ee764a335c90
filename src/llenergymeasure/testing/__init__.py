"""Helpers for testing llenergymeasure offline (tiny models built from configs)."""
