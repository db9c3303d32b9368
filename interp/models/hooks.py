"""TransformerLens's hook machinery, imported where each major version keeps it, and `HookedModel`,
the base of grokscope's models: a `HookedRootModule` whose `run_with_cache` returns an `ActivationCache`.

`HookedRootModule` and `HookPoint` are the parts of TransformerLens that survive 4.0 (which removed
HookedTransformer); 3.x exposes them from `transformer_lens.hook_points`.
"""

from __future__ import annotations

import torch

try:  # TransformerLens >= 4
    from transformer_lens.HookedRootModule import HookedRootModule
except ImportError:  # TransformerLens 3.x
    from transformer_lens.hook_points import HookedRootModule  # type: ignore[no-redef]

from transformer_lens.hook_points import HookPoint

from interp.models.cache import ActivationCache

__all__ = ["ActivationCache", "HookedModel", "HookedRootModule", "HookPoint"]


class HookedModel(HookedRootModule):
    """A HookedRootModule whose `run_with_cache` returns (output, ActivationCache), as HookedTransformer's."""

    def run_with_cache(self, *model_args, return_cache_object: bool = True, remove_batch_dim: bool = False, **kwargs):
        """Run the model and cache every hook (or `names_filter`'s): (output, cache). The cache is a
        TransformerLens `ActivationCache` (a plain dict with return_cache_object=False). With
        incl_bwd=True the output is backpropagated and each hook's gradient cached as "<hook name>_grad",
        as in TransformerLens: the output must then be a scalar (return_type="loss")."""
        if kwargs.get("incl_bwd") and not torch.is_grad_enabled():
            raise RuntimeError(
                "run_with_cache(incl_bwd=True) backpropagates, but gradients are off here (torch.no_grad() or "
                "torch.set_grad_enabled(False)): run it inside `with torch.enable_grad():`."
            )
        try:
            out, cache_dict = super().run_with_cache(*model_args, remove_batch_dim=remove_batch_dim, **kwargs)
        except (RuntimeError, AttributeError) as exc:
            not_scalar = "scalar outputs" in str(exc) or "backward" in str(exc)
            if not (kwargs.get("incl_bwd") and not_scalar):
                raise
            raise RuntimeError(
                "run_with_cache(incl_bwd=True) backpropagates the model's output, so it must be a scalar, as in "
                "TransformerLens: pass return_type='loss' with inputs that carry the answer (tokens `a b = c`, "
                "model.to_tokens('3 5 = 8'), or labels=...), and loss_per_token=False."
            ) from exc
        if not return_cache_object:
            return out, cache_dict
        return out, ActivationCache(cache_dict, self, has_batch_dim=not remove_batch_dim)
