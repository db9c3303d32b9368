"""The package's exception types. Each message names the problem and the fix."""

from __future__ import annotations


class GrokscopeError(Exception):
    """Base class of every error grokscope raises on purpose."""


class SpecError(GrokscopeError, ValueError):
    """A task, model or training spec has a field with an impossible value."""

    def __init__(self, spec: str, field: str, got: object, expected: str, fix: str = ""):
        self.spec, self.field, self.got = spec, field, got
        msg = f"{spec}.{field}={got!r} is not allowed: expected {expected}."
        if fix:
            msg += f" {fix}"
        super().__init__(msg)


class CheckpointError(GrokscopeError, ValueError):
    """A checkpoint file or run directory is missing, truncated, foreign or inconsistent."""


class UnsafeCheckpointError(CheckpointError):
    """A legacy torch file needs objects outside the allow-list; it is refused, never unpickled."""


class ShapeError(GrokscopeError, ValueError):
    """Tensors passed in do not have the shapes the model or task expects."""


class DeviceError(GrokscopeError, RuntimeError):
    """A device was asked for that this machine does not have."""


class TrainingDiverged(GrokscopeError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class StorageError(GrokscopeError, OSError):
    """Writing failed after work started (disk full, quota, read-only or failing filesystem); what was
    written before is kept. `path` is the file, `needed` and `free` the bytes (None where unknown)."""

    def __init__(self, message: str, *, path=None, errno: int | None = None, needed=None, free=None):
        OSError.__init__(self, message)
        self.errno, self.filename = errno, None if path is None else str(path)
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        return self.args[0]


class RunLockedError(GrokscopeError, RuntimeError):
    """A run directory is being written by another process (or this process lost its lock on it)."""
