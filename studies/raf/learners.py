"""The convex RAF learners, fitted in closed form (square loss) or by scikit-learn's SVC (hinge).

All take the stacked data of S seeds and return a `Fit` with the predictions on the training and
test inputs. Square loss with penalty (lam / 2) |w|^2:

- linear: h(x) = w . x / sqrt(d), w = (X^T X / d + lam I)^-1 X^T y / sqrt(d) (the min-norm
  interpolator / least squares at lam = 0);
- kernel: h(x) = K(x, X) (K + lam I)^-1 y;
- random features: h(x) = a . sigma(F x / sqrt(d)) / sqrt(p), F [p, d] i.i.d. N(0, 1) frozen;
  solved in the primal when p <= n and in the dual (n x n) when p > n.

Hinge loss: the dual SVM with C = 1/lam on the Gram matrix of the same model (X X^T / d, K, or
Z Z^T for the random features Z), by `sklearn.svm.SVC(kernel="precomputed")`, one seed at a time.
SVC always fits an unpenalised intercept b (the theory has none); with balanced labels b is
O(1/sqrt(n)), and the simulations agree with the state evolution within finite-size error.
Solvers run in float64 on the data's device; the SVM runs on the CPU (scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.svm import SVC
from torch import Tensor

from studies.raf.activations import activation as activation_fn
from studies.raf.data import RAFData
from studies.raf.kernels import Kernel

RF_SEED_OFFSET = 1_000_003  # the random-feature matrix of data seed s is drawn from seed s + this


@dataclass(frozen=True)
class Fit:
    """Predictions of S fitted learners (one per seed) and what they were computed from."""

    h_train: Tensor  # [S, n] predictor on the training inputs
    h_test: Tensor  # [S, n_test] predictor on the test inputs
    dual: Tensor | None = None  # [S, n] kernel / SVM dual coefficients, h = K dual + bias
    weights: Tensor | None = None  # [S, P] primal weights on the features (linear, random features)
    bias: Tensor | None = None  # [S] SVM intercept (None for ridge)


def solve_psd(K: Tensor, y: Tensor, lam: float) -> Tensor:
    """(K + lam I)^-1 y for symmetric PSD K [S, n, n], y [S, n] -> [S, n]: Cholesky, or the
    pseudo-inverse (eigendecomposition) when K + lam I is singular (lam = 0 at an interpolation peak)."""
    A = K + lam * torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(A)
    if not bool((info != 0).any()):
        return torch.cholesky_solve(y[..., None], L)[..., 0]
    evals, evecs = torch.linalg.eigh(A)  # [S, n], [S, n, n]
    cut = evals.abs().amax(-1, keepdim=True) * K.shape[-1] * torch.finfo(K.dtype).eps
    inv = torch.where(evals.abs() > cut, 1 / evals, torch.zeros_like(evals))
    coeffs = inv * (evecs.mT @ y[..., None])[..., 0]  # [S, n] in the eigenbasis
    return (evecs @ coeffs[..., None])[..., 0]


def ridge_weights(z: Tensor, y: Tensor, lam: float) -> Tensor:
    """argmin_a |y - z a|^2 / 2 + lam |a|^2 / 2 for features z [S, n, P] -> a [S, P] (primal if P <= n, else dual)."""
    n, P = z.shape[-2:]
    if P <= n:
        return solve_psd(z.mT @ z, (z.mT @ y[..., None])[..., 0], lam)  # [S, P]
    dual = solve_psd(z @ z.mT, y, lam)  # [S, n]
    return (z.mT @ dual[..., None])[..., 0]  # [S, P]


def svm_dual(K: Tensor, y: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Soft-margin SVM (C = 1/lam) on a precomputed Gram K [S, n, n]: the dual coefficients
    (y_i alpha_i, zero off the support) [S, n] and intercepts [S], by sklearn's SVC, seed by seed."""
    K_np, y_np = K.detach().cpu().numpy(), y.detach().cpu().numpy()
    dual = np.zeros(y_np.shape)
    bias = np.zeros(y_np.shape[0])
    for s in range(K_np.shape[0]):
        svc = SVC(kernel="precomputed", C=1.0 / lam).fit(K_np[s], y_np[s])
        dual[s, svc.support_] = svc.dual_coef_[0]
        bias[s] = svc.intercept_[0]
    as_t = dict(dtype=K.dtype, device=K.device)
    return torch.as_tensor(dual, **as_t), torch.as_tensor(bias, **as_t)


class RandomFeatures:
    """x -> sigma(F x / sqrt(d)) / sqrt(p) with F [S, p, d] i.i.d. N(0, 1), one matrix per data seed."""

    def __init__(self, data: RAFData, p: int, activation: str):
        gens = [torch.Generator().manual_seed(s + RF_SEED_OFFSET) for s in data.seeds]
        F = torch.stack([torch.randn(p, data.spec.d, dtype=torch.float64, generator=g) for g in gens])
        self.F = F.to(data.device)  # [S, p, d]
        self.sigma = activation_fn(activation)
        self.p, self.d = p, data.spec.d

    def __call__(self, x: Tensor) -> Tensor:
        """x [S, N, d] -> features [S, N, p]."""
        return self.sigma(x @ self.F.mT / self.d**0.5) / self.p**0.5


def _chunked(features, x: Tensor, a: Tensor, chunk: int = 4096) -> Tensor:
    """features(x) @ a, `chunk` rows at a time: x [S, N, d], a [S, P] -> [S, N]."""
    return torch.cat([(features(part) @ a[..., None])[..., 0] for part in x.split(chunk, dim=-2)], dim=-1)


def fit_features(data: RAFData, features, lam: float, loss: str) -> Fit:
    """A linear model on explicit features (x / sqrt(d), or random features), square or hinge loss."""
    z = features(data.x_train)  # [S, n, P]
    if loss == "square":
        a = ridge_weights(z, data.y_train, lam)  # [S, P]
        return Fit((z @ a[..., None])[..., 0], _chunked(features, data.x_test, a), weights=a)
    dual, bias = svm_dual(z @ z.mT, data.y_train, lam)  # [S, n], [S]
    a = (z.mT @ dual[..., None])[..., 0]  # [S, P]
    h_train = (z @ a[..., None])[..., 0] + bias[:, None]
    return Fit(h_train, _chunked(features, data.x_test, a) + bias[:, None], dual=dual, weights=a, bias=bias)


def fit_kernel(data: RAFData, kernel: Kernel, lam: float, loss: str) -> Fit:
    """Kernel ridge (square loss) or kernel SVM (hinge) with `kernel`."""
    K = kernel.gram(data.x_train)  # [S, n, n]
    if loss == "square":
        dual, bias = solve_psd(K, data.y_train, lam), None
    else:
        dual, bias = svm_dual(K, data.y_train, lam)
    h_train = (K @ dual[..., None])[..., 0]  # [S, n]
    h_test = kernel.predict(data.x_train, dual, data.x_test)  # [S, n_test]
    if bias is not None:
        h_train, h_test = h_train + bias[:, None], h_test + bias[:, None]
    return Fit(h_train, h_test, dual=dual, bias=bias)


def linear_features(x: Tensor) -> Tensor:
    """x / sqrt(d): the linear model's features."""
    return x / x.shape[-1] ** 0.5
