"""EDM preconditioning (Karras et al. 2022), its training loss, the Karras noise schedule, and the
consistency-model parametrisation (Song et al. 2023) that shares the same raw network.

    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)            (the teacher: a denoiser)
    f(x, sigma) = c_skip' x + c_out' F(c_in x, c_noise)          (the student: f(x, sigma_min) = x)

with c_skip = s_d^2 / (sigma^2 + s_d^2), c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
c_in = 1 / sqrt(sigma^2 + s_d^2), c_noise = ln(sigma) / 4, and for the student
c_skip' = s_d^2 / ((sigma - sigma_min)^2 + s_d^2), c_out' = s_d (sigma - sigma_min) / sqrt(sigma^2 + s_d^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from interp.errors import SpecError
from studies.diffusion.checks import check_count, check_real
from studies.diffusion.denoisers import build_net, check_data_shape, config_from_dict, config_to_dict

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0  # EDM / CIFAR-10 CD values (docs/papers.md, B.3)
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


@dataclass(frozen=True)
class EDMConfig:
    """An EDM denoiser as a model family ("edm"): its raw network's config (DenoiserConfig, UNetConfig or
    RandomFeatureConfig), the shape of one data point and sigma_data (measured from the data when the
    network's config leaves it None). It is what run directories record (interp.models.family)."""

    net: object
    data_shape: tuple[int, ...]
    sigma_data: float

    family = "edm"

    def __post_init__(self):
        net = config_from_dict(self.net) if isinstance(self.net, dict) else self.net
        object.__setattr__(self, "net", net)
        try:
            shape = tuple(int(s) for s in self.data_shape)
        except (TypeError, ValueError):
            shape = ()
        if not shape or min(shape) < 1:
            raise SpecError(
                type(self).__name__, "data_shape", self.data_shape, "the shape of one data point, e.g. (8,)"
            )
        object.__setattr__(self, "data_shape", shape)
        check_data_shape(net, shape)
        sd = self.sigma_data
        if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not math.isfinite(sd) or sd <= 0:
            raise SpecError(type(self).__name__, "sigma_data", sd, "a positive number (the data's per-coordinate std)")
        object.__setattr__(self, "sigma_data", float(sd))

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "net": config_to_dict(self.net),
            "data_shape": list(self.data_shape),
            "sigma_data": self.sigma_data,
        }


@dataclass(frozen=True)
class ConsistencyConfig(EDMConfig):
    """A consistency model (family "consistency"): an EDMConfig in the consistency parametrisation."""

    sigma_min: float = SIGMA_MIN

    family = "consistency"

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.sigma_min, (int, float)) and 0 < self.sigma_min < math.inf):
            raise SpecError("ConsistencyConfig", "sigma_min", self.sigma_min, "a positive number", "EDM uses 0.002.")
        object.__setattr__(self, "sigma_min", float(self.sigma_min))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "sigma_min": self.sigma_min}


class EDMDenoiser(nn.Module):
    """D(x, sigma): the EDM-preconditioned denoiser around a raw network F (MLP or U-Net).

    Built from its config, `EDMDenoiser(EDMConfig(net_config, data_shape, sigma_data))` (a fresh network,
    or `net=` a given one), or `EDMDenoiser(net, net_config, data_shape, sigma_data)` around a network."""

    kind = "edm"
    config_class = EDMConfig

    def __init__(self, cfg, *config_args, net: nn.Module | None = None):
        super().__init__()
        if isinstance(cfg, nn.Module):  # around a given network: (net, net_config, data_shape, sigma_data[, ...])
            net, cfg = cfg, self.config_class(*config_args)
        if not isinstance(cfg, self.config_class):
            raise SpecError(type(self).__name__, "cfg", type(cfg).__name__, f"a {self.config_class.__name__}")
        self.cfg = cfg
        self.net = net if net is not None else build_net(cfg.net, cfg.data_shape)
        self.history: list[dict] = []  # training log: {"step", "loss", ...}, set by the trainers
        self.step = 0  # optimizer steps taken
        self.snapshots: dict[int, dict] = {}  # {step: state dict} kept by the trainers (see training.at_step)
        self.optimizer_state: dict | None = None  # the optimizer state it ended with (continue_training resumes it)
        self.data_spec = None  # the DataSpec of the training data (interp.data_spec), when known

    @property
    def config(self):
        """The raw network's config."""
        return self.cfg.net

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.cfg.data_shape

    @property
    def sigma_data(self) -> float:
        return self.cfg.sigma_data

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
    config_class = ConsistencyConfig

    @property
    def sigma_min(self) -> float:
        return self.cfg.sigma_min

    def skip_and_out(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sd, shifted = self.sigma_data, sigma - self.sigma_min
        return sd**2 / (shifted**2 + sd**2), sd * shifted / (sigma**2 + sd**2).sqrt()


def edm_noise(x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The EDM training noise for a batch x0 [B, ...]: sigma [B] with ln sigma ~ N(-1.2, 1.2^2), and n ~ N(0, I)."""
    sigma = (P_MEAN + P_STD * torch.randn(x0.shape[0], generator=generator, device=x0.device)).exp()  # [B]
    return sigma, torch.randn(x0.shape, generator=generator, device=x0.device)


def edm_loss_of(denoised: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) |D - x0|^2 averaged over the batch, for denoised and x0 [..., B, *shape], sigma [..., B]:
    the loss of each leading index (one per model), [...]."""
    weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2  # makes the effective target unit variance
    per_point = ((denoised - x0) ** 2).flatten(sigma.ndim).mean(-1)  # [..., B]
    return (weight * per_point).mean(-1)


def edm_loss(denoiser: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The EDM denoising loss on a batch x0 [B, ...]: lambda(sigma) |D(x0 + sigma n, sigma) - x0|^2, ln sigma ~ N(-1.2, 1.2^2)."""
    sigma, noise = edm_noise(x0, generator)
    denoised = denoiser(x0 + _expand(sigma, x0) * noise, sigma)
    return edm_loss_of(denoised, x0, sigma, denoiser.sigma_data)
