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

from interp.errors import SpecError
from interp.models.cache import ActivationCache

__all__ = ["ActivationCache", "HookedModel", "HookedRootModule", "HookPoint"]


class HookedModel(HookedRootModule):
    """A HookedRootModule whose `run_with_cache` returns (output, ActivationCache), as HookedTransformer's,
    and which owns its hook vocabulary: short names ("post", "resid_pre", ...) for its hooks, in
    `GLOBAL_HOOKS` (one hook each) and `BLOCK_HOOKS` (a "{l}" template, one hook per layer)."""

    GLOBAL_HOOKS: dict[str, str] = {}
    BLOCK_HOOKS: dict[str, str] = {}
    HOOK_NOTE = ""  # said with an unknown hook name (a model variant that lacks some of its family's hooks)

    def resolve_hook(self, hook: str, layers=None, where: str = "hook") -> list[tuple[int | None, str]]:
        """[(layer, full hook name)] for a short name over `layers` (None: every layer; an int: one), or
        for a full hook name as given (its layer read from "blocks.{l}." when it has one)."""
        if hook in self.hook_dict:
            return [(int(hook.split(".")[1]) if hook.startswith("blocks.") else None, hook)]
        if hook in self.GLOBAL_HOOKS:
            return [(None, self.GLOBAL_HOOKS[hook])]
        if hook in self.BLOCK_HOOKS:
            n_layers = self.cfg.n_layers
            if layers is None:
                layers = list(range(n_layers))
            elif isinstance(layers, int):
                layers = [layers]
            bad = [lay for lay in layers if not 0 <= int(lay) < n_layers]
            if bad:
                raise SpecError(where, "layers", layers, f"layer indices in [0, {n_layers})")
            out = [(int(lay), self.BLOCK_HOOKS[hook].format(l=int(lay))) for lay in layers]
            missing = [name for _, name in out if name not in self.hook_dict]
            if missing:  # a variant of the family without some of its blocks' parts
                raise SpecError(
                    "hook",
                    "name",
                    hook,
                    "a hook this model has",
                    f"{missing[0]} is not one.{self.hook_note(missing[0])}",
                )
            return out
        raise SpecError(
            "hook",
            "name",
            hook,
            f"a short name in {sorted(self.BLOCK_HOOKS) + sorted(self.GLOBAL_HOOKS)} or a full hook name of this model",
            f"See model.hook_dict for the full names.{self.hook_note(hook)}",
        )

    def hook_note(self, hook: str) -> str:
        """What to add when `hook` is not one of this model's hooks (a variant without it, a switch
        that adds it): HOOK_NOTE unless a family says more."""
        return self.HOOK_NOTE

    def neuron_hook_name(self, hook: str | None = None) -> str:
        """The full name of the hook whose last axis holds the neurons: `neuron_hook` by default, or a
        short or full name (a per-layer short name means the last layer's)."""
        if hook is None:
            return self.neuron_hook
        pairs = self.resolve_hook(hook, layers=[self.cfg.n_layers - 1])
        if len(pairs) != 1:
            raise SpecError("neurons", "hook", hook, "one hook")
        return pairs[0][1]

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
