"""Zero, mean and resample ablation of neurons and heads; pruning curves (Doshi et al. 2024).

`ablated(...)` is a context manager that installs the ablation as forward hooks; `ablate(...)`
evaluates one ablation on a task; `ablate_batch(...)` evaluates many neuron masks at once (stacked
over a leading axis) and `prune_curve(...)` uses it to prune neurons in the order of a score.

Replacement values:
- zero: the activation is set to 0;
- mean: to its mean over the reference inputs (every pair of the task's table, or its training split),
  per position;
- resample: to its value on another reference input, drawn at random per example (seeded).
Reference activations come from a full forward pass; where a forward pass computes the last
transformer layer at the answer position only (`pair_logits`), the answer position's reference is used.

Doshi et al.'s pruning experiment at CPU size is the first test of tests/test_circuits_ablation.py
(its comments record what it measured).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode, model_device
from interp.errors import ShapeError, SpecError
from interp.interventions import (
    DEFAULT_MAX_ROWS,
    answer_position,
    as_index_mask,
    cache_hooks,
    closed_form_chunk,
    closed_form_readout,
    layout,
    neuron_hook_name,
    run_variants,
)
from interp.metrics import all_logits, subset_metrics
from interp.results import Result
from interp.validation import check_choice
from probes.scores import DEFAULT_SCORE, score_values

__all__ = [
    "DEFAULT_FRACTIONS",
    "KINDS",
    "ORDERS",
    "AblationResult",
    "BatchAblation",
    "PruneCurve",
    "ablate",
    "ablate_batch",
    "ablated",
    "prune_curve",
]

KINDS = ("zero", "mean", "resample")
ORDERS = ("ascending", "descending")
DEFAULT_FRACTIONS = tuple(i / 10 for i in range(11))


@dataclass(frozen=True, eq=False)
class AblationResult(Result):
    """Metrics (interp.evaluate keys) of the model with some neurons/heads ablated, and without."""

    kind: str  # zero | mean | resample
    hooks: tuple[str, ...]  # hooks the ablation acts on
    n_neurons_ablated: int
    n_heads_ablated: int
    metrics: dict  # ablated: test_acc, train_clean_acc, train_noisy_acc, train_noisy_true_acc, ... and *_loss
    baseline: dict  # the intact model's metrics


@dataclass(frozen=True, eq=False)
class BatchAblation(Result):
    """Metrics of M neuron ablations evaluated together: metrics[key] is a list of M values."""

    kind: str
    hook: str
    n_ablated: tuple[int, ...]  # [M] neurons ablated in each mask
    metrics: dict  # key -> [M] values, interp.evaluate keys
    method: str  # closed_form | expanded_batch

    def row(self, i: int) -> dict:
        """The i-th ablation's metrics as one interp.evaluate-style dict."""
        return {k: v[i] for k, v in self.metrics.items()}


@dataclass(frozen=True, eq=False)
class PruneCurve(Result):
    """Accuracies and losses after pruning the first fraction f of neurons in score order, per f."""

    fractions: tuple[float, ...]
    n_pruned: tuple[int, ...]
    order: str  # ascending: lowest score pruned first | descending: highest first
    kind: str  # zero | mean | resample
    hook: str
    score_name: str
    metrics: dict  # key -> [len(fractions)] values, interp.evaluate keys
    method: str


# ----- what to ablate ----------------------------------------------------------------------------


def _specs(model, neurons, heads, hook) -> list[tuple[str, str, torch.Tensor]]:
    """[(hook name, "unit" | "head", bool mask over that axis)]."""
    specs = []
    if neurons is not None:
        items = neurons.items() if isinstance(neurons, dict) else [(hook, neurons)]
        for h, units in items:
            name = neuron_hook_name(model, h)
            lay = layout(model, name)
            if lay not in ("units", "pos_units"):
                raise SpecError(
                    "ablated", "hook", h, "a neuron hook ('post', 'pre', ...) ; use heads=[(layer, head)] for attention"
                )
            n = model.hook_width(name)
            specs.append((name, "unit", as_index_mask(units, n)))
    if heads is not None:
        if not hasattr(model, "head_hook"):
            raise SpecError("ablated", "heads", heads, f"None for a {model.cfg.family} (it has no attention heads)")
        by_layer: dict[int, list[int]] = {}
        items = heads.items() if isinstance(heads, dict) else None
        if items is None:
            for lh in heads:
                if len(lh) != 2:
                    raise ShapeError(f"heads must be (layer, head) pairs, got {lh!r}.")
                by_layer.setdefault(int(lh[0]), []).append(int(lh[1]))
        else:
            for layer, hs in items:
                by_layer.setdefault(int(layer), []).extend(int(x) for x in hs)
        for layer, hs in sorted(by_layer.items()):
            if not 0 <= layer < model.cfg.n_layers:
                raise SpecError("ablated", "heads", (layer, hs), f"layers in [0, {model.cfg.n_layers})")
            specs.append((model.head_hook(layer), "head", as_index_mask(hs, model.cfg.n_heads, "heads")))
    if not specs:
        raise SpecError("ablated", "neurons", None, "neuron indices (or a bool mask) and/or heads=[(layer, head), ...]")
    return specs


