"""Activation patching on the MLP and the transformer, batched over the patched components.

A clean run (pairs (a, b)) and a corrupted run (a changed, b changed, both changed, or pairs the user
gives) are cached; then, for each component, the clean activation replaces the corrupted one
(direction="denoise", TransformerLens's default) or the reverse (direction="noise"), and a metric
of the answer logits is recorded. Results are named and shaped like TransformerLens's
`transformer_lens.patching` sweeps (`circuits.patch_result.PatchResult`): `hook="resid_pre",
per="pos"` gives [n_layers, pos] as `get_act_patch_resid_pre`; `hook="z", per="head"` gives
[n_layers, n_heads] as `get_act_patch_attn_head_out_all_pos`; `hook="z", per="head_pos"` gives
[n_layers, pos, n_heads] as `get_act_patch_attn_head_out_by_pos`; `hook="pattern", per="head_pos"`
gives [n_layers, n_heads, pos] as `get_act_patch_attn_head_pattern_by_pos` (the query position, which
TransformerLens 4 also calls "pos"). With reduce="none" every value is kept per example ([..., batch],
as TransformerLens 4's `reduce="none"`), for standard errors and bootstrap intervals over examples.

Unlike TransformerLens's loop (one forward pass per patched component), every sweep here is batched:
- at a hook read linearly by the logits (the MLP's hidden neurons; the transformer's last-layer
  mlp.hook_post without final layer norm; also hook_pre there, through the activation function) the
  patched logits are computed in closed form from the cached activations,
  logits_k = logits_target + (mask_k * (act_source - act_target)) @ W_out W_U, with no further
  forward pass;
- at any other hook, k variants share one forward pass: the target batch is repeated k times from
  the start of the hook's block (the shared upstream part runs once) and the i-th copy gets the
  i-th patch (chunks of k so that k * batch <= max_rows); the last layer runs at the answer
  position only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from circuits.patch_inputs import (
    CORRUPTIONS,
    METRIC_LOGITS,
    METRICS,
    REDUCTIONS,
    answers,
    builtin_metric,
    corrupt_pairs,
    patch_pairs,
    resolve_user_metric,
)
from circuits.patch_result import PatchResult, bootstrap_ci
from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode, model_device
from interp.errors import ShapeError, SpecError
from interp.interventions import (
    DEFAULT_MAX_ROWS,
    METHODS,
    POSITION_AXIS,
    answer_position,
    as_index_mask,
    cache_hooks,
    closed_form_chunk,
    closed_form_readout,
    last_position,
    layout,
    resolve_hooks,
    run_variants,
)

__all__ = [
    "CORRUPTIONS",
    "METRIC_LOGITS",
    "METRICS",
    "PatchResult",
    "activation_patch",
    "answers",
    "bootstrap_ci",
    "corrupt_pairs",
]

PER = ("all", "pos", "head", "head_pos", "neuron", "sets")
DIRECTIONS = ("denoise", "noise")


# (layout, per) -> the activation axes (after the batch) patched one index at a time, and their names.
# head_qk is [head, dest_pos, src_pos]: the destination (query) position is TransformerLens's "pos".
MASK_AXES = {
    ("pos_units", "pos"): ((0,), ("pos",)),
    ("pos_head", "pos"): ((0,), ("pos",)),
    ("pos_head", "head"): ((1,), ("head",)),
    ("pos_head", "head_pos"): ((0, 1), ("pos", "head")),
    ("head_qk", "head"): ((0,), ("head",)),
    ("head_qk", "pos"): ((1,), ("pos",)),
    ("head_qk", "head_pos"): ((0, 1), ("head", "pos")),
}
PER_ALLOWED = {  # what `per` can be at each layout, for the error message
    "units": "'all', 'neuron' or 'sets' for the MLP (it has no positions or heads)",
    "pos_units": "'all', 'pos', 'neuron' or 'sets' at a residual or MLP hook",
    "pos_head": "'all', 'pos', 'head' or 'head_pos' at an attention hook",
    "head_qk": "'all', 'pos', 'head' or 'head_pos' at an attention hook",
}


def axis_masks(shape: tuple[int, ...], axes: tuple[int, ...]) -> torch.Tensor:
    """[K, *shape] bool: one mask per index combination along `axes` (K = their product, the last
    axis fastest), True on that slice of the activation."""
    combos = torch.cartesian_prod(*[torch.arange(shape[a]) for a in axes]).reshape(-1, len(axes))  # [K, len(axes)]
    masks = torch.zeros((len(combos), *shape), dtype=torch.bool)
    index = [torch.arange(len(combos))] + [
        combos[:, axes.index(d)] if d in axes else slice(None) for d in range(len(shape))
    ]
    masks[tuple(index)] = True
    return masks


def neuron_masks(lay: str, shape: tuple[int, ...], per: str, neuron_sets) -> tuple[torch.Tensor, tuple, tuple]:
    """(masks [K, *shape], grid, names) for per="neuron" (every unit of the last axis) or "sets"."""
    n = shape[-1]
    if per == "neuron":
        units, grid, names = torch.eye(n, dtype=torch.bool), (n,), ("neuron",)  # [K=n, n]
    else:
        if neuron_sets is None:
            raise SpecError(
                "activation_patch", "neuron_sets", None, "a list of neuron index lists, or a bool tensor [K, n]"
            )
        if isinstance(neuron_sets, torch.Tensor) and neuron_sets.dtype == torch.bool and neuron_sets.ndim == 2:
            if neuron_sets.shape[1] != n:
                raise ShapeError(f"neuron_sets masks must be [K, {n}], got {list(neuron_sets.shape)}.")
            units = neuron_sets.cpu()
        else:
            units = torch.stack([as_index_mask(s, n) for s in neuron_sets])
        grid, names = (len(units),), ("set",)
    if lay == "pos_units":  # a neuron is patched at every position, as TransformerLens's *_all_pos
        units = units[:, None, :].expand(-1, shape[0], -1)
    return units.contiguous(), grid, names


def variant_masks(lay: str, shape: tuple[int, ...], per: str, neuron_sets, hook_name: str):
    """(masks [K, *shape] bool, grid shape, axis names) for one hook."""
    if per == "all":
        return torch.ones((1, *shape), dtype=torch.bool), (), ()
    if per in ("neuron", "sets") and lay in ("units", "pos_units"):
        return neuron_masks(lay, shape, per, neuron_sets)
    if (lay, per) not in MASK_AXES:
        fix = f"{hook_name} has no neuron axis." if per in ("neuron", "sets") else ""
        raise SpecError("activation_patch", "per", per, PER_ALLOWED[lay], fix)
    axes, names = MASK_AXES[lay, per]
    return axis_masks(shape, axes), tuple(shape[a] for a in axes), names


def closed_form_patch(masks, src_act, tgt_act, tgt_logits, readout, transform, metric_fn) -> torch.Tensor:
    """Metric [K] (or [K, B] per example) of the patched logits tgt_logits + (mask_k * (f(src) - f(tgt))) @ readout,
    at the answer position (tgt_logits [B, p]) or at every position (tgt_logits [B, pos, p])."""
    if tgt_logits.ndim == 3:
        return closed_form_patch_all_positions(masks, src_act, tgt_act, tgt_logits, readout, transform, metric_fn)
    delta = answer_position(transform(src_act) - transform(tgt_act))  # [B, n] at the answer position
    m = masks[:, -1] if masks.ndim == 3 else masks  # [K, n]
    m = m.to(delta.device)
    K, B, n = m.shape[0], delta.shape[0], delta.shape[1]
    p = readout.shape[1]
    single = bool((m.sum(-1) == 1).all())
    chunk = closed_form_chunk(K, B, p if single else max(n, p))
    out = []
    for start in range(0, K, chunk):
        mk = m[start : start + chunk]
        if single:  # one unit per variant: logits_k = tgt + delta[:, i_k] w_{i_k}
            idx = mk.float().argmax(-1)  # [k]
            logits = tgt_logits[None] + delta[:, idx].T[:, :, None] * readout[idx][:, None, :]  # [k, B, p]
        else:
            logits = tgt_logits[None] + torch.einsum("kn,bn,np->kbp", mk.to(delta.dtype), delta, readout)
        out.append(metric_fn(logits))
    return torch.cat(out)


def closed_form_patch_all_positions(masks, src_act, tgt_act, tgt_logits, readout, transform, metric_fn):
    """closed_form_patch with the logits of every position: masks [K, pos, n], activations [B, pos, n],
    tgt_logits [B, pos, p] -> the metric of the patched logits [k, B, pos, p], k variants at a time."""
    delta = transform(src_act) - transform(tgt_act)  # [B, pos, n]
    m = masks.to(device=delta.device, dtype=delta.dtype)  # [K, pos, n]
    K, B, pos, n = m.shape[0], delta.shape[0], delta.shape[1], delta.shape[2]
    chunk = closed_form_chunk(K, B, pos * max(n, readout.shape[1]))
    out = []
    for start in range(0, K, chunk):
        logits = tgt_logits[None] + torch.einsum("kqn,bqn,np->kbqp", m[start : start + chunk], delta, readout)
        out.append(metric_fn(logits))
    return torch.cat(out)


@dataclass(frozen=True)
class PatchRuns:
    """The two unpatched runs of a patching experiment, cached at the patched hooks, and its metric."""

    source_cache: dict
    target_cache: dict
    target_pairs: torch.Tensor  # [B, 2] on the model's device
    target_logits: torch.Tensor  # [B, p], or [B, pos, p] when the metric reads every position
    source_logits: torch.Tensor
    metric_fn: Callable  # logits [..., B, (pos,) p] -> [..., B] per example, or [...] (reduce="scalar")
    metric_name: str
    all_positions: bool = False  # the metric reads the model's logits at every position (TransformerLens's)


def check_options(per: str, direction: str, method: str, reduce: str, metric_logits: str = "auto") -> None:
    """A SpecError for any option of activation_patch outside its choices."""
    for name, value, choices in (
        ("per", per, PER),
        ("direction", direction, DIRECTIONS),
        ("method", method, METHODS),
        ("reduce", reduce, REDUCTIONS),
        ("metric_logits", metric_logits, METRIC_LOGITS),
    ):
        if value not in choices:
            raise SpecError("activation_patch", name, value, f"one of {list(choices)}")


def patch_runs(
    model, task, clean, corrupted, hook_names, metric, direction, reduce, max_rows, metric_logits="auto"
) -> PatchRuns:
    """Cache the clean and corrupted runs at `hook_names` and set up the metric (answers from the
    task's table, or without a task the model's own argmax on each run). A metric function reads the
    answer logits [B, p] or the model's logits [B, pos, p] (`metric_logits`, see resolve_user_metric)."""
    dev = model_device(model)
    logits_hook = model.position_logits_hook if callable(metric) else None
    names = list(dict.fromkeys([*hook_names, *([logits_hook] if logits_hook else [])]))
    clean_logits, clean_cache = cache_hooks(model, clean.to(dev), names, full=True, max_rows=max_rows)
    corr_logits, corr_cache = cache_hooks(model, corrupted.to(dev), names, full=True, max_rows=max_rows)
    if task is not None:
        clean_ans, corr_ans = answers(task, clean).to(dev), answers(task, corrupted).to(dev)
    else:
        clean_ans, corr_ans = clean_logits.argmax(-1), corr_logits.argmax(-1)
    all_positions = False
    if callable(metric):
        examples = {"answer": corr_logits, "model": corr_cache[logits_hook] if logits_hook else corr_logits}
        metric_fn, mode = resolve_user_metric(metric, reduce != "scalar", metric_logits, examples)
        metric_name = getattr(metric, "__name__", "user")
        if mode == "model" and logits_hook:  # the metric reads every position: so do the patched runs
            all_positions = True
            clean_logits, corr_logits = clean_cache[logits_hook], corr_cache[logits_hook]
    else:
        metric_fn, metric_name = builtin_metric(metric, clean_ans, corr_ans), metric
        if reduce == "scalar":
            metric_fn = lambda lg, per_example=metric_fn: per_example(lg).mean(-1)  # noqa: E731
    if direction == "denoise":
        target = (corr_cache, corrupted.to(dev), corr_logits, clean_logits)
        source_cache = clean_cache
    else:
        target = (clean_cache, clean.to(dev), clean_logits, corr_logits)
        source_cache = corr_cache
    target_cache, target_pairs, target_logits, source_logits = target
    return PatchRuns(
        source_cache, target_cache, target_pairs, target_logits, source_logits, metric_fn, metric_name, all_positions
    )


