"""Training data for the diffusion studies: Bonnaire et al.'s Gaussian mixture, user arrays, sklearn's digits.

Data are float32 tensors [n, *shape]: vectors [n, d] or images [n, C, H, W] ([n, H, W] is read as one
channel). Nothing is downloaded.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from interp.device import resolve_device
from interp.errors import ShapeError, SpecError
from probes.samples import as_real_tensor, check_finite


def gaussian_mixture(n: int, d: int = 8, seed: int = 0, *, mean: float = 1.0, std: float = 1.0) -> torch.Tensor:
    """n points [n, d] of the two-component mixture 1/2 N(+mean 1, std^2 I) + 1/2 N(-mean 1, std^2 I) (B.5)."""
    for name, v in (("n", n), ("d", d)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SpecError("gaussian_mixture", name, v, "a positive int")
    if not std > 0:
        raise SpecError("gaussian_mixture", "std", std, "a positive number")
    g = torch.Generator().manual_seed(int(seed))
    signs = torch.randint(0, 2, (n, 1), generator=g).float() * 2 - 1  # [n, 1], +-1
    return signs * mean + std * torch.randn(n, d, generator=g)  # [n, d]


def as_training_data(data, *, name: str = "data", device=None, min_points: int = 2) -> torch.Tensor:
    """`data` as a float32 tensor [n, *shape] on `device`: vectors [n, d], images [n, H, W] -> [n, 1, H, W] or [n, C, H, W]."""
    data = as_real_tensor(data, name)
    if data.ndim not in (2, 3, 4):
        raise ShapeError(
            f"{name} has shape {tuple(data.shape)}: expected vectors [n, d] or images [n, H, W] / [n, C, H, W]. "
            "Stack the points along the first axis."
        )
    dev = resolve_device(device) if device is not None else data.device
    data = data.detach().to(dev, torch.float32)
    if data.ndim == 3:
        data = data[:, None]  # [n, 1, H, W]
    if data.shape[0] < min_points:
        raise ShapeError(
            f"{name} has {data.shape[0]} point(s): at least {min_points} are needed (a diffusion model of one point "
            "is that point, and the copy fraction needs a second-nearest training point). Pass more points."
        )
    check_finite(data, name)
    return data.contiguous()


def measured_sigma_data(data: torch.Tensor) -> float:
    """EDM's sigma_data for `data` [n, ...]: the root-mean-square per-coordinate standard deviation."""
    return float(data.reshape(data.shape[0], -1).var(dim=0).mean().sqrt().clamp_min(1e-3))


def digits(n: int | None = None, *, seed: int = 0) -> torch.Tensor:
    """sklearn's bundled 8x8 digits (1797 images, shipped with scikit-learn: no download) as [n, 1, 8, 8] in [-1, 1].

    `n` picks a random subset (seeded); None keeps all."""
    images = torch.as_tensor(load_digits().images, dtype=torch.float32) / 8.0 - 1.0  # [1797, 8, 8], 0..16 -> -1..1
    if n is not None:
        if not isinstance(n, int) or not 1 <= n <= images.shape[0]:
            raise SpecError("digits", "n", n, f"an int in [1, {images.shape[0]}] or None")
        images = images[torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:n]]
    return images[:, None]  # [n, 1, 8, 8]
