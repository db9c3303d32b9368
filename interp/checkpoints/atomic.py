"""Atomic file writes (the kernel lives in `interp.files`, below the models, which write through it too)."""

from interp.files import atomic_write_bytes, atomic_write_json

__all__ = ["atomic_write_bytes", "atomic_write_json"]