def expanded_batch_patch(model, name: str, masks: torch.Tensor, runs: PatchRuns, max_rows) -> tuple[torch.Tensor, int]:
    """(metric [K] or [K, B], forward passes): the K patches at `name`, k of them per expanded pass."""
    src, lay = runs.source_cache[name], layout(model, name)
    masks_dev = masks.to(model_device(model))

    def edit(view, sl):  # view [k, B, *shape]
        m, s = masks_dev[sl], src
        if view.shape[2:] != s.shape[1:]:
            # answer-position-only pass (last layer): other positions cannot reach the answer
            ax = POSITION_AXIS[lay]
            m, s = last_position(m, 1 + ax), last_position(s, 1 + ax)
        return torch.where(m[:, None], s[None], view)

    chunks = run_variants(
        model,
        runs.target_pairs,
        len(masks),
        {name: edit},
        lambda lg, sl: runs.metric_fn(lg),
        full=runs.all_positions,
        max_rows=max_rows,
        all_positions=runs.all_positions,
    )
    return torch.cat(chunks), len(chunks)


def sweep_hook(model, name: str, runs: PatchRuns, per: str, neuron_sets, method: str, max_rows):
    """Patch every component of one hook: (values [*grid(, B)], grid axis names, method used, passes)."""
    src = runs.source_cache[name]
    masks, grid, names = variant_masks(layout(model, name), tuple(src.shape[1:]), per, neuron_sets, name)
    linear = closed_form_readout(model, name, method, "activation_patch")
    if linear is not None:
        readout, transform = linear[0].detach(), linear[1]
        vals = closed_form_patch(
            masks, src, runs.target_cache[name], runs.target_logits, readout, transform, runs.metric_fn
        )
        used, passes = "closed_form", 0
    else:
        (vals, passes), used = expanded_batch_patch(model, name, masks, runs, max_rows), "expanded_batch"
    return vals.reshape((*grid, *vals.shape[1:])).float().cpu(), names, used, passes