def _reference_pairs(task, reference) -> torch.Tensor:
    if isinstance(reference, torch.Tensor):
        return reference.long().cpu()
    if task is None:
        raise SpecError(
            "ablated",
            "task",
            None,
            "a Task for mean/resample ablation (the reference inputs)",
            "Or pass reference=pairs [R, 2].",
        )
    pool = {"all": task.inputs, "train": task.train_inputs}.get(reference)
    if pool is None:
        raise SpecError("ablated", "reference", reference, "'all' (every pair of the table), 'train', or pairs [R, 2]")
    return pool


def _match_positions(ref: torch.Tensor, act_shape, lay: str, batch_first: bool) -> torch.Tensor:
    """Slice the reference's position axis to the activation's: a forward pass with fewer positions
    than the reference is the answer-position-only path (take the last) or a shorter prompt (the first)."""
    if lay not in ("pos_units", "pos_head"):
        return ref
    ax = 1 if batch_first else 0
    P = act_shape[1]
    if ref.shape[ax] == P:
        return ref
    sl = slice(-1, None) if P == 1 else slice(0, P)
    return ref[:, sl] if batch_first else ref[sl]


def _reference_acts(model, task, names, kind, reference) -> dict:
    if kind == "zero":
        return {}
    pairs = _reference_pairs(task, reference).to(model_device(model))
    _, cache = cache_hooks(model, pairs, list(names), full=True)
    if kind == "mean":
        return {name: acts.mean(0) for name, acts in cache.items()}
    return cache


def _ablation_value(kind: str, ref: torch.Tensor | None, like_shape, lay: str, src_idx: torch.Tensor | None):
    """The value ablated units take, broadcastable against an activation of shape `like_shape` [B, *shape]
    (and against a stack [k, B, *shape] of them): 0 (zero); the reference mean, [1, *shape] (mean); for
    example i the reference activation of example src_idx[i], [B, *shape] (resample)."""
    if kind == "zero":
        return torch.zeros(())
    if kind == "mean":
        return _match_positions(ref, like_shape, lay, batch_first=False)[None]
    return _match_positions(ref, like_shape, lay, batch_first=True)[src_idx]


def _expand_mask(mask: torch.Tensor, axis: str) -> torch.Tensor:
    """A mask over units (last axis) or heads (axis -2) shaped to broadcast against [..., *shape]."""
    if axis == "unit":
        return mask
    return mask[:, None]  # heads: [H, 1] against [pos, H, d_head]


@contextmanager
def ablated(
    subject,
    task=None,
    *,
    neurons=None,
    heads=None,
    kind: str = "zero",
    hook: str | None = None,
    reference="all",
    seed: int = 0,
    device=None,
):
    """Context manager: inside it, `model` runs with the given neurons (indices or bool mask on
    `hook`, default `model.neuron_hook`; or {hook: indices}) and/or heads ([(layer, head)], their
    hook_z) ablated by kind "zero", "mean" or "resample" (reference inputs: `task`'s table or its
    training split, or pairs [R, 2]).

        with ablated(model, task, neurons=[3, 17], kind="mean") as m:
            logits = m.pair_logits(pairs)

    It yields the model the hooks are installed on: `subject`'s model, or its copy on `device`.
    """
    check_choice("ablated", "kind", kind, KINDS)
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    specs = _specs(model, neurons, heads, hook)
    refs = _reference_acts(model, task, {name for name, _, _ in specs}, kind, reference)
    dev = model_device(model)
    gen = torch.Generator().manual_seed(seed)

    def make_hook(name, axis, mask):
        lay = layout(model, name)
        m = _expand_mask(mask.to(dev), axis)

        def hook_fn(act, hook):
            src_idx = None
            if kind == "resample":  # a fresh draw per forward pass
                src_idx = torch.randint(0, len(refs[name]), (act.shape[0],), generator=gen).to(dev)
            value = _ablation_value(kind, refs.get(name), act.shape, lay, src_idx)
            return torch.where(m, value.to(dtype=act.dtype, device=act.device), act)

        return hook_fn

    with model.hooks(fwd_hooks=[(name, make_hook(name, axis, mask)) for name, axis, mask in specs]):
        yield model


