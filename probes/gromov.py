"""Gromov's analytic two-layer solution of modular addition, and the fit of a trained MLP to it.

Gromov 2023 ("Grokking modular arithmetic"): neuron m with frequency sigma_m and phases phi_a, phi_b
has u_m(n) = A cos(2 pi sigma n / p + phi_a), v_m(n) = A cos(2 pi sigma n / p + phi_b),
w_m(q) = A cos(-2 pi sigma q / p - phi_a - phi_b), A = (2 / N)^(1/3), phi(x) = x^2. Summed over
neurons, the (a + b) term of (u_a + v_b)^2 times w_m(q) gives sum cos(2 pi sigma (a + b - q) / p),
which peaks at q = a + b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.models import MLPConfig, build_model, model_family
from interp.results import Result
from probes.fourier import dft, mlp_neuron_vectors, neuron_spectra

__all__ = [
    "PhaseFit",
    "gromov_mlp",
    "phase_fit",
]

_RELATIONS = {
    "x+y": "phi_a + phi_b = phi_c",
    "x-y": "phi_a - phi_b = phi_c",
}


@torch.no_grad()
def gromov_mlp(p: int, width: int, seed: int = 0, op: str = "x+y", act: str = "quad"):
    """An `interp.models.MLP` with Gromov's analytic weights (quadratic activation): 100% accuracy
    on (a + b) mod p (op="x-y": (a - b) mod p, with w's phase phi_a - phi_b) and every neuron's IPR 1.

    Frequencies cycle through 1..(p-1)//2 so that every one is used (Gromov's condition). The
    phases of the neurons sharing a frequency are evenly spread, phi_a = 2 pi j / n_k + theta,
    phi_b = 6 pi j / n_k + theta' (j = 0..n_k-1, theta, theta' random from `seed`), which cancels
    the cross terms exactly when n_k >= 9 neurons share the frequency; with fewer, they cancel on
    average only (random-phase regime of the paper) and accuracy may fall below 100% at small width.
    """
    if op not in _RELATIONS:
        raise SpecError("gromov_mlp", "op", op, f"one of {sorted(_RELATIONS)}")
    if isinstance(p, bool) or not isinstance(p, int) or p < 3:
        raise SpecError("gromov_mlp", "p", p, "an int >= 3")
    n_freq = (p - 1) // 2
    model = build_model(MLPConfig(p=p, width=width, act=act), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    m = torch.arange(width)
    sigma = 1 + m % n_freq  # [width]
    j = torch.div(m, n_freq, rounding_mode="floor")  # index of the neuron among those with its frequency
    n_k = torch.bincount(sigma, minlength=n_freq + 1)[sigma].double()
    theta = 2 * math.pi * torch.rand(n_freq + 1, 2, generator=gen, dtype=torch.float64)
    phi_a = 2 * math.pi * j / n_k + theta[sigma, 0]
    phi_b = 6 * math.pi * j / n_k + theta[sigma, 1]
    phi_c = phi_a + phi_b if op == "x+y" else phi_a - phi_b
    amp = (2.0 / width) ** (1.0 / 3.0)
    x = torch.arange(p, dtype=torch.float64)
    arg = 2 * math.pi * sigma[:, None].double() * x[None, :] / p  # [width, p]
    model.U.copy_(amp * torch.cos(arg + phi_a[:, None]))
    model.V.copy_(amp * torch.cos(arg + phi_b[:, None]))
    model.W.copy_((amp * torch.cos(-arg - phi_c[:, None])).T)
    return model


@dataclass(frozen=True, eq=False)
class PhaseFit(Result):
    """Per-neuron phases at the dominant frequency and the error of the analytic phase relation.

    phases: [n, 3] angles of the DFT coefficients X_k(u), X_k(v), X_k(w) at each neuron's dominant
    frequency k (for u = A cos(2 pi k n / p + phi), angle X_k = phi). error: [n] |wrap(relation)| in
    [0, pi], wrap(x) into (-pi, pi]; 0 for Gromov's solution, ~pi/2 on average for random phases.
    """

    relation: str
    dominant_freq: torch.Tensor  # [n]
    phases: torch.Tensor  # [n, 3]
    error: torch.Tensor  # [n]
    mean_error: float
    median_error: float
    weighted_mean_error: float  # weighted by the neuron's power at its frequency (|X_k(u)||X_k(v)||X_k(w)|)


@torch.no_grad()
def phase_fit(subject, task=None, *, op: str | None = None, device=None) -> PhaseFit:
    """Fit of a two-layer MLP to Gromov's analytic solution: per-neuron phases (phi_a, phi_b, phi_c)
    of u, v, w at the dominant frequency and the error of phi_a + phi_b = phi_c (addition) or
    phi_a - phi_b = phi_c (subtraction), wrapped to [0, pi]."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    if not model.neuron_weights_exact:
        raise SpecError(
            "phase_fit", "model", model_family(model), "a two-layer MLP (whose neurons' weights are their whole maps)",
            "Use neuron_spectra for transformers.",
        )  # fmt: skip
    op = op or (task.spec.op if task is not None else "x+y")
    if op not in _RELATIONS:
        raise SpecError("phase_fit", "op", op, f"one of {sorted(_RELATIONS)} (the analytic solution is for these)")
    vectors = mlp_neuron_vectors(model)  # [n, 3, p]
    dom = neuron_spectra(model).dominant_freq.to(vectors.device)
    X = dft(vectors.double())  # [n, 3, F]
    xk = X.gather(2, dom[:, None, None].expand(-1, 3, 1))[..., 0]  # [n, 3]
    ph = torch.angle(xk)
    rel = ph[:, 0] + ph[:, 1] - ph[:, 2] if op == "x+y" else ph[:, 0] - ph[:, 1] - ph[:, 2]
    err = torch.remainder(rel + math.pi, 2 * math.pi) - math.pi
    err = err.abs()
    weight = xk.abs().prod(1)
    return PhaseFit(
        relation=_RELATIONS[op],
        dominant_freq=dom.cpu(),
        phases=ph.float().cpu(),
        error=err.float().cpu(),
        mean_error=float(err.mean()),
        median_error=float(err.median()),
        weighted_mean_error=float((err * weight).sum() / weight.sum().clamp_min(1e-30)),
    )
