"""Argument checks of the diffusion study: every number it takes is a real, finite number in its range,
every count a positive int, every seed an int, and noise levels a non-empty descending list of positive
numbers; anything else is a SpecError that names the function, the argument and what it expects."""

from __future__ import annotations

import math

import torch

from interp.errors import SpecError


def check_real(where: str, name: str, value, *, minimum: float | None = None, positive: bool = False) -> float:
    """`value` as a float: a finite real number (not a bool), > 0 when `positive`, >= `minimum` when given."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not positive or value > 0) and (minimum is None or value >= minimum)
    if not ok:
        expected = "a finite number" + (" > 0" if positive else f" >= {minimum:g}" if minimum is not None else "")
        raise SpecError(where, name, value, expected)
    return float(value)


def check_count(where: str, name: str, value, *, minimum: int = 1, fix: str = "") -> int:
    """`value` as an int >= `minimum` (not a bool, not a float)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(where, name, value, f"an int >= {minimum}", fix)
    return value


def check_seed(where: str, value) -> int:
    """A seed: an int in [0, 2**63)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise SpecError(where, "seed", value, "an int in [0, 2**63)", "e.g. seed=0.")
    return value


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
