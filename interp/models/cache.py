"""TransformerLens's `ActivationCache` for grokscope models: what `run_with_cache` returns.

On the transformer, every method works as on a HookedTransformer (`cache["pattern", 0]`,
`accumulated_resid`, `decompose_resid`, `stack_activation`, `logit_attrs`, ...), under TransformerLens
3.x and 4.x alike. The MLP has one hidden layer and no residual stream: `cache["post", 0]` (or
`cache["post"]`) is its `hook_post`, `stack_activation("post")` is [1, batch, width], and the methods
that need a residual stream or attention say so.
"""

from __future__ import annotations

import functools

from transformer_lens.ActivationCache import ActivationCache as TransformerLensActivationCache

from interp.errors import SpecError

# The methods of TransformerLens's cache that read a residual stream, attention heads or layer norms.
RESIDUAL_STREAM_METHODS = (
    "accumulated_resid",
    "decompose_resid",
    "logit_attrs",
    "apply_ln_to_stack",
    "compute_head_results",
    "stack_head_results",
    "stack_neuron_results",
    "get_neuron_results",
    "get_full_resid_decomposition",
    "logit_lens",
)

# Why each refused method has nothing to read on the MLP (the others: no residual stream, attention or layer norm).
MLP_REFUSALS = {
    "logit_lens": "the logit lens reads the residual stream layer by layer through the unembedding; the MLP has "
    "one hidden layer read by W alone, so its only readout is the logits themselves",
    "compute_head_results": "the MLP has no attention heads",
    "stack_head_results": "the MLP has no attention heads",
}


class ActivationCache(TransformerLensActivationCache):
    """TransformerLens's ActivationCache, also for the hookable MLP (its hooks by their short names)."""

    def __getitem__(self, key):
        if not self.is_mlp_cache():
            return super().__getitem__(key)
        return self.cache_dict[mlp_hook_name(key, self.cache_dict)]

    def is_mlp_cache(self) -> bool:
        return getattr(getattr(self.model, "cfg", None), "family", None) == "mlp"

    def require_residual_stream(self, method: str) -> None:
        """A SpecError that says why `method` cannot run on an MLP's cache, and what to read instead."""
        if self.is_mlp_cache():
            why = MLP_REFUSALS.get(method, "the MLP has no residual stream, attention or layer norm")
            raise SpecError(
                "ActivationCache",
                method,
                "called on an MLP's cache",
                f"a transformer's cache ({why})",
                "For the MLP read cache['post'] (hidden neurons [batch, width]) and model.neuron_out_weights() "
                "([width, p]): logits = cache['post'] @ model.neuron_out_weights().",
            )


def refusing_on_mlp(name: str):
    """TransformerLens's method `name`, preceded by the check that the cache has a residual stream."""
    method = getattr(TransformerLensActivationCache, name)

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        self.require_residual_stream(name)
        return method(self, *args, **kwargs)

    return checked


for _name in RESIDUAL_STREAM_METHODS:
    if hasattr(TransformerLensActivationCache, _name):  # some exist only in later TransformerLens releases
        setattr(ActivationCache, _name, refusing_on_mlp(_name))


def mlp_hook_name(key, names) -> str:
    """The MLP's hook for a TransformerLens cache key: "hook_post", "post", ("post", 0), ("post", -1)."""
    if isinstance(key, str):
        name, layer = key, None
    else:
        name, layer = key[0], key[1] if len(key) > 1 else None
    if name in names:
        return name
    if layer not in (None, 0, -1):
        raise KeyError(f"{key!r}: the MLP has one hidden layer (layer 0 or -1); its hooks are {sorted(names)}.")
    full = name if name.startswith("hook_") else f"hook_{name}"
    if full not in names:
        raise KeyError(f"{key!r} is not an activation of the MLP; cached hooks: {sorted(names)}.")
    return full
