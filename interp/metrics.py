"""Accuracies and losses of a model on a task's subsets: test, clean training, noisy training."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interp.device import eval_mode
from interp.errors import ShapeError

METRIC_SUBSETS = ("train", "train_clean", "train_noisy", "train_noisy_true", "train_true", "test")


def check_task(model, task) -> None:
    """The model and the task must agree on p (a ShapeError that says which task to pass, if not)."""
    if task is not None and model.p != task.p:
        raise ShapeError(
            f"the model was built for p={model.p} but the task has p={task.p}. Pass the task the model was "
            "trained on (or build the model with the task's p)."
        )


@torch.no_grad()
def all_logits(model, task, device=None, batch_size: int = 16384) -> torch.Tensor:
    """Logits [N, p] of `model` on every input pair of `task` (float32, on `device`)."""
    check_task(model, task)
    if device is None:
        device = next(model.parameters()).device
    inputs = task.inputs.to(device)
    out = [model.pair_logits(inputs[i : i + batch_size]).float() for i in range(0, len(inputs), batch_size)]
    return torch.cat(out)


def subset_metrics(logits: torch.Tensor, task) -> dict[str, float]:
    """Metrics from the logits over the full table ([N, p], or [M, N, p] for M models at once).

    Keys, each with `_acc` and `_loss` (cross-entropy): train (given labels), train_clean,
    train_noisy (against the labels given), train_noisy_true (the same examples against the true
    labels), train_true (all training examples against true labels), test. Empty subsets give NaN.
    """
    device = logits.device
    tr, te = task.train_idx.to(device), task.test_idx.to(device)
    given, true = task.train_labels.to(device), task.labels.to(device)
    noisy = task.noisy_mask.to(device)
    subsets = {
        "train": (tr, given),
        "train_clean": (tr[~noisy], given[~noisy]),
        "train_noisy": (tr[noisy], given[noisy]),
        "train_noisy_true": (tr[noisy], true[tr][noisy]),
        "train_true": (tr, true[tr]),
        "test": (te, true[te]),
    }
    out: dict[str, float] = {}
    for name, (idx, y) in subsets.items():
        if len(idx) == 0:
            out[f"{name}_acc"] = float("nan")
            out[f"{name}_loss"] = float("nan")
            continue
        lg = logits[..., idx, :].double()
        out[f"{name}_acc"] = (lg.argmax(-1) == y).double().mean(-1).tolist()
        out[f"{name}_loss"] = (
            F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.expand(lg.shape[:-1]).reshape(-1), reduction="none")
            .reshape(lg.shape[:-1])
            .mean(-1)
            .tolist()
        )
    return out


def evaluate(model, task, device=None) -> dict[str, float]:
    """Accuracies and cross-entropy losses of `model` on `task`: "test_acc", "train_acc",
    "train_clean_acc", "train_noisy_acc" (against the given, noisy labels), "train_noisy_true_acc"
    (the same examples against the true labels), "train_true_acc", and the matching "*_loss"."""
    with eval_mode(model):
        return subset_metrics(all_logits(model, task, device=device), task)


def first_step(points, threshold: float, *, below: bool = False) -> int | None:
    """The first step of (step, value) pairs, in step order, at which value >= threshold (value <=
    threshold with below=True); None and NaN values are skipped; None when it never happens. The one
    helper behind T_mem / T_gen, the zoo's steps to 99% and the progress measures' first crossings."""
    for step, value in sorted(points, key=lambda sv: sv[0]):
        if value is None or value != value:
            continue
        if (value <= threshold) if below else (value >= threshold):
            return int(step)
    return None
