"""The prior side of the RAF state evolution, its damped fixed-point solver and the closed forms.

The prior side of each learner (l2 penalty lam / 2 |w|^2) maps the conjugates (m_hat, q_hat, V_hat)
of a channel (studies.raf.channels) back to (m, q, V):

- linear: V = 1 / (lam + V_hat), m = m_hat V, q = (m_hat^2 + q_hat) V^2;
- kernel (Gaussian coefficients mu1, mu_star): the linear prior on the mu1-part, plus the per-sample
  lookup table: V = mu1^2 / (lam + mu1^2 V_hat) + mu_star^2 / lam, m = mu1^2 m_hat / (lam + mu1^2 V_hat),
  q = mu1^4 (m_hat^2 + q_hat) / (lam + mu1^2 V_hat)^2;
- random features (kappa = p / d): the channel runs at alpha / kappa and the prior averages over the
  eigenvalues s of F F^T / d (Marchenko-Pastur with ratio kappa, an atom 1 - 1/kappa at 0 when
  kappa > 1), with u = mu1^2 s + mu_star^2 and D = lam + V_hat u:
  V = E[u / D], m = kappa mu1^2 m_hat E[s / D], q = kappa mu1^2 m_hat^2 E[s u / D^2] + q_hat E[u^2 / D^2]
  (the Gaussian covariate model of Loureiro et al. 2021 with Omega = mu1^2 F F^T / d + mu_star^2 I,
  Phi = mu1 F^T / sqrt(d), averaged over a rotation-invariant teacher).

Square-loss linear ridge has a closed-form fixed point (any lam >= 0); kernel ridge at lam = 0 is the
linear closed form at lam_eff = mu_star^2 / mu1^2 with every training label fitted. Everything else
is a damped fixed-point iteration. A run that does not converge returns a `TheoryResult` with
converged=False and every error and order parameter None (never a plausible number).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import erf

from studies.raf.channels import CHANNELS, gauss_legendre, label_correlation

TOL = 1e-10  # relative change of (m, q, V) between iterations at the fixed point
MAX_ITER = 20_000
DAMPINGS = (0.5, 0.2, 0.05)  # tried in turn when an iteration oscillates or fails
MP_NODES = 400


def linear_prior(lam: float):
    """(m_hat, q_hat, V_hat) -> (m, q, V) for a linear model with penalty lam."""

    def prior(m_hat, q_hat, V_hat):
        V = 1 / (lam + V_hat)
        return m_hat * V, (m_hat**2 + q_hat) * V**2, V

    return prior


def kernel_prior(lam: float, mu1: float, mu_star: float):
    """(m_hat, q_hat, V_hat) -> (m, q, V) for kernel ridge / SVM with coefficients (mu1, mu_star), lam > 0."""

    def prior(m_hat, q_hat, V_hat):
        V_s = 1 / (lam + mu1**2 * V_hat)
        return mu1**2 * m_hat * V_s, mu1**4 * (m_hat**2 + q_hat) * V_s**2, mu1**2 * V_s + mu_star**2 / lam

    return prior


@functools.cache
def marchenko_pastur(kappa: float, nodes: int = MP_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues s and weights of F F^T / d, F [p, d] i.i.d. N(0, 1), p / d = kappa (weights sum to 1).

    The density sqrt((b - s)(s - a)) / (2 pi kappa s) on [a, b] = [(1 - sqrt kappa)^2, (1 + sqrt kappa)^2]
    is integrated with s = (a + b)/2 + (b - a)/2 cos(theta) and Gauss-Legendre in theta (smooth integrand),
    plus an atom 1 - 1/kappa at s = 0 when kappa > 1."""
    a, b = (1 - math.sqrt(kappa)) ** 2, (1 + math.sqrt(kappa)) ** 2
    x, w = gauss_legendre(nodes)
    theta = (x + 1) * math.pi / 2
    s = (a + b) / 2 + (b - a) / 2 * np.cos(theta)
    weights = w * math.pi / 2 * ((b - a) / 2 * np.sin(theta)) ** 2 / (2 * math.pi * kappa * s)
    if kappa > 1:
        return np.append(s, 0.0), np.append(weights, 1 - 1 / kappa)
    return s, weights