def ablate(
    subject,
    task=None,
    *,
    neurons=None,
    heads=None,
    kind: str = "zero",
    hook: str | None = None,
    reference="all",
    seed: int = 0,
    device=None,
) -> AblationResult:
    """Accuracies and losses (interp.evaluate keys: test, clean training, noisy training against given
    and true labels) with the neurons and/or heads ablated (zero, mean or resample), beside the intact model's."""
    model, task = resolve_subject(subject, task, device=device)
    with eval_mode(model):
        specs = _specs(model, neurons, heads, hook)
        baseline = subset_metrics(all_logits(model, task), task)
        with ablated(model, task, neurons=neurons, heads=heads, kind=kind, hook=hook, reference=reference, seed=seed):
            metrics = subset_metrics(all_logits(model, task), task)
    return AblationResult(
        kind=kind,
        hooks=tuple(name for name, _, _ in specs),
        n_neurons_ablated=int(sum(int(m.sum()) for _, axis, m in specs if axis == "unit")),
        n_heads_ablated=int(sum(int(m.sum()) for _, axis, m in specs if axis == "head")),
        metrics=metrics,
        baseline=baseline,
    )


def _ablated_logits_closed_form(model, inputs, name, masks, replacement, linear, max_rows) -> torch.Tensor:
    """[M, N, p] logits with each mask's neurons replaced, where the logits read the hook linearly:
    logits_m = logits - (mask_m * (act - replacement)) @ readout, in chunks of masks."""
    readout, transform = linear
    base, cache = cache_hooks(model, inputs, [name], full=False, max_rows=max_rows)
    act = answer_position(cache[name])  # [N, n]
    delta = transform(act) - transform(replacement.to(act))  # [N, n] change of the linearly read activation
    R = readout.detach()  # [n, p]
    M, N = len(masks), len(inputs)
    chunk = closed_form_chunk(M, N, max(act.shape[-1], R.shape[-1]))
    blocks = [
        base[None] - torch.einsum("mn,bn,np->mbp", masks[s : s + chunk].to(act.device, delta.dtype), delta, R)
        for s in range(0, M, chunk)
    ]
    return torch.cat(blocks)


def _masked_replacement(masks: torch.Tensor, kind: str, ref: torch.Tensor, src_idx, lay: str):
    """An edit for `run_variants`: variant k replaces the neurons of masks[k] by the ablation value."""

    def edit(view, sl):  # view [k, N, *shape]
        m = masks[sl]
        m = m[:, None, None, :] if lay == "pos_units" else m[:, None, :]  # against [k, N, (pos,) n]
        value = _ablation_value(kind, ref, view.shape[1:], lay, src_idx)
        return torch.where(m, value.to(dtype=view.dtype, device=view.device), view)

    return edit


