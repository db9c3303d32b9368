"""File kernels: atomic writes (a crash leaves either the old file or the new one, never half of
one) and safetensors files read and written through them, with errors that say what is wrong.

They sit below the models (whose `save_pretrained` writes through them) and storage
(`interp.checkpoints`, which re-exports them).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from interp.errors import CheckpointError
from interp.results import dumps


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename, fsync folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # O_EXCL like mkstemp, but mode 0o666 so the umask gives the file the permissions any new file gets
    # (mkstemp's 0600 would make checkpoints and reports private to their writer).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some filesystems do not allow fsync on a directory
        pass
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as strict JSON atomically (NaN and infinities as null; see interp.results.to_jsonable)."""
    return atomic_write_bytes(path, dumps(obj).encode())


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are copied to contiguous CPU memory)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, safetensors_bytes(flat, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors, metadata), with a clear error for missing or broken files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}. Check the path (a safetensors weight file was expected).")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated / corrupt headers
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). It may be truncated or "
            "corrupted (an interrupted copy?): re-copy it, or load an earlier checkpoint of the run."
        ) from exc
    return tensors, meta
