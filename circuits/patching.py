"""Activation patching on the MLP and the transformer, batched over the patched components.

A clean run (pairs (a, b)) and a corrupted run (a changed, b changed, both changed, or pairs the user
gives) are cached; then, for each component, the clean activation replaces the corrupted one
(direction="denoise", TransformerLens's default) or the reverse (direction="noise"), and a metric
of the answer logits is recorded. Results are shaped and named like TransformerLens's
`transformer_lens.patching` sweeps: `hook="resid_pre", per="pos"` gives [n_layers, pos] as
`get_act_patch_resid_pre`; `hook="z", per="head"` gives [n_layers, n_heads] as
`get_act_patch_attn_head_out_all_pos`; `hook="z", per="head_pos"` gives [n_layers, pos, n_heads]
as `get_act_patch_attn_head_out_by_pos`; `hook="pattern", per="head_pos"` gives
[n_layers, n_heads, dest_pos] as `get_act_patch_attn_head_pattern_by_pos`.

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
import torch.nn.functional as F

from interp.checkpoints.subject import resolve_subject
from interp.device import model_device
from interp.errors import ShapeError, SpecError
from interp.interventions import (
    DEFAULT_MAX_ROWS,
    POSITION_AXIS,
    answer_position,
    as_index_mask,
    cache_hooks,
    closed_form_chunk,
    last_position,
    layout,
    linear_readout,
    resolve_hooks,
    run_variants,
)
from interp.models import is_transformer
from interp.results import Result

CORRUPTIONS = ("a", "b", "both")
PER = ("all", "pos", "head", "head_pos", "neuron", "sets")
METRICS = ("logit_diff", "logprob", "accuracy")
DIRECTIONS = ("denoise", "noise")


@dataclass(frozen=True, eq=False)
class PatchResult(Result):
    """The metric after each patch, shaped like TransformerLens's patching results."""

    values: torch.Tensor  # shaped as axis_names, e.g. [n_layers, pos]
    axis_names: tuple[str, ...]  # e.g. ("layer", "pos"), ("layer", "head"), ("neuron",)
    hooks: tuple[str, ...]  # the full hook names patched (one per layer)
    per: str  # all | pos | head | head_pos | neuron | sets
    metric: str  # logit_diff | logprob | accuracy | the user function's name
    direction: str  # denoise: clean into corrupted run; noise: corrupted into clean run
    corruption: str  # a | b | both | user
    clean_metric: float  # metric of the unpatched clean run
    corrupted_metric: float  # metric of the unpatched corrupted run
    n_pairs: int
    method: str  # closed_form (linear readout of cached activations) | expanded_batch
    n_forward_passes: int  # forward passes spent on the patched runs (not counting the two baselines)

    @property
    def normalized(self) -> torch.Tensor:
        """(values - target run) / (source run - target run): 0 = the patch changed nothing, 1 = it
        fully restored the source run's metric (target = corrupted run when denoising)."""
        src, tgt = (
            (self.clean_metric, self.corrupted_metric)
            if self.direction == "denoise"
            else (self.corrupted_metric, self.clean_metric)
        )
        return (self.values - tgt) / (src - tgt)


def _pair_index_grid(task) -> torch.Tensor:
    """[p, p] long: the row of (a, b) in task.inputs, -1 where the pair is not in the table."""
    p = task.p
    grid = torch.full((p, p), -1, dtype=torch.long)
    grid[task.inputs[:, 0], task.inputs[:, 1]] = torch.arange(len(task.inputs))
    return grid


