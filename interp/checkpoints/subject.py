"""What an analysis runs on: one function turns every kind of subject into (model, task).

Every probe and circuit function takes `(subject, task=None, *, device=None, ...)`, where `subject`
is a model, a `Checkpoint` (or anything with `.model` and `.task`, such as a `TrainResult`), a run
directory, a checkpoint file, or `"zoo:NAME"`, and calls `resolve_subject` first.
"""

from __future__ import annotations

import os
import sys

import torch

from interp.checkpoints.loading import load
from interp.device import model_on
from interp.errors import SpecError
from interp.metrics import check_task


def resolve_subject(subject, task=None, *, where: str | None = None, need_task: bool = True, device=None):
    """(model, task) from any subject, checked: the explicit `task` wins over the subject's own;
    `need_task=True` refuses a bare model with no task; with `device`, the model is the subject's
    model on that device (a moved copy when it lives elsewhere; the caller's model is never moved).
    `where` names the function in error messages: by default the function that called this one (the
    analysis whose subject it is), so a call convention function's first line needs no name."""
    if where is None:
        where = sys._getframe(1).f_code.co_name
    if isinstance(subject, (str, os.PathLike)):
        subject = load(subject)
    if isinstance(subject, torch.nn.Module):
        model = subject
    elif isinstance(getattr(subject, "model", None), torch.nn.Module):
        model, task = subject.model, (task if task is not None else getattr(subject, "task", None))
    else:
        raise SpecError(
            where,
            "subject",
            type(subject).__name__,
            "a grokscope model, a Checkpoint, a run directory, a checkpoint file or 'zoo:NAME'",
        )
    if need_task and task is None:
        raise SpecError(where, "task", None, "the Task the model was trained on", "Pass task=, or a loaded checkpoint.")
    check_task(model, task)
    return model_on(model, device), task
