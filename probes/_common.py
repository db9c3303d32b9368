"""Shared plumbing of the probes: JSON-able results, model family checks, devices."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from interp.errors import ShapeError, SpecError, resolve_device


def to_jsonable(x: Any) -> Any:
    """Tensors, arrays and nested dataclasses/dicts/lists -> plain lists, floats, ints, str, None."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            x = torch.view_as_real(x)
        return x.tolist()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x) if f.repr}
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, torch.nn.Module):
        return None
    return x


class ResultMixin:
    """`to_dict()` for the frozen result dataclasses: JSON-serialisable lists and floats (NaN -> None).
    Fields declared with `repr=False` (modules, large tensors kept for convenience) are left out."""

    def to_dict(self) -> dict:
        """The result as JSON-serialisable lists, floats, ints and strings."""
        return to_jsonable(self)


def model_family(model) -> str:
    """ "mlp" or "transformer", from the model's config; a clear error for anything else."""
    cfg = getattr(model, "cfg", None)
    family = getattr(cfg, "family", None)
    if family not in ("mlp", "transformer"):
        raise SpecError(
            "model",
            "cfg.family",
            family,
            "'mlp' or 'transformer'",
            "Pass a grokscope model built with interp.models.build_model (or loaded with interp.checkpoints.load).",
        )
    return family


def model_device(model) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def pick_device(model, device) -> torch.device:
    """The device to compute on: `device` when given (checked), else the model's."""
    return model_device(model) if device is None else resolve_device(device)


def model_on(model, device: torch.device):
    """`model` itself when it already lives on `device`, else a copy moved there (the caller's model
    is never moved)."""
    if model_device(model) == device:
        return model
    return copy.deepcopy(model).to(device)


def check_task(model, task) -> None:
    """The model and the task must agree on p."""
    if task is not None and model.p != task.p:
        raise ShapeError(
            f"the model was built for p={model.p} but the task has p={task.p}. Pass the task the model was trained on."
        )


def all_pairs(p: int, device=None) -> torch.Tensor:
    """[p*p, 2] long: every (a, b) in Z_p x Z_p, a-major (row a*p + b), the order of task.grid."""
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    return torch.stack([a, b], dim=1)


def resolve(model, task=None):
    """(model, task) from a model (+ task) or a loaded checkpoint (`interp.checkpoints.Checkpoint`
    or a zoo entry with .model and .task); the explicit task wins over the checkpoint's."""
    if not hasattr(model, "cfg") and hasattr(model, "model"):
        return model.model, (task if task is not None else getattr(model, "task", None))
    return model, task


def require_task(where: str, task) -> None:
    """A clear error when a probe that needs the task got none."""
    if task is None:
        raise SpecError(where, "task", None, "the Task the model was trained on", "Pass task=, or a loaded checkpoint.")
