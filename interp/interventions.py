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

Everything here works on both model families through their shared surface (`pair_logits`,
`neuron_hook`, `neuron_out_weights`) and their TransformerLens hook points.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.device import model_device
from interp.errors import ShapeError, SpecError
from interp.models import is_transformer
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

TRANSFORMER_BLOCK_HOOKS = {
    "resid_pre": "blocks.{l}.hook_resid_pre",
    "resid_mid": "blocks.{l}.hook_resid_mid",
    "resid_post": "blocks.{l}.hook_resid_post",
    "attn_out": "blocks.{l}.hook_attn_out",
    "mlp_out": "blocks.{l}.hook_mlp_out",
    "q": "blocks.{l}.attn.hook_q",
    "k": "blocks.{l}.attn.hook_k",
    "v": "blocks.{l}.attn.hook_v",
    "z": "blocks.{l}.attn.hook_z",
    "pattern": "blocks.{l}.attn.hook_pattern",
    "attn_scores": "blocks.{l}.attn.hook_attn_scores",
    "pre": "blocks.{l}.mlp.hook_pre",
    "post": "blocks.{l}.mlp.hook_post",
}
TRANSFORMER_GLOBAL_HOOKS = {"embed": "hook_embed", "pos_embed": "hook_pos_embed"}
MLP_HOOKS = {"in_a": "hook_in_a", "in_b": "hook_in_b", "pre": "hook_pre", "post": "hook_post", "logits": "hook_logits"}


def layout(model, hook_name: str) -> str:
    """How a hook's activation is laid out after the batch axis: "units" [n] (MLP), "pos_units"
    [pos, n], "pos_head" [pos, head, d_head] or "head_qk" [head, q_pos, k_pos]."""
    if not is_transformer(model):
        return "units"
    if hook_name.endswith(("hook_pattern", "hook_attn_scores")):
        return "head_qk"
    if hook_name.endswith(("hook_q", "hook_k", "hook_v", "hook_z")):
        return "pos_head"
    return "pos_units"


def resolve_hooks(model, hook: str, layers=None) -> list[tuple[int | None, str]]:
    """[(layer, full hook name)] for a short name ("resid_pre", "z", "post", ...) over `layers`
    (None: every layer), or for a full hook name ("blocks.0.mlp.hook_post") as given."""
    names = set(model.hook_dict)
    if hook in names:
        layer = None
        if hook.startswith("blocks."):
            layer = int(hook.split(".")[1])
        return [(layer, hook)]
    if is_transformer(model):
        if hook in TRANSFORMER_GLOBAL_HOOKS:
            return [(None, TRANSFORMER_GLOBAL_HOOKS[hook])]
        if hook in TRANSFORMER_BLOCK_HOOKS:
            n_layers = model.cfg.n_layers
            if layers is None:
                layers = list(range(n_layers))
            elif isinstance(layers, int):
                layers = [layers]
            bad = [lay for lay in layers if not 0 <= int(lay) < n_layers]
            if bad:
                raise SpecError("activation_patch", "layers", layers, f"layer indices in [0, {n_layers})")
            return [(int(lay), TRANSFORMER_BLOCK_HOOKS[hook].format(l=int(lay))) for lay in layers]
        short = sorted(TRANSFORMER_BLOCK_HOOKS) + sorted(TRANSFORMER_GLOBAL_HOOKS)
    else:
        if hook in MLP_HOOKS:
            return [(None, MLP_HOOKS[hook])]
        short = sorted(MLP_HOOKS)
    raise SpecError(
        "hook",
        "name",
        hook,
        f"a short name in {short} or a full hook name of this model",
        "See model.hook_dict for the full names.",
    )


