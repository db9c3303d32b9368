"""Argument checks of the diffusion study, on the shared validators (interp.validation): every number it
takes is a real, finite number in its range, every count a positive int, every seed an int, and noise
levels a non-empty descending list of positive numbers; anything else is a SpecError that names the
function, the argument and what it expects."""

from __future__ import annotations

import torch

from interp.errors import SpecError
from interp.validation import check_int, check_number


def check_real(where: str, name: str, value, *, minimum: float | None = None, positive: bool = False) -> float:
    """`value` as a float: a finite real number (not a bool), > 0 when `positive`, >= `minimum` when given."""
    return check_number(where, name, value, min_value=0.0 if positive else minimum, inclusive=not positive)


def check_count(where: str, name: str, value, *, minimum: int = 1, fix: str = "") -> int:
    """`value` as an int >= `minimum` (not a bool, not a float)."""
    return check_int(where, name, value, min_value=minimum, fix=fix or None)


def check_seed(where: str, value) -> int:
    """A seed: an int in [0, 2**63)."""
    return check_int(where, "seed", value, min_value=0, max_value=2**63 - 1, fix="e.g. seed=0.")


def check_sigmas(where: str, sigmas, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Noise levels [k] (k >= 1): finite, > 0 and strictly descending, as a tensor on `device`."""
    try:
        t = torch.as_tensor(sigmas, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise SpecError(where, "sigmas", sigmas, "a list or 1-D tensor of noise levels") from None
    shown = t.tolist() if t.numel() <= 8 else f"{t.numel()} levels from {t.flatten()[0]:g}"
    if t.ndim != 1 or t.numel() == 0:
        raise SpecError(
            where,
            "sigmas",
            shown,
            "a non-empty 1-D list of noise levels",
            "e.g. karras_sigmas(18), or None for the default.",
        )
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise SpecError(where, "sigmas", shown, "finite noise levels > 0 (the sampler divides by each)")
    if t.numel() > 1 and not (t[1:] < t[:-1]).all():
        raise SpecError(where, "sigmas", shown, "strictly descending noise levels (sampling goes from noise to data)")
    return t.to(dtype=dtype, device=device)
