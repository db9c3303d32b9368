"""Probes on a transformer that groks modular addition inside the test: key frequencies, Nanda's
neuron classes, progress measures over the saved checkpoints, and unembedding filtration."""

from __future__ import annotations

import json

import pytest
import torch

from circuits.filtration import frequency_filtration
from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load, load_run
from interp.errors import SpecError
from interp.models import TransformerConfig, build_model
from interp.train import TrainConfig, train
from probes.fourier import classify_neurons, embedding_power, key_frequencies
from probes.progress import fourier_norms, progress_measures, restricted_logits


@pytest.fixture(scope="module")
def grokked(tmp_path_factory):
    """A small Nanda-style transformer (no LayerNorm, AdamW, weight decay 1) on (a + b) mod 23 with
    80% of the table for training: it memorises in ~50 steps and generalises by ~550."""
    out = tmp_path_factory.mktemp("grok") / "run"
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.8, seed=0))
    cfg = TransformerConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=128)
    res = train(
        cfg,
        task,
        TrainConfig(steps=600, lr=5e-3, weight_decay=1.0, eval_every=30, checkpoint_every=30, device="cpu"),
        out=out,
    )
    return res, out


@pytest.fixture(scope="module")
def measures(grokked):
    _, out = grokked
    return progress_measures(load_run(out))


def test_key_frequencies_of_a_grokked_model_carry_most_of_the_embedding_norm(grokked):
    res, _ = grokked
    model, task = res.model, res.task
    assert evaluate(model, task)["test_acc"] > 0.98
    keys = key_frequencies(model, task)
    assert 1 <= len(keys) <= 8  # a sparse set of the 11 frequencies
    power = embedding_power(model)[1:]
    share = float(power[[k - 1 for k in keys]].sum() / power.sum())
    assert share > 0.8
    init_power = embedding_power(build_model(res.model_config, seed=0))[1:]
    assert float(init_power[[k - 1 for k in keys]].sum() / init_power.sum()) < share - 0.2
    assert keys == sorted(keys, key=lambda k: -float(power[k - 1]))  # strongest first


def test_restricted_loss_falls_before_test_loss_in_a_grokking_run(measures):
    pm = measures
    assert pm.steps[0] == 0 and pm.steps[-1] == 600 and len(pm.steps) == 21
    restricted = pm.first_step_below("restricted_loss", 0.1)
    test = pm.first_step_below("test_loss", 0.1)
    assert restricted is not None and test is not None
    assert restricted < test
    # memorisation first: training loss is small long before the test loss
    assert pm.first_step_below("train_loss", 0.1) < test
    # after memorisation the key directions carry the training fit: removing them ruins it
    assert pm.excluded_loss[-1] > pm.train_loss[-1] + 1.0
    # the embedding becomes sparse in Fourier space, and weight decay shrinks the weights at the end
    assert pm.gini_embedding[-1] > 2 * pm.gini_embedding[0]
    assert pm.sum_sq_weights[-1] < max(pm.sum_sq_weights)
    json.dumps(pm.to_dict())


def test_progress_measures_of_a_list_of_checkpoints_equal_those_of_the_run(grokked, measures):
    res, out = grokked
    run = load_run(out)
    pairs = [(s, run.load(s).model) for s in (0, 300, 600)]
    pm = progress_measures(pairs, task=res.task, key_freqs=measures.key_frequencies)
    for i, s in enumerate((0, 300, 600)):
        j = measures.steps.index(s)
        assert pm.restricted_loss[i] == pytest.approx(measures.restricted_loss[j], rel=1e-9)
        assert pm.gini_unembedding[i] == pytest.approx(measures.gini_unembedding[j], rel=1e-9)
    with pytest.raises(SpecError, match="task"):
        progress_measures(pairs)


def test_restricted_logits_keep_exactly_the_key_directions():
    p = 23
    g = torch.Generator().manual_seed(0)
    a = torch.arange(p)
    s = ((a[:, None] + a[None, :]) % p).double()
    w = 2 * torch.pi * 4 / p
    key_part = torch.cos(w * s)[..., None] * torch.randn(1, 1, p, generator=g, dtype=torch.float64)
    other = torch.randn(p, p, p, generator=g, dtype=torch.float64)
    other = other - restricted_logits(other, [4])  # nothing along cos/sin(w_4 (a+b)), zero mean
    mean = torch.randn(1, 1, p, generator=g, dtype=torch.float64)
    out = restricted_logits(key_part + other + mean, [4])
    assert torch.allclose(out, key_part + mean, atol=1e-10)


def test_gini_of_fourier_norms_matches_published_scale_for_random_embeddings():
    model = build_model(TransformerConfig(p=113), seed=0)
    from probes.stats import gini

    assert float(gini(fourier_norms(model, where="embedding"))) < 0.08  # Nanda et al.: random W_E ~0.035


def test_neuron_classes_of_the_grokked_transformer_follow_nandas_rule(grokked):
    res, _ = grokked
    cls = classify_neurons(res.model, res.task)
    assert cls.family == "transformer" and cls.nanda_rule.endswith(">= 0.85")
    keys = set(cls.key_frequencies)
    clustered = cls.dominant_freq[cls.nanda_periodic].tolist()
    assert len(clustered) >= 0.2 * cls.n_neurons
    assert sum(f in keys for f in clustered) >= 0.9 * len(clustered)  # neuron clusters sit at key frequencies
    # neurons Nanda's rule calls periodic are periodic by the IPR cut too
    assert bool(cls.periodic[cls.nanda_periodic].float().mean() > 0.9)
    json.dumps(cls.to_dict())


def test_unembedding_filtration_keeps_the_rule_in_g_and_leaves_r_at_chance(grokked):
    res, _ = grokked
    f = frequency_filtration(res.model, res.task)
    assert f.family == "transformer" and f.kept_frequencies
    assert f.metrics["g"]["test_acc"] >= f.metrics["raw"]["test_acc"] - 0.02
    assert f.metrics["r"]["test_acc"] < 0.15
    assert torch.allclose(f.g_model.unembed.W_U + f.r_model.unembed.W_U, res.model.unembed.W_U, atol=1e-5)


def test_probes_accept_a_loaded_checkpoint(grokked):
    res, out = grokked
    ckpt = load(out)
    assert key_frequencies(ckpt) == key_frequencies(res.model, res.task)
    f = frequency_filtration(ckpt)
    assert f.metrics["raw"]["test_acc"] == evaluate(res.model, res.task)["test_acc"]
