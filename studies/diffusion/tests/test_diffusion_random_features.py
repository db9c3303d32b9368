"""Bonnaire et al.'s random-feature score model (docs/papers.md, B.4): two bulks, tau_mem growing with n, and the
distillation projection."""

from __future__ import annotations

import math

import pytest
import torch

from studies.diffusion.random_features import (
    diffuse,
    feature_spectrum,
    noise_variance,
    rf_features,
    rf_timescales,
    rf_weights,
)
from studies.diffusion.rf_distillation import bulk_projection, rf_distillation

pytestmark = pytest.mark.slow  # trains for tens of seconds (or starts Ray clusters): the slow suite


@pytest.fixture(scope="module")
def timescales():
    return rf_timescales([25, 50, 100], d=50, p=200, steps=4000, seed=0)


def test_tau_mem_grows_with_n_while_tau_gen_does_not(timescales):
    tau_mem, tau_gen = timescales.tau_mem, timescales.tau_gen
    assert tau_mem[0] < tau_mem[1] < tau_mem[2] < math.inf
    assert tau_mem[2] / tau_mem[0] > 2.5  # measured: 3.3k, 4.3k, 13.6k
    assert max(tau_gen) / min(tau_gen) < 2.0  # measured: 0.78k, 0.58k, 0.78k
    assert max(tau_gen) < min(tau_mem)


def test_memorising_model_fits_training_points_better_than_fresh_ones(timescales):
    run = timescales.runs[0]  # n = 25, trained far past tau_mem
    assert run.train_loss[-1] < 0.9 < 1.5 < run.test_loss[-1]
    assert min(run.score_error) < run.score_error[0] < run.score_error[-1]  # generalises, then memorises


def test_gradient_step_is_the_gradient_of_the_stated_loss():
    gen = torch.Generator().manual_seed(0)
    W, x = rf_weights(6, 12, seed=0), torch.randn(5, 6, generator=gen)
    A = torch.randn(6, 12, generator=gen).requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    xt, xi = diffuse(x, 0.01, g)
    delta = noise_variance(0.01)
    loss = ((math.sqrt(delta) * rf_features(xt, W) @ A.T + xi) ** 2).sum() / (6 * 5)
    loss.backward()
    phi = rf_features(xt, W)
    manual = (2 * math.sqrt(delta) / (6 * 5)) * (math.sqrt(delta) * phi @ A.detach().T + xi).T @ phi
    assert torch.allclose(A.grad, manual, atol=1e-6)


def test_feature_covariance_has_a_small_bulk_only_when_n_is_below_p():
    W = rf_weights(50, 200, seed=0)
    g = torch.Generator().manual_seed(0)
    below = feature_spectrum(torch.randn(50, 50, generator=g), W, n_noise=50)
    assert below.split == 50 and below.small_bulk is not None
    # the small bulk is of order Delta = 0.02; gap ratio 2.0-5.9 and edges 0.026-0.029 / 0.052-0.16 over data seeds 0-4
    assert below.gap_ratio > 1.5 and below.small_bulk[1] < 0.04 < below.large_bulk[0]
    above = feature_spectrum(torch.randn(300, 50, generator=g), rf_weights(50, 100, seed=0), n_noise=10)
    assert above.small_bulk is None and above.split == 100


def test_bulk_projection_matches_projection_matrices():
    W = rf_weights(8, 20, seed=0)
    gen = torch.Generator().manual_seed(0)
    spectrum = feature_spectrum(torch.randn(10, 8, generator=gen), W, n_noise=20)
    A, B = torch.randn(8, 20, generator=gen), torch.randn(8, 20, generator=gen)
    V = spectrum.eigenvectors
    P_small = V[:, 10:] @ V[:, 10:].T  # [p, p]
    res = bulk_projection(A, B, spectrum)
    assert res.teacher_small == pytest.approx(float((A @ P_small).norm()), rel=1e-4)
    assert res.kept_small == pytest.approx(float((B @ P_small).norm() / (A @ P_small).norm()), rel=1e-4)
    total = float((B - A).norm()) ** 2
    assert res.change_share_small == pytest.approx(float(((B - A) @ P_small).norm()) ** 2 / total, rel=1e-4)


@pytest.fixture(scope="module")
def distillation():
    return rf_distillation(d=50, p=200, n=50, teacher_steps=6000, distill_steps=2000, seed=0)


def test_teacher_is_trained_past_tau_mem_and_its_readout_lives_in_the_small_bulk(distillation):
    assert distillation.teacher.tau[-1] > 10 * distillation.teacher.tau_mem
    p = distillation.projection
    assert p.teacher_small > 5 * p.teacher_large


def test_distillation_shrinks_the_small_bulk_component(distillation):
    p = distillation.projection
    assert p.kept_small < 0.97  # measured 0.91 (seeds 0, 1)
    assert p.change_share_small > 0.5  # most of the change is in the small bulk (measured 0.65-0.69)


def test_the_papers_prediction_is_not_reproduced_by_this_proxy_the_large_bulk_is_damped_more(distillation):
    """Paper B predicts that distillation keeps the large-eigenvalue (generalising) bulk and damps the
    small one. With the two-time consistency loss of `rf_distillation` it is the other way round: the
    student keeps ~0.9 of the teacher's small-bulk component and ~0.45 of its large-bulk one (seeds 0, 1).
    This test pins the measured direction, so a change of construction that reproduces the paper shows
    up here."""
    p = distillation.projection
    assert p.kept_large < p.kept_small and not p.small_bulk_damped_more
