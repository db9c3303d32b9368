"""The output ("channel") side of the RAF state evolution, and the errors read off its fixed point.

Order parameters: m = overlap of the pre-activation with the teacher field, q = its variance on a
fresh input, V = the response (variance) parameter of the training pre-activation. The joint law
is (z, omega) Gaussian with E z^2 = 1, E z omega = m, E omega^2 = q; a label is sign(z) with
probability 1 - eps and a fair coin otherwise (docs/papers.md, A.1, A.3, A.4).

A channel maps (m, q, V) at sample ratio alpha to the conjugates (m_hat, q_hat, V_hat):
    V_hat = -alpha E[d f_out / d omega],   q_hat = alpha E[f_out^2],
    m_hat = alpha E[f_out (z - (m / q) omega)] / (1 - m^2 / q)      (Stein's lemma on the teacher side),
with f_out = (prox_{V loss(y, .)}(omega) - omega) / V. For the square loss f_out = (y - omega) / (1 + V)
and the expectations are closed forms; for the hinge f_out = y phi(y omega) with phi piecewise linear,
so the inner Gaussian integral over omega is exact and the outer one over |z| is 200-point
Gauss-Legendre on [0, 10].
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtr

Z_MAX = 10.0  # |z| beyond this carries < 1e-22 of the Gaussian mass
QUAD_NODES = 200


def label_correlation(epsilon: float) -> float:
    """c = E[y z] = (1 - eps) sqrt(2 / pi)."""
    return (1 - epsilon) * math.sqrt(2 / math.pi)


@functools.cache
def gauss_legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (cached: numpy recomputes an eigendecomposition each call)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    x.flags.writeable = w.flags.writeable = False
    return x, w


@functools.cache
def half_line_rule(nodes: int = QUAD_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z in (0, Z_MAX) and weights w with sum w g(z) ~ E[g(|z|)], z ~ N(0, 1)."""
    x, w = gauss_legendre(nodes)
    z = (x + 1) * Z_MAX / 2
    return z, w * Z_MAX / 2 * 2 * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(x)) / math.sqrt(2 * math.pi)


def truncated_moments(mu, s, a: float, b: float):
    """P, E[w 1], E[w^2 1] over a < w <= b for w ~ N(mu, s^2) (a = -inf allowed): arrays like mu."""
    B = (b - mu) / s
    P_b, pdf_b = ndtr(B), _pdf(B)
    if math.isinf(a):
        P, d1, d2 = P_b, -pdf_b, -(b + mu) * pdf_b
    else:
        A = (a - mu) / s
        pdf_a = _pdf(A)
        P, d1, d2 = P_b - ndtr(A), pdf_a - pdf_b, (a + mu) * pdf_a - (b + mu) * pdf_b
    return P, mu * P + s * d1, (mu * mu + s * s) * P + s * d2


def hinge_moments(mu, s, V: float):
    """For t ~ N(mu, s^2) and phi(t) = 1 (t <= 1 - V), (1 - t) / V (1 - V < t <= 1), 0 (t > 1):
    E phi^2, P(1 - V < t <= 1), E t phi, E phi."""
    P0, M10, _ = truncated_moments(mu, s, -math.inf, 1 - V)
    P1, M11, M21 = truncated_moments(mu, s, 1 - V, 1.0)
    e_phi = P0 + (P1 - M11) / V
    e_phi2 = P0 + (P1 - 2 * M11 + M21) / V**2
    e_tphi = M10 + (M11 - M21) / V
    return e_phi2, P1, e_tphi, e_phi


def square_channel(alpha: float, epsilon: float, m: float, q: float, V: float) -> tuple[float, float, float]:
    """Conjugates of the square loss: V_hat = alpha/(1+V), m_hat = alpha c/(1+V), q_hat = alpha(1+q-2cm)/(1+V)^2."""
    c = label_correlation(epsilon)
    return alpha * c / (1 + V), alpha * (1 + q - 2 * c * m) / (1 + V) ** 2, alpha / (1 + V)


def hinge_channel(alpha: float, epsilon: float, m: float, q: float, V: float) -> tuple[float, float, float]:
    """Conjugates (m_hat, q_hat, V_hat) of the hinge loss max(0, 1 - y h)."""
    z, w = half_line_rule()
    s_rule = math.sqrt(max(q - m * m, 1e-300))
    # rule samples: y = sign z, so t = y omega given |z| is N(m |z|, q - m^2)
    r_phi2, r_mid, r_tphi, r_phi = hinge_moments(m * z, s_rule, V)
    # facts: y independent of omega, t ~ N(0, q); they carry no information on m
    f_phi2, f_mid, _, _ = hinge_moments(np.zeros(1), math.sqrt(q), V)
    e_phi2 = (1 - epsilon) * (w @ r_phi2) + epsilon * f_phi2[0]
    e_mid = (1 - epsilon) * (w @ r_mid) + epsilon * f_mid[0]
    teacher_side = (1 - epsilon) * (w @ (z * r_phi) - m / q * (w @ r_tphi))
    return alpha * teacher_side / (1 - m * m / q), alpha * e_phi2, alpha * e_mid / V


CHANNELS = {"square": square_channel, "hinge": hinge_channel}


def generalisation_error(m: float, q: float) -> float:
    """E_gen = arccos(m / sqrt(q)) / pi (1/2 when the test predictor is constant or unbounded)."""
    if not math.isfinite(q) or q <= 0:
        return 0.5
    return math.acos(max(-1.0, min(1.0, m / math.sqrt(q)))) / math.pi


def memorisation_error(q: float, V: float) -> float:
    """E_mem = Phi(-V / sqrt(q)): a fact's training pre-activation is omega + V y, omega ~ N(0, q)."""
    if q <= 0:
        return 0.0
    return float(ndtr(-V / math.sqrt(q)))


def rule_training_error(m: float, q: float, V: float) -> float:
    """E_rule_train = P(sign(z) omega < -V) = E_|z| Phi((-V - m |z|) / sqrt(q - m^2))."""
    if not math.isfinite(V) or q <= 0:
        return 0.0
    z, w = half_line_rule()
    s = math.sqrt(max(q - m * m, 1e-300))
    return float(w @ ndtr((-V - m * z) / s))
