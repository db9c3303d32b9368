"""Progress measures over a run's checkpoints (Nanda et al. 2023): restricted and excluded loss,
Gini coefficients of the Fourier norms of the embedding and unembedding, and the total sum of
squared weights.

Restricted loss: the logits over the full (a, b) grid projected onto span{cos(w_k (a + b)),
sin(w_k (a + b)) : k key} plus the grid mean (per class), cross-entropy against the true labels on
every pair of the table. Excluded loss: the logits minus that projection of the key directions (the
mean is not removed), cross-entropy on the training split against the labels trained on. For
subtraction the directions are cos / sin(w_k (a - b)). Both follow the definitions of docs/papers.md, G.2 (the
projection of the logits); Nanda et al.'s notebook projects the neuron activations and maps them
through W_out W_U, which agrees for the direct path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.checkpoints import load_run
from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode, model_device
from interp.errors import SpecError
from interp.metrics import check_task, first_step
from interp.results import Result
from interp.tasks import all_pairs
from probes.basis import project_frequencies
from probes.fourier import (
    DEFAULT_KEY_RULE,
    KEY_RULES,
    embedding_matrix,
    fourier_basis,
    key_frequencies,
    n_frequencies,
    unembedding_matrix,
)
from probes.stats import gini

__all__ = [
    "ProgressMeasures",
    "fourier_norms",
    "progress_measures",
]

_DIRECTIONS = {"x+y": +1, "x-y": -1}


@dataclass(frozen=True, eq=False)
class ProgressMeasures(Result):
    """One value per checkpoint (aligned with `steps`) of each progress measure, and how they were
    computed (`key_frequencies` fixed over the run, from the final checkpoint unless given)."""

    steps: list[int]
    key_frequencies: list[int]
    key_rule: str
    restricted_loss: list[float]  # all pairs, true labels
    excluded_loss: list[float]  # training split, given labels
    train_loss: list[float]  # training split, given labels (unmodified logits)
    test_loss: list[float]
    train_acc: list[float]
    test_acc: list[float]
    restricted_acc: list[float]  # accuracy of the restricted logits on all pairs
    gini_embedding: list[float]
    gini_unembedding: list[float]
    sum_sq_weights: list[float]
    definitions: dict

    def first_step_below(self, measure: str, threshold: float) -> int | None:
        """First checkpoint step at which `measure` (e.g. "restricted_loss") is <= threshold."""
        return first_step(zip(self.steps, getattr(self, measure)), threshold, below=True)


def fourier_norms(subject, task=None, *, where: str = "embedding", device=None) -> torch.Tensor:
    """[p] norm of the embedding (or unembedding) along each row of `fourier_basis(p)`: the row
    norms of B E with E = `embedding_matrix` (W_E; [U^T, V^T] for one-hot MLPs) or
    `unembedding_matrix` (W_U^T; W for MLPs)."""
    if where not in ("embedding", "unembedding"):
        raise SpecError("fourier_norms", "where", where, "'embedding' or 'unembedding'")
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    with torch.no_grad():
        w = embedding_matrix(model) if where == "embedding" else unembedding_matrix(model)
        return (fourier_basis(model.p, device=w.device) @ w).norm(dim=1).cpu()


def _grid_logits(model) -> torch.Tensor:
    """[p, p, p] logits over every (a, b) (a, b, class)."""
    p = model.p
    pairs = all_pairs(p, device=model_device(model))
    with torch.no_grad():
        out = torch.cat([model.pair_logits(pairs[i : i + 16384]).double() for i in range(0, len(pairs), 16384)])
    return out.reshape(p, p, p)


def restricted_logits(logits: torch.Tensor, key_freqs: list[int], sign: int = +1) -> torch.Tensor:
    """Projection of grid logits [p, p, C] onto span{cos(w_k (a + sign b)), sin(...) : k in key_freqs}
    plus the grid mean of each class. Such a function depends on s = (a + sign b) mod p only, so it
    is the Fourier projection (frequencies {0} + key) of the per-s mean of the logits."""
    p = logits.shape[0]
    a = torch.arange(p, device=logits.device)
    s = (a[:, None] + sign * a[None, :]) % p  # [p, p]
    per_s = torch.zeros(p, logits.shape[-1], dtype=logits.dtype, device=logits.device)
    per_s.index_add_(0, s.reshape(-1), logits.reshape(p * p, -1))
    per_s = per_s / p  # each s is hit by p pairs
    keep = torch.zeros(n_frequencies(p), dtype=torch.bool, device=logits.device)
    keep[0] = True
    keep[list(key_freqs)] = True
    proj = project_frequencies(per_s, keep, dim=0)  # [p(s), C]
    return proj[s]  # [p, p, C]


@torch.no_grad()
def _measures_one(m, task, key_freqs, sign) -> dict:
    """Every progress measure of one checkpoint, from one forward pass over the p x p grid."""
    dev = model_device(m)
    with eval_mode(m):
        logits = _grid_logits(m)  # [p, p, p], float64
    p = m.p
    flat = logits.reshape(p * p, p)
    # the task's pairs live at row a * p + b of the full grid (division tables skip b = 0)
    rows = task.inputs[:, 0].to(dev) * p + task.inputs[:, 1].to(dev)
    tr, te = rows[task.train_idx.to(dev)], rows[task.test_idx.to(dev)]
    y_all, y_tr, y_te = task.labels.to(dev), task.train_labels.to(dev), task.test_labels.to(dev)
    restricted = restricted_logits(logits, key_freqs, sign).reshape(p * p, p)
    mean = logits.mean((0, 1)).reshape(1, p)
    excluded = flat - (restricted - mean)  # remove the key directions only, not the mean
    r_rows = restricted[rows]
    return dict(
        restricted_loss=float(F.cross_entropy(r_rows, y_all)),
        restricted_acc=float((r_rows.argmax(-1) == y_all).double().mean()),
        excluded_loss=float(F.cross_entropy(excluded[tr], y_tr)),
        train_loss=float(F.cross_entropy(flat[tr], y_tr)),
        test_loss=float(F.cross_entropy(flat[te], y_te)) if len(te) else float("nan"),
        train_acc=float((flat[tr].argmax(-1) == y_tr).double().mean()),
        test_acc=float((flat[te].argmax(-1) == y_te).double().mean()) if len(te) else float("nan"),
        gini_embedding=float(gini(fourier_norms(m, where="embedding"))),
        gini_unembedding=float(gini(fourier_norms(m, where="unembedding"))),
        sum_sq_weights=float(sum(p_.detach().double().pow(2).sum() for p_ in m.parameters())),
    )


def _checkpoints(run) -> tuple[list[int], Iterable, object, object]:
    """(steps, iterator of (step, model), task or None, loader of the final model)."""
    if isinstance(run, (str, os.PathLike)):
        run = load_run(run)
    if hasattr(run, "steps") and hasattr(run, "load"):  # interp.checkpoints.Run (lazy)
        steps = list(run.steps)
        if not steps:
            raise SpecError("progress_measures", "run", run, "a run with at least one checkpoint")
        return (
            steps,
            ((s, run.load(s).model) for s in steps),
            getattr(run, "task", None),
            lambda: run.load(steps[-1]).model,
        )
    pairs = list(run)
    if not pairs or not all(isinstance(x, (tuple, list)) and len(x) == 2 for x in pairs):
        raise SpecError(
            "progress_measures",
            "run",
            type(run).__name__,
            "an interp.checkpoints.Run (load_run(dir)) or a non-empty list of (step, model) pairs",
        )
    pairs.sort(key=lambda x: x[0])
    return [int(s) for s, _ in pairs], iter(pairs), None, lambda: pairs[-1][1]


def progress_measures(
    subject,
    task=None,
    *,
    device=None,
    key_freqs: list[int] | None = None,
    key_rule: str = DEFAULT_KEY_RULE,
) -> ProgressMeasures:
    """Nanda et al.'s progress measures at every checkpoint of a run: restricted loss, excluded loss,
    train/test loss, Gini of the Fourier norms of the embedding and unembedding, sum of squared
    weights. The subject is a trajectory: a run directory or `zoo:NAME`, an `interp.checkpoints.Run` (checkpoints loaded
    one at a time) or a list of (step, model) pairs (then pass `task`). Key frequencies are those of the final checkpoint
    (`key_frequencies(..., rule=key_rule)`) unless given. Addition and subtraction only.
    """
    steps, models, run_task, final = _checkpoints(subject)
    task = task if task is not None else run_task
    if task is None:
        raise SpecError(
            "progress_measures", "task", None, "the Task of the run", "Pass task= with a list of (step, model)."
        )
    op = task.spec.op
    if op not in _DIRECTIONS:
        raise SpecError(
            "progress_measures",
            "task.spec.op",
            op,
            f"one of {sorted(_DIRECTIONS)}",
            "The key directions cos/sin(w (a +- b)) are defined for addition and subtraction.",
        )
    sign = _DIRECTIONS[op]
    final_model = None
    if key_freqs is None:
        final_model = final()
        key_freqs = key_frequencies(final_model, rule=key_rule, device=device)
    key_freqs = [int(k) for k in key_freqs]
    rows: list[dict] = []
    for _, model in models:
        check_task(model, task)
        model, _ = resolve_subject(model, task, device=device)
        rows.append(_measures_one(model, task, key_freqs, sign))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    direction = "a + b" if sign > 0 else "a - b"
    return ProgressMeasures(
        steps=steps,
        key_frequencies=key_freqs,
        key_rule=KEY_RULES.get(key_rule, key_rule) if final_model is not None else "given",
        definitions={
            "restricted_loss": f"CE over all pairs of the logits projected on span{{cos, sin(w_k ({direction}))}} + grid mean",
            "excluded_loss": f"CE on the training split (given labels) of the logits minus their cos/sin(w_k ({direction})) components",
            "gini": "G = 2 sum_i i g_(i) / (n sum g) - (n + 1)/n of the norms along the p Fourier basis rows",
            "sum_sq_weights": "sum of squares of every parameter",
        },
        **cols,
    )
