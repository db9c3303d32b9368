"""Sampling: the deterministic Heun PF-ODE sampler for a teacher (EDM Algorithm 1, no churn) and
one- or few-step sampling for a consistency student (Song et al. 2023, Algorithm 1)."""

from __future__ import annotations

import torch

from interp.device import model_device, model_on, resolve_device
from interp.errors import SpecError
from studies.diffusion.checks import check_seed, check_sigmas
from studies.diffusion.edm import ConsistencyModel, EDMDenoiser, karras_sigmas

SAMPLE_CHUNK = 4096  # points per forward pass


def heun_step(denoiser: EDMDenoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One Heun step of the PF-ODE dx/dsigma = (x - D(x, sigma)) / sigma from sigma to sigma_next > 0.

    x: [B, ...]; sigma, sigma_next: scalars or [B] (one level per point, as in consistency distillation)."""
    sigma, sigma_next = _per_point(sigma, x), _per_point(sigma_next, x)  # [B, 1, ...]
    slope = (x - denoiser(x, sigma.flatten())) / sigma
    x_euler = x + (sigma_next - sigma) * slope
    slope_next = (x_euler - denoiser(x_euler, sigma_next.flatten())) / sigma_next
    return x + (sigma_next - sigma) * (slope + slope_next) / 2


def _per_point(sigma, x: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])  # [B]
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))  # [B, 1, ...]


@torch.no_grad()
def heun_sample(denoiser: EDMDenoiser, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Integrate the PF-ODE from sigmas[0] (x [B, ...] at that level) through `sigmas` (descending) to 0:
    Heun steps between the levels, a last Euler step to sigma = 0 (EDM Algorithm 1 without churn)."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x = heun_step(denoiser, x, sigma, sigma_next)
    return denoiser(x, sigmas[-1])  # Euler from sigma_min to 0 lands on D(x, sigma_min)


@torch.no_grad()
def consistency_sample(
    model: ConsistencyModel, z: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """x = f(sigmas[0] z, sigmas[0]); then for each later sigma: re-noise to it and apply f again.

    z: [B, ...] unit noise for the first step; noise: [len(sigmas) - 1, B, ...] for the re-noising."""
    x = model(sigmas[0] * z, sigmas[0])  # [B, ...]
    for k, sigma in enumerate(sigmas[1:]):
        x = x + (sigma**2 - model.sigma_min**2).clamp_min(0).sqrt() * noise[k]
        x = model(x, sigma)
    return x


def student_sigmas(steps: int, device=None) -> torch.Tensor:
    """Noise levels of `steps`-step consistency sampling: sigma_max, then the inner points of a Karras
    schedule of steps + 1 levels (two steps: 80, 2.5)."""
    return karras_sigmas(steps + 1, device=device)[:-1]


def sample(model, n: int, *, steps: int | None = None, seed: int, device=None, sigmas=None) -> torch.Tensor:
    """n samples [n, *data_shape] from a teacher (Heun, `steps` Karras levels, default 18) or a student
    (`steps` consistency steps, default 1). The noise depends only on `seed` and the data shape, so two
    models sampled with one seed start from the same z. `sigmas` overrides the noise levels (descending)."""
    if not isinstance(model, EDMDenoiser):
        raise SpecError("sample", "model", type(model).__name__, "a model from train_denoiser or consistency_distill")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpecError("sample", "n", n, "a positive int")
    student = isinstance(model, ConsistencyModel)
    steps = steps if steps is not None else (1 if student else 18)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise SpecError("sample", "steps", steps, "a positive int", "Teacher: Heun levels (18); student: 1 or 2.")
    dev = resolve_device(device) if device is not None else model_device(model)
    if sigmas is None:
        sigmas = student_sigmas(steps, dev) if student else karras_sigmas(steps, device=dev)
    sigmas = check_sigmas("sample", sigmas, device=dev)
    gen = torch.Generator().manual_seed(check_seed("sample", seed))
    z = torch.randn((n, *model.data_shape), generator=gen)  # [n, ...] on CPU: the same on every device
    renoise = torch.randn((max(len(sigmas) - 1, 0), n, *model.data_shape), generator=gen) if student else None
    model = model_on(model, device)  # a moved copy only when another device is asked for
    out = []
    for start in range(0, n, SAMPLE_CHUNK):
        z_chunk = z[start : start + SAMPLE_CHUNK].to(dev)
        if student:
            out.append(consistency_sample(model, z_chunk, sigmas, renoise[:, start : start + SAMPLE_CHUNK].to(dev)))
        else:
            out.append(heun_sample(model, z_chunk * sigmas[0], sigmas))
    return torch.cat(out)
