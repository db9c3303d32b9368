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


def resolve_device(device: object = "auto"):
    """Turn "auto" / "cpu" / "cuda" / "cuda:1" / torch.device into a torch.device, or explain why not."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(
            f"device={device!r} is not a device torch understands. Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was asked for, but torch sees no CUDA GPU on this machine "
                f"(torch {torch.__version__}, cuda build: {torch.version.cuda}). "
                "Use device='cpu', or device='auto' to take a GPU only when one exists."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device={device!r} was asked for, but only {torch.cuda.device_count()} CUDA device(s) exist. "
                f"Use an index below {torch.cuda.device_count()}."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError(f"device={device!r} was asked for, but MPS is not available. Use 'cpu'.")
    return dev