def corrupt_pairs(task, pairs: torch.Tensor, corruption: str = "a", seed: int = 0) -> torch.Tensor:
    """Corrupted copies of `pairs` [B, 2]: "a" replaces a by a random other residue, "b" replaces b,
    "both" replaces both; every corrupted pair is in the task's table (e.g. b != 0 for division)."""
    if corruption not in CORRUPTIONS:
        raise SpecError(
            "activation_patch", "corruption", corruption, f"one of {list(CORRUPTIONS)} or clean_pairs/corrupted_pairs"
        )
    grid = _pair_index_grid(task)
    p = task.p
    gen = torch.Generator().manual_seed(seed)
    out = pairs.clone()
    cols = {"a": [0], "b": [1], "both": [0, 1]}[corruption]
    for col in cols:
        todo = torch.ones(len(pairs), dtype=torch.bool)
        for _ in range(100):  # resample the few draws that leave the table (b = 0 for division)
            shift = torch.randint(1, p, (int(todo.sum()),), generator=gen)
            out[todo, col] = (pairs[todo, col] + shift) % p
            todo = grid[out[:, 0], out[:, 1]] < 0
            if not todo.any():
                break
        else:
            raise SpecError(
                "activation_patch", "corruption", corruption, "a corruption that keeps pairs inside the task's table"
            )
    return out


def _answers(task, pairs: torch.Tensor) -> torch.Tensor:
    grid = _pair_index_grid(task)
    rows = grid[pairs[:, 0], pairs[:, 1]]
    if (rows < 0).any():
        bad = pairs[rows < 0][0].tolist()
        raise ShapeError(
            f"the pair {bad} is not in the task's table ({task.spec.op} mod {task.p}); pass pairs from task.inputs."
        )
    return task.labels[rows]


def _builtin_metric(name: str, clean_answer: torch.Tensor, corrupted_answer: torch.Tensor) -> Callable:
    """A metric of logits [..., B, p] -> [...]: the mean over the batch."""
    ar = torch.arange(len(clean_answer), device=clean_answer.device)
    if name == "logit_diff":
        return lambda lg: (lg[..., ar, clean_answer] - lg[..., ar, corrupted_answer]).float().mean(-1)
    if name == "logprob":
        return lambda lg: F.log_softmax(lg.float(), dim=-1)[..., ar, clean_answer].mean(-1)
    if name == "accuracy":
        return lambda lg: (lg.argmax(-1) == clean_answer).float().mean(-1)
    raise SpecError(
        "activation_patch", "metric", name, f"one of {list(METRICS)} or a function of logits [batch, p] -> scalar"
    )


def _user_metric(fn: Callable) -> Callable:
    """Apply a user's function of logits [B, p] -> scalar to logits [k, B, p] -> [k], with
    torch.func.vmap (one call), falling back to a loop over the k variants when fn is not vmappable."""

    def batched(lg: torch.Tensor) -> torch.Tensor:
        if lg.ndim == 2:
            return torch.as_tensor(fn(lg), dtype=torch.float32).reshape(())
        try:
            out = torch.func.vmap(fn)(lg)
        except Exception:  # e.g. .item() inside fn; the loop is over variants, not forward passes
            out = torch.stack([torch.as_tensor(fn(x), dtype=torch.float32, device=lg.device).reshape(()) for x in lg])
        out = torch.as_tensor(out)
        if out.shape != lg.shape[:1]:
            raise ShapeError(
                f"the patching metric must return a scalar for logits [batch, p], got shape {list(out.shape[1:])}."
            )
        return out.float()

    return batched


