"""Frequency filtration (the coexistence paper): under heavy label noise the dominant-frequency
network G recovers the rule that the raw network no longer shows, and the residual R holds the
memorised noise."""

from __future__ import annotations

import json

import pytest
import torch

from circuits.filtration import frequency_filtration
from interp import Task, TaskSpec, evaluate
from interp.errors import SpecError
from interp.models import MLP, MLPConfig, build_model
from interp.train import TrainConfig, train
from probes.basis import project_frequencies
from probes.fourier import dominant_frequencies, fourier_basis, ipr
from probes.gromov import gromov_mlp


@pytest.fixture(scope="module")
def noisy_relu():
    """The coexistence paper's setting at CPU size: ReLU MLP, cross-entropy, full-batch AdamW,
    40% of the training labels moved to a wrong class ("other"). Over seeds 0-3 this gives raw test
    accuracy <= 0.02, G >= 0.99 and R <= 0.013."""
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.7, label_noise=0.4, noise_kind="other", seed=0))
    res = train(
        MLPConfig(p=23, width=512, act="relu"),
        task,
        TrainConfig(steps=1000, lr=3e-3, weight_decay=1.0, eval_every=1000, device="cpu"),
    )
    return res.model, task


@pytest.fixture(scope="module")
def filtered(noisy_relu):
    model, task = noisy_relu
    return frequency_filtration(model, task)


def test_frequency_filtration_recovers_rule_under_label_noise(filtered):
    raw, g, r = filtered.metrics["raw"], filtered.metrics["g"], filtered.metrics["r"]
    chance = 1 / 23
    # the raw network memorised the noise and lost the rule on unseen pairs
    assert raw["train_noisy_acc"] > 0.95 and raw["train_clean_acc"] > 0.95
    assert raw["test_acc"] < 0.2
    # G: the rule, on test pairs and on the noisy training pairs against their true labels
    assert g["test_acc"] >= 0.95
    assert g["train_clean_acc"] >= 0.95 and g["train_noisy_true_acc"] >= 0.9
    assert g["train_noisy_acc"] < 0.1
    # R: near chance on the rule, but it holds much of the memorised noise
    assert r["test_acc"] < 2.5 * chance
    assert r["train_noisy_acc"] > 0.5


def test_filtration_returns_real_networks_that_sum_to_the_original(noisy_relu, filtered):
    model, task = noisy_relu
    g, r = filtered.g_model, filtered.r_model
    assert isinstance(g, MLP) and isinstance(r, MLP) and g.cfg == model.cfg == r.cfg
    for name in ("U", "V", "W"):
        assert torch.allclose(getattr(g, name) + getattr(r, name), getattr(model, name), atol=1e-5)
    # each neuron of G is a single Fourier mode in u, v and w
    g_vecs = torch.cat([g.neuron_in_weights(), g.neuron_out_weights()[:, None]], dim=1).detach()
    assert float(ipr(g_vecs).min()) > 0.999
    assert filtered.dominant_freq == dominant_frequencies(model).tolist()
    assert filtered.metrics["g"] == evaluate(g, task)
    d = filtered.to_dict()
    json.dumps(d)
    assert "g_model" not in d and d["metrics"]["g"]["test_acc"] == filtered.metrics["g"]["test_acc"]


def test_batched_filtration_matches_a_per_neuron_projection_on_the_basis(noisy_relu, filtered):
    model, _ = noisy_relu
    basis = fourier_basis(23, dtype=torch.float64)
    dom = dominant_frequencies(model)
    for m in (0, 17, 511):
        rows = basis[[2 * int(dom[m]) - 1, 2 * int(dom[m])]]  # cos_k, sin_k
        u = model.U[m].detach().double()
        assert torch.allclose(filtered.g_model.U[m].double(), rows.T @ (rows @ u), atol=1e-5)


def test_gromov_network_is_all_generalisation_and_no_residual():
    model = gromov_mlp(23, 128, seed=2)
    res = frequency_filtration(model, Task(TaskSpec(op="x+y", p=23, frac_train=0.5)))
    assert torch.allclose(res.g_model.U, model.U, atol=1e-5) and torch.allclose(res.g_model.W, model.W, atol=1e-5)
    assert float(res.r_model.U.detach().abs().max()) < 1e-5
    assert res.metrics["g"]["test_acc"] == 1.0 and res.g_weight_fraction == pytest.approx(1.0, abs=1e-6)


