"""Dot-product and radial kernels on Gaussian inputs, batched over seeds.

Every kernel here enters the theory through its Gaussian coefficients (mu0, mu1, mu_star): in the
proportional regime K(X, X) ~ mu0^2 11^T + mu1^2 X X^T / d + mu_star^2 I.

- "arccos": the ReLU arc-cosine kernel E_w relu(w.x/sqrt d) relu(w.x'/sqrt d)
  = (|x||x'| / d) (sin t + (pi - t) cos t) / (2 pi), t the angle between x and x' (Cho and Saul 2009).
- "gaussian_equivalent": mu0^2 + mu1^2 x.x'/d + mu_star^2 [x is x'] for the coefficients of any activation.
- "rbf": exp(-eta |x - x'|^2 / (2 d)) (2 d is the typical squared distance of two Gaussian inputs).
- "linear": x.x'/d (the linear model written as a kernel, for the dual SVM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from studies.raf.activations import GaussianCoefficients, gaussian_coefficients, rbf_coefficients


@dataclass(frozen=True)
class Kernel:
    """A kernel by name with the Gaussian coefficients the theory uses for it."""

    name: str  # arccos | gaussian_equivalent | rbf | linear
    coefficients: GaussianCoefficients
    rbf_eta: float = 1.0

    def gram(self, x1: Tensor, x2: Tensor | None = None) -> Tensor:
        """K(x1, x2): x1 [S, N1, d], x2 [S, N2, d] -> [S, N1, N2]; x2=None is the training Gram K(x1, x1)."""
        train = x2 is None
        x2 = x1 if train else x2
        d = x1.shape[-1]
        dots = x1 @ x2.mT / d  # [S, N1, N2]
        if self.name == "linear":
            return dots
        if self.name == "gaussian_equivalent":
            c = self.coefficients
            K = c.mu0**2 + c.mu1**2 * dots
            if train:
                K = K + c.mu_star**2 * torch.eye(x1.shape[-2], dtype=K.dtype, device=K.device)
            return K
        n1 = x1.pow(2).sum(-1) / d  # [S, N1] squared norms / d
        n2 = n1 if train else x2.pow(2).sum(-1) / d  # [S, N2]
        if self.name == "rbf":
            sq = (n1[..., :, None] + n2[..., None, :] - 2 * dots).clamp(min=0)  # [S, N1, N2] |x - x'|^2 / d
            return torch.exp(-self.rbf_eta * sq / 2)
        norms = torch.sqrt(n1[..., :, None] * n2[..., None, :])  # [S, N1, N2]
        cos = dots.div_(norms).clamp_(-1.0, 1.0)  # in place: four [S, N1, N2] buffers at most (n = 32k on a GPU)
        theta = torch.arccos(cos)
        K = torch.sin(theta).add_(theta.neg_().add_(math.pi).mul_(cos))  # sin t + (pi - t) cos t
        return K.mul_(norms).div_(2 * math.pi)

    def predict(self, x_train: Tensor, dual: Tensor, x: Tensor, chunk: int = 4096) -> Tensor:
        """K(x, X) dual for x [S, N, d], X [S, n, d], dual [S, n] -> [S, N], `chunk` rows of x at a time."""
        out = [self.gram(part, x_train) @ dual[..., None] for part in x.split(chunk, dim=-2)]  # [S, c, 1] each
        return torch.cat(out, dim=-2)[..., 0]


def make_kernel(name: str, activation: str = "relu", rbf_eta: float = 1.0) -> Kernel:
    """The kernel `name` with its Gaussian coefficients (those of `activation`, or of the RBF)."""
    if name == "rbf":
        return Kernel("rbf", rbf_coefficients(rbf_eta), rbf_eta)
    if name == "linear":
        return Kernel("linear", GaussianCoefficients(0.0, 1.0, 0.0))
    return Kernel(name, gaussian_coefficients(activation))
