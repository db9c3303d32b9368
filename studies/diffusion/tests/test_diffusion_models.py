"""EDM denoisers, the Heun sampler, consistency students, save / load, and their refusals of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interp.errors import CheckpointError, DeviceError, ShapeError, SpecError
from studies.diffusion import (
    ConsistencyModel,
    DenoiserConfig,
    EDMDenoiser,
    UNetConfig,
    consistency_distill,
    gaussian_mixture,
    heun_sample,
    karras_sigmas,
    load,
    sample,
    save,
    train_denoiser,
)
from studies.diffusion.denoisers import RandomFeatureConfig


class GaussianDenoiser(EDMDenoiser):
    """The exact denoiser of N(0, s^2 I): D(x, sigma) = s^2 / (s^2 + sigma^2) x."""

    def __init__(self, s: float, dim: int):
        super().__init__(torch.nn.Identity(), DenoiserConfig(), (dim,), s)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).expand(x.shape[0])[:, None]
        return self.sigma_data**2 / (self.sigma_data**2 + sigma**2) * x


@pytest.fixture(scope="module")
def small_teacher():
    data = gaussian_mixture(32, 4, seed=0)
    return data, train_denoiser(data, DenoiserConfig(width=32, depth=2), steps=200, lr=1e-3, seed=0)


def test_karras_schedule_runs_from_sigma_max_down_to_sigma_min():
    s = karras_sigmas(18)
    assert s.shape == (18,) and s[0] == pytest.approx(80.0) and s[-1] == pytest.approx(0.002)
    assert bool((s[1:] < s[:-1]).all())


def test_heun_sampler_converges_to_the_exact_flow_of_a_gaussian():
    # for N(0, s^2) the PF-ODE is linear: x(0) = x(sigma_max) s / sqrt(s^2 + sigma_max^2)
    z = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = z * 80.0 * 1.5 / math.sqrt(1.5**2 + 80.0**2)
    model = GaussianDenoiser(1.5, 3)
    err = {
        n: ((heun_sample(model, z * 80.0, karras_sigmas(n).double()) - exact).abs().max() / exact.abs().max()).item()
        for n in (18, 100)
    }
    assert err[18] < 0.05 and err[100] < 0.002 and err[100] < err[18] / 10  # second order: 5.5x steps, ~30x less error


def test_consistency_student_is_the_identity_at_sigma_min(small_teacher):
    data, teacher = small_teacher
    student = consistency_distill(teacher, data, steps=3, lr=1e-4, seed=0)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(student(x, torch.tensor(0.002)), x)
    assert isinstance(student, ConsistencyModel) and len(student.history) == 1


def test_training_and_sampling_are_deterministic_given_the_seed(small_teacher):
    data, teacher = small_teacher
    again = train_denoiser(data, DenoiserConfig(width=32, depth=2), steps=200, lr=1e-3, seed=0)
    for a, b in zip(teacher.parameters(), again.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(sample(teacher, 10, seed=3), sample(again, 10, seed=3))
    assert not torch.equal(sample(teacher, 10, seed=3), sample(teacher, 10, seed=4))


def test_save_and_load_round_trip_teacher_and_student(small_teacher, tmp_path):
    data, teacher = small_teacher
    student = consistency_distill(teacher, data, steps=2, lr=1e-4, seed=0)
    for model, name in ((teacher, "teacher"), (student, "student")):
        path = save(model, tmp_path / f"{name}.safetensors")
        back = load(path)
        assert type(back) is type(model) and back.sigma_data == model.sigma_data and back.config == model.config
        assert torch.equal(sample(back, 8, seed=0, steps=2), sample(model, 8, seed=0, steps=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.safetensors", "teacher.safetensors"]  # no temp files
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a grokscope diffusion checkpoint"):
        load(tmp_path / "bad.safetensors")


def test_unet_trains_distils_and_samples_images():
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    teacher = train_denoiser(images, UNetConfig(channels=8, channel_mult=(1, 2)), steps=3, lr=1e-3, seed=0)
    student = consistency_distill(teacher, images, steps=2, lr=1e-4, seed=0, batch_size=12)
    assert sample(teacher, 4, seed=0, steps=4).shape == (4, 1, 8, 8)
    assert sample(student, 4, seed=0, steps=2).shape == (4, 1, 8, 8)
    assert torch.isfinite(sample(student, 4, seed=0)).all()


def test_sklearn_digits_are_images_in_minus_one_to_one():
    pytest.importorskip("sklearn")
    from studies.diffusion import digits

    x = digits(100, seed=0)
    assert x.shape == (100, 1, 8, 8) and x.min() >= -1 and x.max() <= 1


def test_random_feature_denoiser_trains_only_its_readout():
    data = gaussian_mixture(16, 4, seed=0)
    model = train_denoiser(data, RandomFeatureConfig(p=32), steps=5, lr=1e-2, seed=0)
    assert [name for name, _ in model.named_parameters()] == ["net.A"]


def test_training_data_with_nans_is_refused():
    data = gaussian_mixture(16, 4, seed=0)
    data[3, 0] = math.nan
    with pytest.raises(SpecError, match="NaN.*first rows \\[3\\]"):
        train_denoiser(data, DenoiserConfig(), steps=1, lr=1e-3, seed=0)


def test_fewer_than_two_points_are_refused():
    with pytest.raises(ShapeError, match="1 point"):
        train_denoiser(np.zeros((1, 4)), DenoiserConfig(), steps=1, lr=1e-3, seed=0)


def test_mismatched_shapes_are_refused(small_teacher):
    data, teacher = small_teacher
    with pytest.raises(ShapeError, match="teacher was trained on \\(4,\\)"):
        consistency_distill(teacher, np.zeros((10, 5)), steps=1, lr=1e-4, seed=0)
    with pytest.raises(ShapeError, match="Use UNetConfig"):
        train_denoiser(np.zeros((10, 1, 8, 8)), DenoiserConfig(), steps=1, lr=1e-3, seed=0)
    with pytest.raises(ShapeError, match="divisible by 2"):
        train_denoiser(np.zeros((10, 1, 7, 7)), UNetConfig(), steps=1, lr=1e-3, seed=0)


def test_impossible_settings_are_refused(small_teacher):
    data, teacher = small_teacher
    with pytest.raises(SpecError, match="DenoiserConfig.width=0"):
        DenoiserConfig(width=0)
    with pytest.raises(SpecError, match="sigma_data"):
        DenoiserConfig(sigma_data=-1.0)
    with pytest.raises(SpecError, match="lr"):
        train_denoiser(data, DenoiserConfig(), steps=1, lr=0.0, seed=0)
    with pytest.raises(SpecError, match="ema"):
        consistency_distill(teacher, data, steps=1, lr=1e-4, seed=0, ema=1.0)
    with pytest.raises(SpecError, match="teacher"):
        consistency_distill(
            consistency_distill(teacher, data, steps=1, lr=1e-4, seed=0), data, steps=1, lr=1e-4, seed=0
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        train_denoiser(gaussian_mixture(8, 2), DenoiserConfig(), steps=1, lr=1e-3, seed=0, device="cuda")
