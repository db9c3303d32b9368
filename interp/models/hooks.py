"""TransformerLens's hook machinery, imported where each major version keeps it, and `HookedModel`,
the base of grokscope's models: a `HookedRootModule` whose `run_with_cache` returns an `ActivationCache`.

`HookedRootModule` and `HookPoint` are the parts of TransformerLens that survive 4.0 (which removed
HookedTransformer); 3.x exposes them from `transformer_lens.hook_points`.
"""

from __future__ import annotations

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
        TransformerLens `ActivationCache` (a plain dict with return_cache_object=False)."""
        out, cache_dict = super().run_with_cache(*model_args, remove_batch_dim=remove_batch_dim, **kwargs)
        if not return_cache_object:
            return out, cache_dict
        return out, ActivationCache(cache_dict, self, has_batch_dim=not remove_batch_dim)
