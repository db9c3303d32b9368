import json

import pytest
import torch
import torch.nn.functional as F
from circuit_models import zhong_transformer

from interp import Task, TaskSpec
from interp.errors import SpecError
from interp.metrics import all_logits
from probes.clock_pizza import classify_circuit, distance_irrelevance, gradient_symmetricity


def test_transformer_trained_with_attention_rate_0_is_classified_pizza():
    model, task = zhong_transformer(0.0)
    res = classify_circuit(model, task)
    assert res.verdict == "pizza", res.to_dict()
    assert res.gradient_symmetricity > 0.95
    assert res.test_acc >= 0.9


def test_transformer_trained_with_attention_rate_1_is_classified_clock():
    model, task = zhong_transformer(1.0)
    res = classify_circuit(model, task)
    assert res.verdict == "clock", res.to_dict()
    assert res.gradient_symmetricity < 0.85
    # the clock's correct logit hardly depends on a - b; the pizza's does
    assert res.distance_irrelevance > classify_circuit(*zhong_transformer(0.0)).distance_irrelevance


def test_gradient_symmetricity_batched_equals_per_triple_autograd():
    model, task = zhong_transformer(1.0)
    gen = torch.Generator().manual_seed(5)
    triples = torch.randint(0, task.p, (64, 3), generator=gen)
    batched = gradient_symmetricity(model, task, n_triples=64, seed=5)
    sims = []
    for a, b, c in triples.tolist():
        e = model.embed.W_E[torch.tensor([a, b])].detach().clone().requires_grad_(True)  # [2, d_model]
        logits = model.run_with_hooks(
            torch.tensor([[a, b]]), fwd_hooks=[("hook_embed", lambda act, hook, e=e: e[None])]
        )
        (g,) = torch.autograd.grad(logits[0, -1, c], e)
        sims.append(F.cosine_similarity(g[0], g[1], dim=0))
    assert batched == pytest.approx(float(torch.stack(sims).mean()), abs=1e-5)


def test_distance_irrelevance_follows_zhongs_definition():
    model, task = zhong_transformer(0.0)
    p = task.p
    correct = all_logits(model, task)[torch.arange(len(task.inputs)), task.labels].double()
    M = torch.zeros(p, p, dtype=torch.float64)  # M[(a + b) mod p, (a - b) mod p]
    a, b = task.inputs[:, 0], task.inputs[:, 1]
    M[(a + b) % p, (a - b) % p] = correct
    q = M.std(0, unbiased=False).mean() / M.std(unbiased=False)
    assert distance_irrelevance(model, task) == pytest.approx(float(q), abs=1e-9)


def test_mlp_verdict_reports_the_analytic_solution_fit():
    gromov = pytest.importorskip("probes.gromov")
    model = gromov.gromov_mlp(p=23, width=23 * 22, seed=0)
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.5))
    res = classify_circuit(model, task, n_triples=1024)
    assert res.test_acc == 1.0
    assert res.analytic_fit is not None and res.analytic_fit["mean_error"] < 1e-3
    # Gromov's network computes a function of a + b alone with independent input phases: distance
    # irrelevant (the clock's signature) and no gradient symmetry, so a clock by the measures' definitions.
    assert res.distance_irrelevance > 0.9 and abs(res.gradient_symmetricity) < 0.2
    assert res.verdict == "clock"
    d = json.loads(json.dumps(res.to_dict()))
    assert d["thresholds"]["pizza_min_symmetricity"] == 0.95


def test_unlearned_model_is_neither_and_bad_tasks_raise():
    from interp.models import build_model

    model = build_model(zhong_transformer(1.0)[0].cfg, seed=3)  # untrained
    task = zhong_transformer(1.0)[1]
    res = classify_circuit(model, task, n_triples=256)
    assert res.verdict == "neither" and "test accuracy" in res.reason
    with pytest.raises(SpecError, match="thresholds"):
        classify_circuit(model, task, thresholds={"pizza": 0.9})
    with pytest.raises(SpecError, match="task"):
        distance_irrelevance(model, None)
