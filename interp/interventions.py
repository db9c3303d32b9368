"""Reading and editing activations: the one kernel that patching, ablation, partitions and the
probes' activation grids use.

- Hook names: `resolve_hooks` turns short names ("resid_pre", "z", "post", ...) into the full
  TransformerLens-style names of a model, `neuron_hook_name` finds the hidden-neuron hook, `layout`
  says how a hook's activation is laid out.
- Reading: `cache_hooks` runs the model once per chunk of rows and keeps the named activations;
  `answer_logits` gives the logits at the answer position.
- Editing: `run_variants` runs k edited variants of one batch as one expanded forward pass (the part
  of the network upstream of the edited hook computed once); `linear_readout` says when a hook is read
  linearly into the logits, so an edit there has a closed form and needs no forward pass at all.

Everything here works on every model family through the surface each model class owns (its hook
vocabulary `resolve_hook` / `hook_layout` / `expansion_point`, `answer_logits`, `linear_readout`,
`neuron_hook`, `neuron_out_weights`) and its TransformerLens hook points: nothing here branches on the
kind of model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.device import eval_mode, model_device
from interp.errors import ShapeError, SpecError
from interp.tasks import all_pairs

# Rows (sequences) per expanded forward pass: k variants x batch B are run as one batch of k*B.
# None picks by device: CPU passes are compute-bound and cache-friendlier when small; GPU passes
# are launch-bound and want to be large.
DEFAULT_MAX_ROWS = None
CPU_MAX_ROWS, GPU_MAX_ROWS = 4096, 65536
# Elements of one closed-form logit block [k, B, max(n, p)].
CLOSED_FORM_ELEMENTS = 2**24
# Pairs per pass when reading a whole activation grid: no per-variant copies here, so larger passes pay.
GRID_ROWS = 8192


def layout(model, hook_name: str) -> str:
    """How a hook's activation is laid out after the batch axis (the model's `hook_layout`): "units"
    [n], "pos_units" [pos, n], "pos_head" [pos, head, d_head] or "head_qk" [head, q_pos, k_pos]."""
    return model.hook_layout(hook_name)


def resolve_hooks(model, hook: str, layers=None, where: str = "activation_patch") -> list[tuple[int | None, str]]:
    """[(layer, full hook name)] for a short name ("resid_pre", "z", "post", ...) over `layers`
    (None: every layer), or for a full hook name ("blocks.0.mlp.hook_post") as given: the model's
    own vocabulary (`model.resolve_hook`)."""
    return model.resolve_hook(hook, layers, where=where)


def neuron_hook_name(model, hook: str | None) -> str:
    """The full name of the hook whose last axis holds the neurons (default: `model.neuron_hook`)."""
    return model.neuron_hook_name(hook)


def answer_logits(model, pairs: torch.Tensor, full: bool = True, all_positions: bool = False) -> torch.Tensor:
    """Logits [B, p] at the answer position. full=True runs every position of every layer (hooks see
    [B, n_ctx, ...]); full=False the model's fast path (a transformer's last layer at position -1 only).
    all_positions=True: the logits at every position, [B, n_ctx, p] (what a transformer's model(tokens) returns)."""
    if all_positions:  # a family with more than one position says so by taking the argument
        return model.answer_logits(pairs, full=full, all_positions=True)
    return model.answer_logits(pairs, full=full)


def linear_readout(model, hook_name: str):
    """(readout [n, p], transform) such that logits = transform(act)[..., answer position, :] @ readout
    + (terms the hook does not touch), when the model says that holds exactly (`model.linear_readout`:
    the hidden neurons before and after the activation function, where nothing else follows); None
    otherwise."""
    return model.linear_readout(hook_name)


METHODS = ("auto", "closed_form", "expanded_batch")


def closed_form_readout(model, hook_name: str, method: str, where: str):
    """The `linear_readout` of `hook_name` when `method` ("auto", "closed_form" or "expanded_batch")
    asks for the closed form and it exists, else None (then the caller runs expanded batches); a
    SpecError for an unknown method, or for "closed_form" where the logits do not read the hook linearly."""
    if method not in METHODS:
        raise SpecError(where, "method", method, "'auto', 'closed_form' or 'expanded_batch'")
    linear = linear_readout(model, hook_name)
    if method == "closed_form" and linear is None:
        raise SpecError(
            where,
            "method",
            method,
            "'auto' or 'expanded_batch' here",
            f"{hook_name} is not read linearly by the logits.",
        )
    return None if method == "expanded_batch" else linear


def answer_position(act: torch.Tensor) -> torch.Tensor:
    """The answer position's slice of a [B, (pos,) n] activation."""
    return act[:, -1] if act.ndim == 3 else act


def max_rows_for(model, max_rows: int | None) -> int:
    """The rows per forward pass: `max_rows`, or by the model's device when None."""
    if max_rows is not None:
        if int(max_rows) < 1:
            raise SpecError("batching", "max_rows", max_rows, "a positive int, or None for the device's default")
        return int(max_rows)
    return GPU_MAX_ROWS if model_device(model).type == "cuda" else CPU_MAX_ROWS


def cache_hooks(model, pairs: torch.Tensor, hook_names, full: bool = True, max_rows: int | None = DEFAULT_MAX_ROWS):
    """(answer logits [B, p], {hook name: activation [B, ...]}) in one forward pass per chunk of rows."""
    max_rows = max(max_rows_for(model, max_rows), 1)
    store: dict[str, list[torch.Tensor]] = {name: [] for name in hook_names}

    def saver(act, hook):
        store[hook.name].append(act.detach())
        return act

    logits = []
    with torch.no_grad(), model.hooks(fwd_hooks=[(name, saver) for name in hook_names]):
        for i in range(0, len(pairs), max_rows):
            logits.append(answer_logits(model, pairs[i : i + max_rows], full=full))
    return torch.cat(logits), {name: torch.cat(acts) for name, acts in store.items()}


def neuron_activations(
    model, pairs: torch.Tensor, hook: str | None = None, max_rows: int | None = DEFAULT_MAX_ROWS
) -> torch.Tensor:
    """[B, n] the hidden neurons' activations at the answer position for `pairs` [B, 2] (default
    hook: `model.neuron_hook`), by the fast path (the transformer's last layer at the answer position
    only), in eval mode, without gradients."""
    name = neuron_hook_name(model, hook)
    with eval_mode(model):
        _, cache = cache_hooks(model, pairs, [name], full=False, max_rows=max_rows)
    return answer_position(cache[name])


def activation_grid(model, hook: str | None = None) -> torch.Tensor:
    """[p, p, n] the hidden neurons' activations at the answer position over every (a, b) in
    Z_p x Z_p (indexed a, b, neuron; also pairs outside a task's table, e.g. b = 0 for division: the
    grid is the function the network computes), float32."""
    pairs = all_pairs(model.p, device=model_device(model))
    rows = max(GRID_ROWS, max_rows_for(model, None))  # one fast-path pass per 8k pairs at least: fewer, larger passes
    return neuron_activations(model, pairs, hook, max_rows=rows).float().reshape(model.p, model.p, -1)


def expansion_point(model, hook_name: str) -> str | None:
    """The hook at which a forward pass can switch from B rows to k*B rows before `hook_name`: a
    hook that carries the whole state the rest of the forward pass reads (`model.expansion_point`).
    Everything upstream of it is then computed once for all k variants. None when no such point
    exists (the embeddings, the MLP's two input branches): the inputs themselves are repeated."""
    return model.expansion_point(hook_name)


def run_variants(
    model,
    pairs: torch.Tensor,
    n_variants: int,
    edits: dict[str, Callable[[torch.Tensor, slice], torch.Tensor]],
    reduce: Callable[[torch.Tensor, slice], torch.Tensor],
    full: bool = True,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    all_positions: bool = False,
) -> list[torch.Tensor]:
    """Run `n_variants` interventions on the same batch by expanding it: chunks of k variants go
    through one forward pass of k*B rows; at each hook in `edits`, edit(act [k, B, ...], variants)
    returns the edited activation. With one edited hook, the pass runs on B rows up to the hook's
    `expansion_point` and is repeated k times (variant-major) from there, so the shared upstream
    part is computed once. `reduce(logits [k, B, p], variants)` maps each chunk's logits to what is
    kept ([k, B, n_ctx, p] on the transformer with all_positions=True, which runs every position).
    Returns the list of reduced chunks, in variant order."""
    B = len(pairs)
    k_max = max(1, min(n_variants, max_rows_for(model, max_rows) // max(B, 1)))
    out = []
    current: dict[str, int | slice] = {}
    expand_at = expansion_point(model, next(iter(edits))) if len(edits) == 1 else None

    def repeat_rows(act):  # [B, ...] -> [k*B, ...], variant-major
        return act.repeat(current["k"], *([1] * (act.ndim - 1)))

    def make_hook(name, edit):
        def hook_fn(act, hook):
            sl = current["variants"]
            if name == expand_at:
                act = repeat_rows(act)
            view = act.reshape(current["k"], B, *act.shape[1:])
            return edit(view, sl).reshape(act.shape)

        return hook_fn

    hooks = [(name, make_hook(name, fn)) for name, fn in edits.items()]
    if expand_at is not None and expand_at not in edits:
        hooks.insert(0, (expand_at, lambda act, hook: repeat_rows(act)))
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        for start in range(0, n_variants, k_max):
            sl = slice(start, min(n_variants, start + k_max))
            k = sl.stop - sl.start
            current["variants"], current["k"] = sl, k
            rows = pairs if expand_at is not None else pairs.repeat(k, 1)
            logits = answer_logits(model, rows, full=full, all_positions=all_positions)  # [k*B, (pos,) p]
            out.append(reduce(logits.reshape(k, B, *logits.shape[1:]), sl))
    return out


def last_position(x: torch.Tensor, axis: int) -> torch.Tensor:
    """x narrowed to its last index along `axis` (kept as a length-1 axis)."""
    return x.narrow(axis, x.shape[axis] - 1, 1)


POSITION_AXIS = {"pos_units": 0, "pos_head": 0, "head_qk": 1}  # per-example axis of (query) position


def closed_form_chunk(n_variants: int, batch: int, width: int) -> int:
    """Variants per closed-form block so that a [k, B, width] block stays near CLOSED_FORM_ELEMENTS."""
    return max(1, min(n_variants, CLOSED_FORM_ELEMENTS // max(1, batch * width)))


def as_index_mask(units, n: int, what: str = "neurons") -> torch.Tensor:
    """A bool mask [n] from indices (list / long tensor) or a bool mask [n]."""
    if isinstance(units, torch.Tensor) and units.dtype == torch.bool:
        if units.shape != (n,):
            raise ShapeError(f"a boolean {what} mask must have shape [{n}], got {list(units.shape)}.")
        return units.cpu()
    idx = (
        torch.as_tensor(list(units) if not isinstance(units, torch.Tensor) else units, dtype=torch.long)
        .reshape(-1)
        .cpu()
    )
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ShapeError(f"{what} indices must lie in [0, {n}), got values in [{int(idx.min())}, {int(idx.max())}].")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return mask