def patch_result(model, hook, hook_pairs, swept, runs: PatchRuns, reduce, direction, per, corruption, n_pairs):
    """The PatchResult of the swept hooks: values stacked over layers when the hook is per layer,
    reduced over examples with reduce="mean", with both unpatched runs' metrics as baselines."""
    has_layer_axis = hook_pairs[0][0] is not None and hook not in model.hook_dict  # a per-layer short name
    values = torch.stack([v for v, *_ in swept]) if has_layer_axis else swept[0][0]
    baseline, source = (
        runs.metric_fn(runs.target_logits).float().cpu(),
        runs.metric_fn(runs.source_logits).float().cpu(),
    )
    if reduce == "mean":
        values, baseline, source = values.mean(-1), baseline.mean(-1), source.mean(-1)
    clean, corrupted = (source, baseline) if direction == "denoise" else (baseline, source)
    return PatchResult(
        values=values,
        axis_names=(("layer",) if has_layer_axis else ()) + tuple(swept[0][1]),
        hooks=tuple(name for _, name in hook_pairs),
        per=per,
        metric=runs.metric_name,
        direction=direction,
        corruption=corruption,
        clean_metric=float(clean.mean()),
        corrupted_metric=float(corrupted.mean()),
        n_pairs=n_pairs,
        method="+".join(sorted({used for *_, used, _ in swept})),
        n_forward_passes=sum(passes for *_, passes in swept),
        reduced=reduce != "none",
        baseline=baseline,
        source_baseline=source,
    )


