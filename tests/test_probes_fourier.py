"""Fourier probes: the real basis, spectra and IPR, Gromov's analytic network, and the periodic /
memorising split of neurons on networks trained in the test."""

from __future__ import annotations

import json
import math

import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.errors import DeviceError, ShapeError, SpecError
from interp.models import MLPConfig, TransformerConfig, build_model
from interp.train import TrainConfig, train
from probes.fourier import (
    basis_frequencies,
    basis_labels,
    classify_neurons,
    dominant_frequencies,
    fourier_basis,
    frequency_power,
    frequency_profile,
    grid_cell_power,
    ipr,
    key_frequencies,
    neuron_activation_grid,
    neuron_ipr,
    neuron_spectra,
    random_ipr,
)
from probes.gromov import gromov_mlp, phase_fit


@pytest.fixture(scope="module")
def doshi_noisy_quad():
    """Doshi et al.'s setting at CPU size: quadratic MLP, MSE, AdamW lr 1e-2, weight decay 3,
    30% of the labels replaced by uniform labels ("all"). It fits every noisy label, and its
    neurons split into periodic and memorising ones."""
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.7, label_noise=0.3, noise_kind="all", seed=0))
    res = train(
        MLPConfig(p=23, width=256, act="quad"),
        task,
        TrainConfig(steps=1000, lr=1e-2, weight_decay=3.0, loss="mse", eval_every=1000, device="cpu"),
    )
    return res.model, task


# ----- basis and spectra ------------------------------------------------------------------------
@pytest.mark.parametrize("p", [23, 24])
def test_fourier_basis_is_orthonormal_with_documented_row_order(p):
    basis = fourier_basis(p, dtype=torch.float64)
    assert torch.allclose(basis @ basis.T, torch.eye(p, dtype=torch.float64), atol=1e-10)
    x = torch.arange(p, dtype=torch.float64)
    assert torch.allclose(basis[0], torch.full((p,), p**-0.5, dtype=torch.float64))
    cos3 = torch.cos(2 * math.pi * 3 * x / p)
    sin3 = torch.sin(2 * math.pi * 3 * x / p)
    assert torch.allclose(basis[5], cos3 / cos3.norm()) and torch.allclose(basis[6], sin3 / sin3.norm())
    assert basis_frequencies(p).tolist()[:7] == [0, 1, 1, 2, 2, 3, 3]
    assert basis_labels(p)[5:7] == ["cos 3", "sin 3"]
    assert len(basis_labels(p)) == p


