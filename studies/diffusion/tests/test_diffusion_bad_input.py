"""The diffusion study refuses bad values with a SpecError naming the function, the argument and what it
expects: empty, negative, non-finite or ascending noise levels, non-finite mixture parameters, training
that would train nothing, seeds and counts of the wrong type. Nothing returns NaN or an untrained model."""

from __future__ import annotations

import math

import pytest
import torch

import studies.diffusion as D
from interp.errors import SpecError

NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def models():
    data = D.gaussian_mixture(16, d=4, seed=0)
    teacher = D.train_denoiser(data, D.DenoiserConfig(), steps=2, lr=1e-3, seed=0)
    student = D.consistency_distill(teacher, data, steps=2, lr=1e-4, seed=0)
    return data, teacher, student


@pytest.mark.parametrize(
    "sigmas,needle",
    [
        ([], "non-empty 1-D list"),
        ([[80.0, 1.0]], "non-empty 1-D list"),
        (torch.tensor(3.0), "non-empty 1-D list"),
        ([-1.0], "finite noise levels > 0"),
        ([80.0, -0.5], "finite noise levels > 0"),
        ([80.0, 0.0], "finite noise levels > 0"),
        ([NAN], "finite noise levels > 0"),
        ([INF, 1.0], "finite noise levels > 0"),
        ([1.0, 2.0], "strictly descending"),
        ([2.0, 2.0], "strictly descending"),
        ("x", "a list or 1-D tensor"),
    ],
)
@pytest.mark.parametrize("which", ["teacher", "student"])
def test_sample_refuses_noise_levels_it_cannot_integrate(models, sigmas, needle, which):
    _, teacher, student = models
    with pytest.raises(SpecError, match=rf"sample\.sigmas=.*{needle}"):
        D.sample(teacher if which == "teacher" else student, 4, seed=0, sigmas=sigmas)


def test_sample_with_valid_levels_is_finite(models):
    _, teacher, student = models
    for model in (teacher, student):
        assert torch.isfinite(D.sample(model, 4, seed=0, sigmas=[80.0, 2.5, 0.1])).all()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"mean": NAN}, "mean"),
        ({"mean": INF}, "mean"),
        ({"mean": "1"}, "mean"),
        ({"std": INF}, "std"),
        ({"std": 0.0}, "std"),
        ({"std": None}, "std"),
        ({"seed": 1.5}, "seed"),
        ({"seed": -1}, "seed"),
        ({"seed": None}, "seed"),
    ],
)
def test_gaussian_mixture_refuses_non_finite_or_mistyped_parameters(kwargs, field):
    with pytest.raises(SpecError, match=rf"gaussian_mixture\.{field}="):
        D.gaussian_mixture(8, 4, **kwargs)


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda d, t: D.train_denoiser(d, D.DenoiserConfig(), steps=0, lr=1e-3, seed=0), "steps"),
        (lambda d, t: D.train_denoiser(d, D.DenoiserConfig(), steps=2, lr=NAN, seed=0), "lr"),
        (lambda d, t: D.train_denoiser(d, D.DenoiserConfig(), steps=2, lr=1e-3, seed=0.5), "seed"),
        (lambda d, t: D.train_denoiser(d, D.DenoiserConfig(), steps=2, lr=1e-3, seed=0, batch_size=0), "batch_size"),
        (
            lambda d, t: D.train_denoiser(d, D.DenoiserConfig(), steps=2, lr=1e-3, seed=0, snapshot_steps=[None]),
            "snapshot_steps",
        ),
        (lambda d, t: D.continue_training(t, d, steps=0, lr=1e-3, seed=0), "steps"),
        (lambda d, t: D.consistency_distill(t, d, steps=0, lr=1e-4, seed=0), "steps"),
        (lambda d, t: D.consistency_distill(t, d, steps=2, lr=1e-4, seed=0, ema="0.9"), "ema"),
        (lambda d, t: D.consistency_distill(t, d, steps=2, lr=1e-4, seed=None), "seed"),
        (lambda d, t: D.karras_sigmas(0), "n"),
        (lambda d, t: D.karras_sigmas(4, sigma_min=-1.0), "sigma_min"),
        (lambda d, t: D.karras_sigmas(4, sigma_max=INF), "sigma_max"),
        (lambda d, t: D.karras_sigmas(4, sigma_min=2.0, sigma_max=1.0), "sigma_max"),
        (lambda d, t: D.karras_sigmas(4, rho=0.0), "rho"),
        (lambda d, t: D.sample(t, 4, seed=INF), "seed"),
        (lambda d, t: D.sample(t, 4, seed=0, steps=True), "steps"),
        (lambda d, t: D.train_rf_score(d, D.random_features.rf_weights(4, 8), steps=0), "steps"),
        (lambda d, t: D.train_rf_score(d, D.random_features.rf_weights(4, 8), steps=2, t=NAN), "t"),
        (lambda d, t: D.feature_spectrum(d, D.random_features.rf_weights(4, 8), n_noise=0), "n_noise"),
        (lambda d, t: D.rf_timescales([], d=4, p=8, steps=2), "ns"),
        (lambda d, t: D.rf_distillation(d=4, p=8, n=8, teacher_steps=2, distill_steps=2, ema=1.0), "ema"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_training_and_schedules_refuse_values_that_train_nothing_or_break(models, call, field):
    data, teacher, _ = models
    with pytest.raises(SpecError, match=rf"\.{field}="):
        call(data, teacher)
