import json

import pytest
import torch
from circuit_models import coexisting_relu_mlp, noisy_mlp, zhong_transformer
from scipy.stats import spearmanr

from circuits.partition import neuron_scores, partition
from interp.errors import SpecError
from interp.models import MLPConfig, TransformerConfig, build_model


def test_strength_score_is_w_inf_times_act_of_u_inf_plus_v_inf():
    model = build_model(MLPConfig(p=13, width=32, act="relu"), seed=2)
    u_inf = model.U.detach().abs().max(dim=1).values
    v_inf = model.V.detach().abs().max(dim=1).values
    w_inf = model.W.detach().abs().max(dim=0).values
    torch.testing.assert_close(neuron_scores(model, kind="strength").values, w_inf * torch.relu(u_inf + v_inf))
    quad = build_model(MLPConfig(p=13, width=32, act="quad"), seed=2)
    torch.testing.assert_close(neuron_scores(quad, kind="strength").values, w_inf * (u_inf + v_inf) ** 2)


def test_task_agnostic_coherence_ranks_neurons_like_the_fourier_ipr():
    model, task = noisy_mlp()
    ipr = neuron_scores(model, task, kind="ipr")
    coherence = neuron_scores(model, task, kind="coherence")
    assert ipr.task_specific and not coherence.task_specific
    assert coherence.values.shape == (model.n_neurons,) and (coherence.values.abs() <= 1).all()
    assert spearmanr(coherence.values.numpy(), ipr.values.numpy()).correlation > 0.5
    assert len(json.loads(json.dumps(coherence.to_dict()))["values"]) == model.n_neurons


# Measured once on this setting and five variants (ReLU MLP, width 128-256, (a + b) mod 31, 70% of the
# table, 20-30% noise, CE, AdamW lr 1e-2, weight decay 2, 1000-1500 steps; gamma_g = 0.7, mean
# ablation): raw test accuracy 0.08-0.28 with every noisy label memorised; the coherence sub-network G
# 0.11-0.34 (above raw in 5 of 5); frequency filtration 0.94-1.00. "strength" (0.07-0.15) and
# "spread" stay below raw at this scale (spread ranks neurons like IPR with Spearman 0.65 only); the
# task-specific "ipr" reaches 0.6.
def test_task_agnostic_generalisation_subnetwork_beats_the_raw_network_but_not_frequency_filtration():
    model, task = coexisting_relu_mlp()
    res = partition(model, task, scores="coherence", gamma_g=0.7, gamma_r=0.3, kind="mean")
    raw, g, r = res.metrics["raw"], res.metrics["g"], res.metrics["r"]
    assert raw["train_noisy_acc"] > 0.95 and raw["test_acc"] < 0.5  # memorised noise suppresses the rule
    assert g["test_acc"] > raw["test_acc"] + 0.05  # the task-agnostic G generalises better than the raw net
    assert res.filtration is not None
    assert res.filtration["g"]["test_acc"] > g["test_acc"] + 0.3  # ... but frequency filtration does far better
    assert r["test_acc"] < raw["test_acc"]  # the bottom neurons hold less of the rule
    assert len(res.g_neurons) == round(0.7 * model.n_neurons) and len(res.r_neurons) == round(0.3 * model.n_neurons)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["score_name"] == "coherence" and set(d["metrics"]) == {"raw", "g", "r"}


def test_scores_and_partition_work_on_the_transformer():
    model, task = zhong_transformer(1.0)
    for kind in ("strength", "coherence", "spread", "ipr"):
        s = neuron_scores(model, task, kind=kind)
        assert s.values.shape == (model.n_neurons,) and torch.isfinite(s.values).all(), kind
    res = partition(model, task, scores="strength", gamma_g=0.5, gamma_r=0.5, kind="zero", filtration=False)
    assert res.filtration is None and res.metrics["raw"]["test_acc"] > 0.9


def test_bad_partition_requests_raise_clear_errors():
    model = build_model(TransformerConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=16), seed=0)
    with pytest.raises(SpecError, match="kind"):
        neuron_scores(model, kind="magic")
    with pytest.raises(SpecError, match="task"):
        neuron_scores(model, kind="coherence")
    model, task = noisy_mlp()
    with pytest.raises(SpecError, match="gamma_g"):
        partition(model, task, scores="strength", gamma_g=1.5)
    with pytest.raises(SpecError, match="one score per neuron"):
        partition(model, task, scores=torch.zeros(3))