def _variant_masks(lay: str, shape: tuple[int, ...], per: str, neuron_sets, hook_name: str):
    """(masks [K, *shape] bool, grid shape, axis names) for one hook."""
    if per == "all":
        return torch.ones((1, *shape), dtype=torch.bool), (), ()
    if per in ("neuron", "sets"):
        if lay not in ("units", "pos_units"):
            raise SpecError(
                "activation_patch",
                "per",
                per,
                "'all', 'pos', 'head' or 'head_pos' at an attention hook",
                f"{hook_name} has no neuron axis.",
            )
        n = shape[-1]
        if per == "neuron":
            units = torch.eye(n, dtype=torch.bool)  # [K=n, n]
            grid, names = (n,), ("neuron",)
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
    if lay == "units":
        raise SpecError(
            "activation_patch", "per", per, "'all', 'neuron' or 'sets' for the MLP (it has no positions or heads)"
        )
    if lay == "pos_units":
        if per != "pos":
            raise SpecError(
                "activation_patch", "per", per, "'all', 'pos', 'neuron' or 'sets' at a residual or MLP hook"
            )
        P = shape[0]
        masks = torch.zeros((P, *shape), dtype=torch.bool)
        masks[torch.arange(P), torch.arange(P)] = True
        return masks, (P,), ("pos",)
    if lay == "pos_head":  # [pos, head, d_head]
        P, H = shape[0], shape[1]
        if per == "pos":
            masks = torch.zeros((P, *shape), dtype=torch.bool)
            masks[torch.arange(P), torch.arange(P)] = True
            return masks, (P,), ("pos",)
        if per == "head":
            masks = torch.zeros((H, *shape), dtype=torch.bool)
            masks[torch.arange(H), :, torch.arange(H)] = True
            return masks, (H,), ("head",)
        masks = torch.zeros((P, H, *shape), dtype=torch.bool)
        pi, hi = torch.meshgrid(torch.arange(P), torch.arange(H), indexing="ij")
        masks[pi, hi, pi, hi] = True
        return masks.reshape(P * H, *shape), (P, H), ("pos", "head")
    # head_qk: [head, dest_pos, src_pos]
    H, Q = shape[0], shape[1]
    if per == "head":
        masks = torch.zeros((H, *shape), dtype=torch.bool)
        masks[torch.arange(H), torch.arange(H)] = True
        return masks, (H,), ("head",)
    if per == "pos":
        masks = torch.zeros((Q, *shape), dtype=torch.bool)
        masks[torch.arange(Q), :, torch.arange(Q)] = True
        return masks, (Q,), ("dest_pos",)
    masks = torch.zeros((H, Q, *shape), dtype=torch.bool)
    hi, qi = torch.meshgrid(torch.arange(H), torch.arange(Q), indexing="ij")
    masks[hi, qi, hi, qi] = True
    return masks.reshape(H * Q, *shape), (H, Q), ("head", "dest_pos")