@torch.no_grad()
def activation_patch(
    subject,
    task=None,
    *,
    hook: str = "post",
    per: str = "neuron",
    layers=None,
    neuron_sets=None,
    corruption: str = "a",
    clean_pairs: torch.Tensor | None = None,
    corrupted_pairs: torch.Tensor | None = None,
    n_pairs: int = 256,
    split: str = "all",
    metric: str | Callable = "logit_diff",
    metric_logits: str = "auto",
    reduce: str = "scalar",
    direction: str = "denoise",
    method: str = "auto",
    seed: int = 0,
    device=None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> PatchResult:
    """Patch activations between a clean and a corrupted run at `hook`, one component at a time
    (batched), and record `metric` of the answer logits (Meng et al. 2022 / TransformerLens patching).

    hook: a short name ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "q", "k", "v",
        "z", "pattern", "attn_scores", "pre", "post", "embed"; MLP: "in_a", "in_b", "pre", "post",
        "logits") over `layers` (None: all), or a full hook name.
    per: "all" (the whole activation), "pos", "head", "head_pos", "neuron" (every unit of the last
        axis, at all positions), or "sets" (the user's `neuron_sets`: index lists or bool [K, n]).
    corruption: "a", "b" or "both" (a random other residue; pairs drawn from `split` of the task), or
        give `clean_pairs` and `corrupted_pairs` [B, 2]; answers come from the task's table, or
        without a task from the model's own argmax on each run.
    metric: "logit_diff" (clean answer minus corrupted answer logit), "logprob" (clean answer
        log-probability), "accuracy" (argmax = clean answer), or a function of logits: the answer
        position's logits [B, p], or the model's logits [B, pos, d_vocab_out] as TransformerLens's
        patching functions pass them (so a TransformerLens metric works unchanged).
    metric_logits: which logits a metric function reads: "answer" ([B, p]), "model" ([B, pos, p] on the
        transformer: the patched runs then compute every position; the MLP's are [B, p] either way) or
        "auto" (the default: "answer" if the function reads it, else "model"; a ShapeError says what
        each call raised when it reads neither).
    reduce: as TransformerLens 4's: "scalar" (a user metric returns a scalar; values [*axes]), "mean"
        (it returns [B], averaged) or "none" (it returns [B], kept: values [*axes, B], for
        `PatchResult.stderr` and `bootstrap_ci`). The built-in metrics work with all three.
    method: "auto" (closed form where the hook is read linearly by the logits, else expanded batch),
        "closed_form" or "expanded_batch".
    max_rows: rows per expanded forward pass (None: 4096 on CPU, 65536 on GPU).
    """
    check_options(per, direction, method, reduce, metric_logits)
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    with eval_mode(model):
        clean, corrupted, corruption_name = patch_pairs(
            task, clean_pairs, corrupted_pairs, corruption, split, n_pairs, seed
        )
        hook_pairs = resolve_hooks(model, hook, layers)
        hook_names = [name for _, name in hook_pairs]
        runs = patch_runs(model, task, clean, corrupted, hook_names, metric, direction, reduce, max_rows, metric_logits)
        swept = [sweep_hook(model, name, runs, per, neuron_sets, method, max_rows) for name in hook_names]
        return patch_result(model, hook, hook_pairs, swept, runs, reduce, direction, per, corruption_name, len(clean))
