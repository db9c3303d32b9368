"""Activations of the RAF random features and two-layer networks, and their Gaussian coefficients.

A non-linearity sigma enters the high-dimensional theory only through three numbers, for
xi ~ N(0, 1): mu0 = E sigma(xi), mu1 = E xi sigma(xi), mu_star^2 = E sigma(xi)^2 - mu0^2 - mu1^2
(the "Gaussian equivalence": sigma(f . x / sqrt(d)) acts as mu0 + mu1 f . x / sqrt(d) + mu_star * noise).
They are computed here by Gauss-Legendre quadrature of the same torch function the simulation uses,
so the theory and the simulation cannot disagree on what "tanh" means.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from interp.models.activations import activation as table_activation

RAF_ACTIVATIONS = ("relu", "tanh", "erf", "sigmoid", "gelu", "silu", "quad", "linear")


def activation(name, where: str = "activation.activation"):
    """The torch function called `name` from the one table (interp.models.activations), among those the RAF
    learners take."""
    return table_activation(name, RAF_ACTIVATIONS, where, fix="The paper's default is 'relu'.")


@dataclass(frozen=True)
class GaussianCoefficients:
    """mu0 = E sigma(xi), mu1 = E xi sigma(xi), mu_star = sqrt(E sigma^2 - mu0^2 - mu1^2), xi ~ N(0, 1)."""

    mu0: float
    mu1: float
    mu_star: float


@functools.cache
def gaussian_coefficients(name: str, nodes: int = 200) -> GaussianCoefficients:
    """(mu0, mu1, mu_star) of activation `name` by Gauss-Legendre quadrature against the Gaussian density
    on [-12, 0] and [0, 12] separately (exact for ReLU's kink at 0, where Gauss-Hermite converges slowly).

    ReLU: (0.3989, 0.5, 0.3014); tanh: (0, 0.6057, 0.1655)."""
    sigma = activation(name)
    x, w = np.polynomial.legendre.leggauss(nodes)
    xi = np.concatenate([(x - 1) * 6, (x + 1) * 6])  # [2 nodes] on [-12, 0] and [0, 12]
    w = np.concatenate([w, w]) * 6 * np.exp(-xi * xi / 2) / math.sqrt(2 * math.pi)
    s = sigma(torch.from_numpy(xi)).numpy()  # [2 nodes]
    mu0, mu1, second = float(w @ s), float(w @ (xi * s)), float(w @ (s * s))
    return GaussianCoefficients(mu0, mu1, math.sqrt(max(0.0, second - mu0**2 - mu1**2)))


def rbf_coefficients(eta: float) -> GaussianCoefficients:
    """Coefficients of k = f(|x - x'|^2 / d), f(t) = exp(-eta t / 2), on Gaussian inputs (El Karoui 2010):
    |x - x'|^2 / d ~ 2 - 2 x . x' / d, so mu0^2 = f(2), mu1^2 = -2 f'(2), mu_star^2 = f(0) - f(2) + 2 f'(2)."""
    f2 = math.exp(-eta)
    mu1_sq = eta * f2
    return GaussianCoefficients(math.sqrt(f2), math.sqrt(mu1_sq), math.sqrt(max(0.0, 1.0 - f2 - mu1_sq)))