def _closed_form(masks, src_act, tgt_act, tgt_logits, readout, transform, metric_fn) -> torch.Tensor:
    """Metric [K] of the patched logits tgt_logits + (mask_k * (f(src) - f(tgt))) @ readout."""
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
        log-probability), "accuracy" (argmax = clean answer), or a function of logits [B, p] -> scalar.
    method: "auto" (closed form where the hook is read linearly by the logits, else expanded batch),
        "closed_form" or "expanded_batch".
    max_rows: rows per expanded forward pass (None: 4096 on CPU, 65536 on GPU).
    """
    if per not in PER:
        raise SpecError("activation_patch", "per", per, f"one of {list(PER)}")
    if direction not in DIRECTIONS:
        raise SpecError(
            "activation_patch",
            "direction",
            direction,
            "'denoise' (clean into corrupted) or 'noise' (corrupted into clean)",
        )
    if method not in ("auto", "closed_form", "expanded_batch"):
        raise SpecError("activation_patch", "method", method, "'auto', 'closed_form' or 'expanded_batch'")
    model, task = resolve_subject(subject, task, where="activation_patch", need_task=False, device=device)
    dev = model_device(model)
    was_training = model.training
    model.eval()
    try:
        # ----- the clean and corrupted inputs and their answers -----
        if (clean_pairs is None) != (corrupted_pairs is None):
            raise SpecError(
                "activation_patch",
                "clean_pairs",
                "one of clean_pairs/corrupted_pairs",
                "both, or neither (and a corruption)",
            )
        if clean_pairs is not None:
            clean = torch.as_tensor(clean_pairs, dtype=torch.long).cpu()
            corrupted = torch.as_tensor(corrupted_pairs, dtype=torch.long).cpu()
            if clean.ndim != 2 or clean.shape[1] != 2 or clean.shape != corrupted.shape:
                raise ShapeError(
                    f"clean_pairs and corrupted_pairs must both be [batch, 2], got {list(clean.shape)} and {list(corrupted.shape)}."
                )
            corruption_name = "user"
        else:
            if task is None:
                raise SpecError(
                    "activation_patch",
                    "task",
                    None,
                    "a Task (to draw pairs and corrupt them), or clean_pairs and corrupted_pairs",
                )
            pool = {"all": task.inputs, "train": task.train_inputs, "test": task.test_inputs}.get(split)
            if pool is None:
                raise SpecError("activation_patch", "split", split, "'all', 'train' or 'test'")
            gen = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(pool), generator=gen)[: max(1, int(n_pairs))]
            clean = pool[pick]
            corrupted = corrupt_pairs(task, clean, corruption, seed=seed + 1)
            corruption_name = corruption
        hook_pairs = resolve_hooks(model, hook, layers)
        hook_names = [name for _, name in hook_pairs]
        clean_logits, clean_cache = cache_hooks(model, clean.to(dev), hook_names, full=True, max_rows=max_rows)
        corr_logits, corr_cache = cache_hooks(model, corrupted.to(dev), hook_names, full=True, max_rows=max_rows)
        if task is not None:
            clean_ans, corr_ans = _answers(task, clean).to(dev), _answers(task, corrupted).to(dev)
        else:
            clean_ans, corr_ans = clean_logits.argmax(-1), corr_logits.argmax(-1)
        if callable(metric):
            metric_fn, metric_name = _user_metric(metric), getattr(metric, "__name__", "user")
        else:
            metric_fn, metric_name = _builtin_metric(metric, clean_ans, corr_ans), metric
        if direction == "denoise":
            src_cache, tgt_cache, tgt_pairs, tgt_logits = clean_cache, corr_cache, corrupted.to(dev), corr_logits
        else:
            src_cache, tgt_cache, tgt_pairs, tgt_logits = corr_cache, clean_cache, clean.to(dev), clean_logits

        # ----- one sweep per hook (per layer); variants batched within it -----
        per_layer, grid, names, used, n_passes = [], (), (), set(), 0
        for _, name in hook_pairs:
            lay = layout(model, name)
            src, tgt = src_cache[name], tgt_cache[name]
            masks, grid, names = _variant_masks(lay, tuple(src.shape[1:]), per, neuron_sets, name)
            linear = linear_readout(model, name)
            if method == "closed_form" and linear is None:
                raise SpecError(
                    "activation_patch",
                    "method",
                    method,
                    "'auto' or 'expanded_batch' here",
                    f"{name} is not read linearly by the logits.",
                )
            if linear is not None and method != "expanded_batch":
                vals = _closed_form(masks, src, tgt, tgt_logits, linear[0].detach(), linear[1], metric_fn)
                used.add("closed_form")
            else:
                masks_dev = masks.to(dev)

                def edit(view, sl, src=src, masks_dev=masks_dev, lay=lay):  # view [k, B, *shape]
                    m, s = masks_dev[sl], src
                    if view.shape[2:] != s.shape[1:]:
                        # answer-position-only pass (last layer): other positions cannot reach the answer
                        ax = POSITION_AXIS[lay]
                        m, s = last_position(m, 1 + ax), last_position(s, 1 + ax)
                    return torch.where(m[:, None], s[None], view)

                chunks = run_variants(
                    model,
                    tgt_pairs,
                    len(masks),
                    {name: edit},
                    lambda lg, sl: metric_fn(lg),
                    full=False,
                    max_rows=max_rows,
                )
                n_passes += len(chunks)
                vals = torch.cat(chunks)
                used.add("expanded_batch")
            per_layer.append(vals.reshape(grid).float().cpu())
        has_layer_axis = is_transformer(model) and hook_pairs[0][0] is not None and hook not in model.hook_dict
        values = torch.stack(per_layer) if has_layer_axis else per_layer[0]
        axis_names = (("layer",) if has_layer_axis else ()) + tuple(names)
        return PatchResult(
            values=values,
            axis_names=axis_names,
            hooks=tuple(hook_names),
            per=per,
            metric=metric_name,
            direction=direction,
            corruption=corruption_name,
            clean_metric=float(metric_fn(clean_logits)),
            corrupted_metric=float(metric_fn(corr_logits)),
            n_pairs=len(clean),
            method="+".join(sorted(used)),
            n_forward_passes=n_passes,
        )
    finally:
        model.train(was_training)
