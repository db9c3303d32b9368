"""The one device helper: resolve a device name, find a model's device, run a model on a device and in
eval mode."""

from __future__ import annotations

import contextlib
import copy

import torch

from interp.errors import DeviceError


def resolve_device(device: object = "auto") -> torch.device:
    """Turn "auto" / None / "cpu" / "cuda" / "cuda:1" / torch.device into a torch.device, or explain why not."""
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


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def same_device(a: torch.device, b: torch.device) -> bool:
    """True when a and b name the same device ('cuda' and 'cuda:0' are the same when 0 is current)."""
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def pick_device(model: torch.nn.Module, device: object = None) -> torch.device:
    """The device to compute on: `device` when given (checked), else the model's own."""
    return model_device(model) if device is None else resolve_device(device)


def model_on(model: torch.nn.Module, device: object = None) -> torch.nn.Module:
    """`model` itself when it already lives on `device` (None: where it is), else a copy moved there
    in eval mode. The caller's model is never moved behind its back."""
    if device is None:
        return model
    dev = resolve_device(device)
    if same_device(model_device(model), dev):
        return model
    return copy.deepcopy(model).to(dev).eval()


@contextlib.contextmanager
def eval_mode(model):
    """Run the block with `model` in eval mode, then put it back in the mode it was in (also on error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