def random_features_prior(lam: float, kappa: float, mu1: float, mu_star: float):
    """(m_hat, q_hat, V_hat) -> (m, q, V) for random features with width ratio kappa, penalty lam > 0."""
    s, w = marchenko_pastur(float(kappa))
    u = mu1**2 * s + mu_star**2

    def prior(m_hat, q_hat, V_hat):
        D = lam + V_hat * u
        m = kappa * mu1**2 * m_hat * (w @ (s / D))
        q = kappa * mu1**2 * m_hat**2 * (w @ (s * u / D**2)) + q_hat * (w @ (u * u / D**2))
        return m, q, w @ (u / D)

    return prior


def iterate(channel: str, alpha: float, epsilon: float, prior, start=(0.5, 1.0, 1.0)):
    """Damped fixed point of (m, q, V) -> prior(channel(m, q, V)); tries the dampings in DAMPINGS.

    Returns ((m, q, V), converged, iterations, message)."""
    out = CHANNELS[channel]
    total = 0
    for damping in DAMPINGS:
        state = np.array(start, dtype=float)
        with np.errstate(all="ignore"):
            for it in range(1, MAX_ITER + 1):
                new = np.array(prior(*out(alpha, epsilon, *state)), dtype=float)
                if not np.all(np.isfinite(new)) or new[1] <= 0 or new[2] <= 0:
                    break
                change = np.max(np.abs(new - state) / (np.abs(state) + 1e-8))
                state = damping * new + (1 - damping) * state
                if change < TOL:
                    return tuple(float(v) for v in state), True, total + it, f"converged (damping {damping})"
        total += it
    return (
        None,
        False,
        total,
        (f"no fixed point within {MAX_ITER} iterations at dampings {list(DAMPINGS)} (relative tolerance {TOL:g})"),
    )


def ridge_closed_form(alpha: float, epsilon: float, lam: float) -> tuple[float, float, float]:
    """(m, q, V) of linear ridge at any lam >= 0: V solves lam V^2 + (lam + alpha - 1) V - 1 = 0
    (V = inf: interpolation), r = V / (1 + V), m = alpha c r, q (1 - alpha r^2) = (alpha^2 c^2 + alpha(1 - 2 c m)) r^2."""
    c = label_correlation(epsilon)
    if lam > 0:
        b = lam + alpha - 1
        V = 2 / (b + math.sqrt(b * b + 4 * lam))  # the positive root, written without cancellation
        r = V / (1 + V)
    elif alpha < 1:
        V, r = math.inf, 1.0
    else:
        V = 1 / (alpha - 1) if alpha > 1 else math.inf
        r = 1 / alpha
    m = alpha * c * r
    denom = 1 - alpha * r * r
    q = (alpha**2 * c * c + alpha * (1 - 2 * c * m)) * r * r / denom if denom > 0 else math.inf
    return m, q, V


def bayes_optimal_overlap(alpha: float, epsilon: float, nodes: int = 400) -> tuple[float | None, bool, int, str]:
    """q_b of the Bayes-optimal estimator: q_b = q_hat / (1 + q_hat) with
    q_hat = 4 (1-eps)^2 alpha / ((2 pi)^{3/2} (1-q_b)) int exp(-(1+q_b) t^2 / (2(1-q_b))) / (1 + (1-eps) erf(sqrt(q_b) t / sqrt(2(1-q_b)))) dt."""
    x, w = gauss_legendre(nodes)
    q, total = 0.5, 0
    for damping in DAMPINGS:
        q = 0.5
        for it in range(1, MAX_ITER + 1):
            half = 12 * math.sqrt((1 - q) / (1 + q))  # the Gaussian factor's width, 12 standard deviations
            t, wt = x * half, w * half
            f = np.exp(-(1 + q) * t * t / (2 * (1 - q))) / (
                1 + (1 - epsilon) * erf(math.sqrt(q) * t / math.sqrt(2 * (1 - q)))
            )
            q_hat = 4 * (1 - epsilon) ** 2 * alpha / ((2 * math.pi) ** 1.5 * (1 - q)) * float(wt @ f)
            new = q_hat / (1 + q_hat)
            if not math.isfinite(new):
                break
            change = abs(new - q) / (q + 1e-8)
            q = damping * new + (1 - damping) * q
            if change < TOL:
                return q, True, total + it, f"converged (damping {damping})"
            if q >= 1:
                break
        total += it
    return None, False, total, f"no fixed point within {MAX_ITER} iterations"