def test_output_bias_stays_with_g_and_learned_embeddings_are_refused():
    model = build_model(MLPConfig(p=23, width=32, bias=True), seed=0)
    with torch.no_grad():
        model.b_out.fill_(0.5)
    res = frequency_filtration(model, Task(TaskSpec(op="x+y", p=23, frac_train=0.5)))
    assert float(res.g_model.b_out[0].detach()) == 0.5 and float(res.r_model.b_out.detach().abs().max()) == 0.0
    learned = build_model(MLPConfig(p=23, width=32, embed="learned", d_embed=8), seed=0)
    with pytest.raises(SpecError, match="onehot"):
        frequency_filtration(learned, Task(TaskSpec(op="x+y", p=23, frac_train=0.5)))


def test_project_frequencies_is_an_orthogonal_projection():
    x = torch.randn(5, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    keep = torch.zeros(12, dtype=torch.bool)
    keep[[0, 4, 9]] = True
    y = project_frequencies(x, keep)
    assert torch.allclose(project_frequencies(y, keep), y)  # idempotent
    assert float(((x - y) * y).sum(-1).abs().max()) < 1e-10  # residual orthogonal to the kept span


def test_transformer_neuron_filtration_keeps_the_rule_in_key_frequency_activations():
    from interp import zoo
    from probes.fourier import neuron_activation_grid

    ckpt = zoo.load("grok-transformer")  # a transformer that grokked (a + b) mod p
    model, task = ckpt.model, ckpt.task
    res = frequency_filtration(model, task, parts=("neurons",))
    assert res.metrics["raw"]["test_acc"] > 0.99
    assert res.metrics["g"]["test_acc"] > 0.95  # the key-frequency part of the activations carries the rule
    assert res.metrics["r"]["test_acc"] < 0.2  # the residual activations do not
    assert 0.5 < res.g_weight_fraction <= 1.0
    # G's neurons really are the projected table, on any batch of pairs, through the hook point.
    pairs = task.inputs[task.test_idx[:64]]
    grid_g = neuron_activation_grid(res.g_model)
    _, cache = res.g_model.run_with_cache(res.g_model.pair_tokens(pairs))
    seen = cache[model.neuron_hook][:, -1]
    assert torch.allclose(seen, grid_g[pairs[:, 0], pairs[:, 1]], atol=1e-5)
    # The original network is untouched, and G + R activations add up to it.
    grid, grid_r = neuron_activation_grid(model), neuron_activation_grid(res.r_model)
    assert torch.allclose(grid_g + grid_r, grid, atol=1e-4)
    assert not torch.allclose(grid_g, grid, atol=1e-3)


def test_embedding_filtration_of_a_second_operand_vocabulary_filters_both_tables():
    """A diff_vocab twin of the grokked transformer (b's table a copy of a's, '=' moved to the end)
    computes the same function; filtering its embedding must filter b's table too and give the twin's
    G and R exactly the original's, which it cannot if W_E[p:2p] is left unfiltered."""
    from dataclasses import replace

    from interp import zoo

    ckpt = zoo.load("grok-transformer")
    model, task, p = ckpt.model, ckpt.task, ckpt.model.p
    twin = build_model(replace(model.cfg, diff_vocab=True), seed=0)
    state = dict(model.state_dict())
    W_E = state["embed.W_E"]  # [p + 1, d_model]: residues, then '='
    state["embed.W_E"] = torch.cat([W_E[:p], W_E[:p], W_E[p:]])
    twin.load_state_dict(state)
    pairs = task.inputs
    torch.testing.assert_close(twin.pair_logits(pairs), model.pair_logits(pairs), atol=1e-5, rtol=1e-5)

    parts = ("embed", "unembed")
    res, twin_res = frequency_filtration(model, task, parts=parts), frequency_filtration(twin, task, parts=parts)
    assert twin_res.kept_frequencies == res.kept_frequencies
    for part in ("g_model", "r_model"):
        one, two = getattr(res, part).embed.W_E, getattr(twin_res, part).embed.W_E
        torch.testing.assert_close(two, torch.cat([one[:p], one[:p], one[p:]]))
        torch.testing.assert_close(
            getattr(twin_res, part).pair_logits(pairs), getattr(res, part).pair_logits(pairs), atol=1e-4, rtol=1e-4
        )
    for name, measured in res.metrics.items():  # accuracies equal, losses to float precision; no noisy subset: NaN
        assert twin_res.metrics[name] == pytest.approx(measured, rel=1e-4, abs=1e-6, nan_ok=True), name
    g = twin_res.g_model  # the fraction of the filtered matrices' squared norm that G keeps: b's table counts too
    kept = float((g.unembed.W_U**2).sum().detach() + (g.embed.W_E[: 2 * p] ** 2).sum().detach())
    total = float((twin.unembed.W_U**2).sum().detach() + (twin.embed.W_E[: 2 * p] ** 2).sum().detach())
    assert twin_res.g_weight_fraction == pytest.approx(kept / total, rel=1e-5)
    assert "both operand tables" in twin_res.method
