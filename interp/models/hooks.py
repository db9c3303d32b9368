"""TransformerLens's hook machinery, imported where each major version keeps it.

`HookedRootModule` and `HookPoint` are the parts of TransformerLens that survive 4.0 (which removed
HookedTransformer); 3.x exposes them from `transformer_lens.hook_points`.
"""

from __future__ import annotations

try:  # TransformerLens >= 4
    from transformer_lens.HookedRootModule import HookedRootModule
except ImportError:  # TransformerLens 3.x
    from transformer_lens.hook_points import HookedRootModule  # type: ignore[no-redef]

from transformer_lens.hook_points import HookPoint

__all__ = ["HookedRootModule", "HookPoint"]
