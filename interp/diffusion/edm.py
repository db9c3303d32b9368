"""EDM preconditioning (Karras et al. 2022), its training loss, the Karras noise schedule, and the
consistency-model parametrisation (Song et al. 2023) that shares the same raw network.

    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)            (the teacher: a denoiser)
    f(x, sigma) = c_skip' x + c_out' F(c_in x, c_noise)          (the student: f(x, sigma_min) = x)

with c_skip = s_d^2 / (sigma^2 + s_d^2), c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
c_in = 1 / sqrt(sigma^2 + s_d^2), c_noise = ln(sigma) / 4, and for the student
c_skip' = s_d^2 / ((sigma - sigma_min)^2 + s_d^2), c_out' = s_d (sigma - sigma_min) / sqrt(sigma^2 + s_d^2).
"""

from __future__ import annotations

import torch
from torch import nn

from interp.diffusion.checks import check_count, check_real
from interp.errors import SpecError

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0  # EDM / CIFAR-10 CD values (PAPERS-WAVE2 B.3)
P_MEAN, P_STD = -1.2, 1.2  # ln(sigma) ~ N(P_MEAN, P_STD^2) during training


def karras_sigmas(n: int, *, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO, device=None):
    """The Karras schedule: n noise levels from sigma_max down to sigma_min ([n], descending)."""
    check_count("karras_sigmas", "n", n)
    sigma_min = check_real("karras_sigmas", "sigma_min", sigma_min, positive=True)
    sigma_max = check_real("karras_sigmas", "sigma_max", sigma_max, positive=True)
    rho = check_real("karras_sigmas", "rho", rho, positive=True)
    if sigma_max <= sigma_min:
        raise SpecError("karras_sigmas", "sigma_max", sigma_max, f"a level above sigma_min={sigma_min:g}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64, device=device)  # [n]
    inv_max, inv_min = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return ((inv_max + ramp * (inv_min - inv_max)) ** rho).float()


def _expand(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return c.reshape(-1, *([1] * (x.ndim - 1)))  # [B] -> [B, 1, ...]


class EDMDenoiser(nn.Module):
    """D(x, sigma): the EDM-preconditioned denoiser around a raw network F (MLP or U-Net)."""

    kind = "edm"

    def __init__(self, net: nn.Module, config, data_shape: tuple[int, ...], sigma_data: float):
        super().__init__()
        self.net, self.config = net, config
        self.data_shape, self.sigma_data = tuple(data_shape), float(sigma_data)
        self.history: list[dict] = []  # training log: {"step", "loss"}, appended by the trainers

    def skip_and_out(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s2, sd = sigma**2, self.sigma_data
        return sd**2 / (s2 + sd**2), sigma * sd / (s2 + sd**2).sqrt()

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x: [B, *data_shape]; sigma: [B] or a scalar. Returns D(x, sigma) [B, *data_shape]."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])  # [B]
        c_skip, c_out = self.skip_and_out(sigma)
        c_in = 1 / (sigma**2 + self.sigma_data**2).sqrt()
        f = self.net(_expand(c_in, x) * x, sigma.log() / 4)  # [B, *data_shape]
        return _expand(c_skip, x) * x + _expand(c_out, x) * f


class ConsistencyModel(EDMDenoiser):
    """f(x, sigma): the consistency-model parametrisation, exact identity at sigma_min."""

    kind = "consistency"

    def __init__(
        self, net: nn.Module, config, data_shape: tuple[int, ...], sigma_data: float, sigma_min: float = SIGMA_MIN
    ):
        super().__init__(net, config, data_shape, sigma_data)
        self.sigma_min = float(sigma_min)

    def skip_and_out(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sd, shifted = self.sigma_data, sigma - self.sigma_min
        return sd**2 / (shifted**2 + sd**2), sd * shifted / (sigma**2 + sd**2).sqrt()


def edm_loss(denoiser: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The EDM denoising loss on a batch x0 [B, ...]: lambda(sigma) |D(x0 + sigma n, sigma) - x0|^2, ln sigma ~ N(-1.2, 1.2^2)."""
    b, sd = x0.shape[0], denoiser.sigma_data
    sigma = (P_MEAN + P_STD * torch.randn(b, generator=generator, device=x0.device)).exp()  # [B]
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)  # [B, ...]
    denoised = denoiser(x0 + _expand(sigma, x0) * noise, sigma)
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2  # [B]; makes the effective target unit variance
    per_point = ((denoised - x0) ** 2).reshape(b, -1).mean(dim=1)  # [B]
    return (weight * per_point).mean()