@torch.no_grad()
def ablate_batch(
    subject,
    task=None,
    *,
    masks: torch.Tensor,
    kind: str = "zero",
    hook: str | None = None,
    reference="all",
    seed: int = 0,
    device=None,
    method: str = "auto",
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> BatchAblation:
    """Evaluate M neuron ablations at once: masks [M, n] bool (True = ablated) on `hook` (default the
    model's neuron hook). Where the logits read the hook linearly the M ablated logit tables are
    computed in closed form, logits_m = logits - (mask_m * (act - replacement)) @ W_out W_U; otherwise
    chunks of masks share expanded forward passes. Returns interp.evaluate keys, each a list of M."""
    check_choice("ablate_batch", "kind", kind, KINDS)
    model, task = resolve_subject(subject, task, device=device)
    return _ablate_masks(model, task, masks, kind, hook, reference, seed, method, max_rows)


def _ablate_masks(model, task, masks, kind, hook, reference, seed, method, max_rows) -> BatchAblation:
    """`ablate_batch` on a resolved model and task (prune_curve calls it after resolving once)."""
    dev = model_device(model)
    name = neuron_hook_name(model, hook)
    lay = layout(model, name)
    n = model.hook_width(name)
    masks = torch.as_tensor(masks)
    if masks.dtype != torch.bool or masks.ndim != 2 or masks.shape[1] != n:
        raise ShapeError(f"masks must be bool [M, {n}] (True = ablated), got {masks.dtype} {list(masks.shape)}.")
    with eval_mode(model):
        inputs = task.inputs.to(dev)
        N, M = len(inputs), len(masks)
        refs = _reference_acts(model, task, [name], kind, reference)
        gen = torch.Generator().manual_seed(seed)
        src_idx = None
        if kind == "resample":  # one fixed resampling per example, shared by every mask
            src_idx = torch.randint(0, len(refs[name]), (N,), generator=gen).to(dev)
        linear = closed_form_readout(model, name, method, "ablate_batch")
        if linear is not None:
            ref = refs.get(name)
            replacement = answer_position(
                _ablation_value(kind, ref, None if ref is None else (1, *ref.shape), lay, src_idx)
            )
            logits = _ablated_logits_closed_form(model, inputs, name, masks, replacement, linear, max_rows)
            used = "closed_form"
        else:
            edit = _masked_replacement(masks.to(dev), kind, refs.get(name), src_idx, lay)
            logits = torch.cat(
                run_variants(model, inputs, M, {name: edit}, lambda lg, sl: lg, full=False, max_rows=max_rows)
            )
            used = "expanded_batch"
        metrics = subset_metrics(logits.float(), task)
        # an empty subset (e.g. no noisy labels) comes back as one NaN: give every mask its own
        metrics = {k: v if isinstance(v, list) else [v] * M for k, v in metrics.items()}
    return BatchAblation(
        kind=kind, hook=name, n_ablated=tuple(int(x) for x in masks.sum(-1)), metrics=metrics, method=used
    )


def prune_masks(scores: torch.Tensor, fractions, order: str = "ascending") -> tuple[torch.Tensor, tuple[int, ...]]:
    """masks [M, n] (True = pruned): the first round(f * n) neurons in `order` of the scores, per f."""
    if order not in ORDERS:
        raise SpecError("prune_curve", "order", order, "'ascending' (lowest score pruned first) or 'descending'")
    scores = torch.as_tensor(scores).detach().float().cpu().reshape(-1)
    n = len(scores)
    fr = [float(f) for f in fractions]
    if any(not 0.0 <= f <= 1.0 for f in fr):
        raise SpecError("prune_curve", "fractions", tuple(fractions), "fractions in [0, 1]")
    rank = torch.empty(n, dtype=torch.long)
    rank[torch.argsort(scores, descending=order == "descending", stable=True)] = torch.arange(n)  # rank of each neuron
    counts = torch.tensor([int(round(f * n)) for f in fr])
    return rank[None, :] < counts[:, None], tuple(int(c) for c in counts)


def prune_curve(
    subject,
    task=None,
    *,
    scores=DEFAULT_SCORE,
    fractions=DEFAULT_FRACTIONS,
    order: str = "ascending",
    kind: str = "zero",
    hook: str | None = None,
    reference="all",
    seed: int = 0,
    device=None,
    method: str = "auto",
) -> PruneCurve:
    """Prune (ablate) neurons in the order of `scores` ([n], a NeuronScores, or a neuron_scores kind
    such as "ipr") in steps of `fractions`, recording test / clean-train / noisy-train accuracies and
    losses at each step, all steps evaluated together (Doshi et al. 2024: pruning the lowest-IPR
    neurons first removes the memorised noisy labels while test accuracy stays; highest first does
    the opposite)."""
    model, task = resolve_subject(subject, task, device=device)
    values, score_name = score_values(model, task, scores=scores)
    n = model.hook_width(neuron_hook_name(model, hook))
    if values.shape != (n,):
        raise ShapeError(f"scores must have one value per neuron, [{n}], got {list(values.shape)}.")
    masks, counts = prune_masks(values, fractions, order)
    check_choice("prune_curve", "kind", kind, KINDS)
    batch = _ablate_masks(model, task, masks, kind, hook, reference, seed, method, DEFAULT_MAX_ROWS)
    return PruneCurve(
        fractions=tuple(float(f) for f in fractions),
        n_pruned=counts,
        order=order,
        kind=kind,
        hook=batch.hook,
        score_name=score_name,
        metrics=batch.metrics,
        method=batch.method,
    )