def test_frequency_power_is_the_squared_projection_on_each_frequency():
    p = 23
    x = torch.randn(7, p, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    coef = x @ fourier_basis(p, dtype=torch.float64).T  # [7, p]
    by_freq = torch.zeros(7, p // 2 + 1, dtype=torch.float64).index_add_(1, basis_frequencies(p), coef**2)
    assert torch.allclose(frequency_power(x), by_freq, atol=1e-10)
    assert torch.allclose(frequency_power(x).sum(-1), (x**2).sum(-1))


def test_ipr_is_one_for_a_pure_mode_and_near_the_random_baseline_for_noise():
    p = 97
    x = torch.arange(p, dtype=torch.float64)
    assert float(ipr(torch.cos(2 * math.pi * 7 * x / p + 0.3))) == pytest.approx(1.0, abs=1e-9)
    noise = torch.randn(4000, p, generator=torch.Generator().manual_seed(0))
    assert float(ipr(noise).mean()) == pytest.approx(random_ipr(p), rel=0.05)
    assert random_ipr(97) == pytest.approx(0.04, abs=0.005)  # Doshi et al.: ~0.04 at p = 97


def test_transformer_2d_spectrum_matches_the_explicit_basis_projection():
    model = build_model(TransformerConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=12), seed=3)
    acts = neuron_activation_grid(model)  # [p, p, n]
    assert acts.shape == (13, 13, 12)
    cell = grid_cell_power(acts)  # [n, F, F] via fft2
    basis = fourier_basis(13, dtype=torch.float64)
    freq = basis_frequencies(13)
    for m in (0, 5, 11):
        a = acts[:, :, m].double()
        coef = basis @ (a - a.mean()) @ basis.T
        expect = torch.zeros(7, 7, dtype=torch.float64)
        for i in range(13):
            for j in range(13):
                expect[freq[i], freq[j]] += coef[i, j] ** 2
        assert torch.allclose(cell[m].double(), expect, rtol=1e-4, atol=1e-6)
    assert torch.allclose(frequency_profile(cell).sum(1), cell.sum((1, 2)), rtol=1e-5)  # profile keeps all power
    share = neuron_spectra(model).power  # Nanda's 3x3-block shares: cross-frequency cells belong to none
    assert bool((share.sum(1) <= 1 + 1e-4).all())


# ----- Gromov's analytic network --------------------------------------------------------------
@pytest.mark.parametrize("op", ["x+y", "x-y"])
def test_gromov_analytic_mlp_is_perfect_and_every_neuron_has_ipr_one(op):
    p, width = 23, 128
    model = gromov_mlp(p, width, seed=1, op=op)
    task = Task(TaskSpec(op=op, p=p, frac_train=0.5))
    assert evaluate(model, task)["test_acc"] == 1.0
    assert torch.allclose(neuron_ipr(model), torch.ones(width), atol=1e-5)
    assert dominant_frequencies(model).tolist() == [1 + m % 11 for m in range(width)]
    fit = phase_fit(model, task)
    assert fit.relation == ("phi_a + phi_b = phi_c" if op == "x+y" else "phi_a - phi_b = phi_c")
    assert fit.mean_error < 1e-5
    cls = classify_neurons(model, task)
    assert cls.n_periodic == width and not cls.bimodal  # all periodic: not cut in two


def test_phase_relation_error_of_random_weights_is_far_from_the_analytic_solution():
    fit = phase_fit(build_model(MLPConfig(p=23, width=256, act="quad"), seed=0))
    assert fit.mean_error > 1.2  # uniform phases: E|error| = pi / 2


# ----- neuron classes ---------------------------------------------------------------------------
def test_ipr_of_memorising_and_generalising_quadratic_mlp_is_bimodal_and_split(doshi_noisy_quad):
    model, task = doshi_noisy_quad
    m = evaluate(model, task)
    assert m["train_noisy_acc"] > 0.95 and m["train_clean_acc"] > 0.95  # it memorised the noise
    cls = classify_neurons(model, task)
    assert cls.bimodal and cls.delta_bic > 10 and cls.bimodality > 2
    assert cls.rule.startswith("Otsu")
    assert 0.1 < cls.frac_periodic < 0.9  # two real populations
    periodic, rest = cls.ipr[cls.periodic], cls.ipr[~cls.periodic]
    assert periodic.min() >= cls.threshold > rest.max()
    assert float(periodic.median()) > 2 * float(rest.median())
    assert cls.ipr_random < cls.threshold < 1.0
    # the memorising population sits near untrained weights, the periodic one far above
    assert float(rest.median()) < 2 * cls.ipr_random
    json.dumps(cls.to_dict())


def test_untrained_networks_are_not_split_into_periodic_and_memorising():
    for model in (
        build_model(MLPConfig(p=23, width=256, act="quad"), seed=0),
        build_model(TransformerConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=128), seed=0),
    ):
        cls = classify_neurons(model)
        assert not cls.rule.startswith("Otsu")
        assert cls.frac_periodic < 0.05


def test_key_frequencies_rules_and_errors():
    model = gromov_mlp(23, 44, seed=0)
    with torch.no_grad():
        keep = (torch.arange(44) % 11) + 1
        model.U[keep > 3] = 0  # only frequencies 1, 2, 3 left in the embedding
        model.V[keep > 3] = 0
    assert sorted(key_frequencies(model)) == [1, 2, 3]
    assert len(key_frequencies(model, k=2)) == 2
    with pytest.raises(SpecError, match="rule"):
        key_frequencies(model, rule="nope")
    with pytest.raises(ShapeError, match="p=23"):
        classify_neurons(model, Task(TaskSpec(op="x+y", p=29)))
    with pytest.raises(SpecError):
        fourier_basis(1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="compares CUDA with the CPU: needs a GPU")
def test_probes_on_cuda_give_the_cpu_values_and_leave_the_model_where_it_was():
    mlp = gromov_mlp(23, 32)
    on_gpu, on_cpu = neuron_spectra(mlp, device="cuda"), neuron_spectra(mlp, device="cpu")
    assert torch.equal(on_gpu.dominant_freq, on_cpu.dominant_freq)
    torch.testing.assert_close(on_gpu.ipr, on_cpu.ipr, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(on_gpu.power, on_cpu.power, rtol=1e-4, atol=1e-6)
    transformer = build_model(TransformerConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=16), seed=0)
    grid_gpu = neuron_activation_grid(transformer, device="cuda")
    assert grid_gpu.device.type == "cuda"
    torch.testing.assert_close(grid_gpu.cpu(), neuron_activation_grid(transformer, device="cpu"), rtol=1e-4, atol=1e-5)
    assert {p.device.type for p in [*mlp.parameters(), *transformer.parameters()]} == {"cpu"}  # copies moved


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_probes_refuse_cuda_on_a_machine_without_a_gpu_and_say_what_to_use():
    with pytest.raises(DeviceError, match="device='cuda'.*Use device='cpu'"):
        neuron_spectra(gromov_mlp(23, 32), device="cuda")