def neuron_hook_name(model, hook: str | None) -> str:
    """The full name of the hook whose last axis holds the neurons (default: `model.neuron_hook`)."""
    if hook is None:
        return model.neuron_hook
    pairs = resolve_hooks(model, hook, layers=[model.cfg.n_layers - 1] if is_transformer(model) else None)
    if len(pairs) != 1:
        raise SpecError("ablation", "hook", hook, "one hook")
    return pairs[0][1]


def answer_logits(model, pairs: torch.Tensor, full: bool = True) -> torch.Tensor:
    """Logits [B, p] at the answer position. full=True runs every position of every layer (hooks see
    [B, n_ctx, ...]); full=False uses `pair_logits` (the last transformer layer sees position 1 only)."""
    if not is_transformer(model):
        return model(pairs)
    if not full:
        return model.pair_logits(pairs)
    return model(model.pair_tokens(pairs))[:, -1]


def linear_readout(model, hook_name: str):
    """(readout [n, p], transform) such that logits = transform(act)[..., answer position, :] @ readout
    + (terms the hook does not touch), when that holds exactly: the MLP's hook_post (transform =
    identity) and hook_pre (transform = the activation function), and the same two hooks of the
    transformer's last layer when it has no final layer norm. None otherwise."""
    identity = lambda x: x  # noqa: E731
    if not is_transformer(model):
        if hook_name == "hook_post":
            return model.neuron_out_weights(), identity
        if hook_name == "hook_pre":
            return model.neuron_out_weights(), model.act
        return None
    cfg = model.cfg
    if cfg.normalization_type is not None:
        return None
    last = f"blocks.{cfg.n_layers - 1}.mlp."
    if hook_name == last + "hook_post":
        return model.neuron_out_weights(), identity
    if hook_name == last + "hook_pre":
        return model.neuron_out_weights(), model.blocks[-1].mlp.act
    return None


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
            where, "method", method, "'auto' or 'expanded_batch' here", f"{hook_name} is not read linearly by the logits."
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
    was_training = model.training
    model.eval()
    try:
        _, cache = cache_hooks(model, pairs, [name], full=False, max_rows=max_rows)
    finally:
        model.train(was_training)
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
    hook that carries the whole state the rest of the forward pass reads (the residual stream at the
    start of the block, or the hook itself when it is such a point). Everything upstream of it is
    then computed once for all k variants. None when no such point exists (the embeddings, the MLP's
    two input branches): the inputs themselves are repeated."""
    if not is_transformer(model):
        return hook_name if hook_name in ("hook_pre", "hook_post", "hook_logits") else None
    parts = hook_name.split(".")
    if parts[0] == "blocks":
        layer, rest = parts[1], ".".join(parts[2:])
        if rest in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"):
            return hook_name
        if rest.startswith(("attn.", "ln1.")) or rest == "hook_attn_out":
            return f"blocks.{layer}.hook_resid_pre"
        if rest.startswith(("mlp.", "ln2.")) or rest == "hook_mlp_out":
            return f"blocks.{layer}.hook_resid_mid"
        return None
    if parts[0] == "ln_final":
        return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    return None


def run_variants(
    model,
    pairs: torch.Tensor,
    n_variants: int,
    edits: dict[str, Callable[[torch.Tensor, slice], torch.Tensor]],
    reduce: Callable[[torch.Tensor, slice], torch.Tensor],
    full: bool = True,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> list[torch.Tensor]:
    """Run `n_variants` interventions on the same batch by expanding it: chunks of k variants go
    through one forward pass of k*B rows; at each hook in `edits`, edit(act [k, B, ...], variants)
    returns the edited activation. With one edited hook, the pass runs on B rows up to the hook's
    `expansion_point` and is repeated k times (variant-major) from there, so the shared upstream
    part is computed once. `reduce(logits [k, B, p], variants)` maps each chunk's logits to what is
    kept. Returns the list of reduced chunks, in variant order."""
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
            logits = answer_logits(model, rows, full=full)  # [k*B, p], variant-major
            out.append(reduce(logits.reshape(k, B, -1), sl))
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
