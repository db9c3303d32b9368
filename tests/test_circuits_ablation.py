import copy
import json

import pytest
import torch
from circuit_models import noisy_mlp, zhong_transformer

from circuits.ablation import ablate, ablate_batch, ablated, prune_curve, prune_masks
from interp.errors import ShapeError, SpecError
from interp.metrics import all_logits


# Measured on this model (quadratic MLP, width 256, (a + b) mod 31, 70% of the table, 25% of labels
# replaced uniformly, MSE, AdamW lr 1e-2, weight decay 5, 800 steps): test 0.91, noisy labels fitted
# 1.00. Pruning 60% of the neurons lowest-IPR first: noisy 0.47, test 0.96, clean train 1.00;
# highest-IPR first: test 0.02, noisy 0.97.
def test_pruning_lowest_ipr_first_removes_the_noisy_fit_and_keeps_test_accuracy_highest_first_does_the_opposite():
    model, task = noisy_mlp()
    asc = prune_curve(model, task, scores="ipr", order="ascending")
    desc = prune_curve(model, task, scores="ipr", order="descending")
    assert asc.score_name == "ipr" and asc.method == "closed_form"
    t0, n0 = asc.metrics["test_acc"][0], asc.metrics["train_noisy_acc"][0]
    assert t0 > 0.8 and n0 > 0.95  # coexistence: the noise is memorised and the rule generalises
    i = asc.fractions.index(0.6)
    # lowest IPR first: the noisy labels are forgotten, the rule stays
    assert asc.metrics["train_noisy_acc"][i] < 0.6 * n0
    assert asc.metrics["test_acc"][i] >= t0 - 0.03
    assert asc.metrics["train_clean_acc"][i] > 0.95
    # highest IPR first: the rule is gone, the memorised noise stays
    assert desc.metrics["test_acc"][i] < 0.2
    assert desc.metrics["train_noisy_acc"][i] > 0.9
    assert json.loads(json.dumps(asc.to_dict()))["n_pruned"][i] == round(0.6 * model.n_neurons)


@pytest.fixture(scope="module", params=["mlp", "transformer"])
def trained(request):
    return noisy_mlp() if request.param == "mlp" else zhong_transformer(1.0)


@pytest.mark.parametrize("kind, hook", [("zero", None), ("mean", None), ("mean", "pre")])
def test_batched_prune_curve_equals_ablating_each_step_on_its_own(trained, kind, hook):
    model, task = trained
    scores = torch.linspace(0, 1, model.n_neurons)[
        torch.randperm(model.n_neurons, generator=torch.Generator().manual_seed(0))
    ]
    fractions = (0.0, 0.3, 0.7, 1.0)
    closed = prune_curve(model, task, scores=scores, fractions=fractions, order="descending", kind=kind, hook=hook)
    expanded = prune_curve(
        model,
        task,
        scores=scores,
        fractions=fractions,
        order="descending",
        kind=kind,
        hook=hook,
        method="expanded_batch",
    )
    assert closed.method == "closed_form" and expanded.method == "expanded_batch"
    masks, counts = prune_masks(scores, fractions, "descending")
    assert counts == closed.n_pruned == (0, round(0.3 * model.n_neurons), round(0.7 * model.n_neurons), model.n_neurons)
    for i in range(len(fractions)):
        one = ablate(model, task, neurons=masks[i], kind=kind, hook=hook).metrics
        for key in ("test_acc", "train_clean_acc", "train_noisy_acc", "test_loss"):
            if one[key] != one[key]:  # NaN: the task has no noisy labels
                assert closed.metrics[key][i] != closed.metrics[key][i]
                continue
            assert closed.metrics[key][i] == pytest.approx(one[key], abs=1e-4), (key, i)
            assert expanded.metrics[key][i] == pytest.approx(one[key], abs=1e-4), (key, i)


def test_mean_ablating_every_mlp_neuron_gives_every_input_the_mean_logits():
    model, task = noisy_mlp()
    intact = all_logits(model, task)
    with ablated(model, task, neurons=torch.ones(model.n_neurons, dtype=torch.bool), kind="mean"):
        logits = all_logits(model, task)
    # logits are linear in the hidden layer, so the mean hidden vector gives the mean logits
    torch.testing.assert_close(logits, intact.mean(0, keepdim=True).expand_as(logits), atol=1e-3, rtol=1e-4)


def test_resample_ablating_every_mlp_neuron_gives_each_input_another_inputs_logits():
    model, task = noisy_mlp()
    intact = all_logits(model, task)
    with ablated(model, task, neurons=torch.ones(model.n_neurons, dtype=torch.bool), kind="resample", seed=1):
        logits = all_logits(model, task)
    dist = torch.cdist(logits, intact)  # [N, N]
    assert (dist.min(1).values < 1e-3).all()
    assert (dist.argmin(1) != torch.arange(len(intact))).float().mean() > 0.9  # mostly another input's


def test_zero_ablating_every_head_equals_zeroing_the_attention_output_weights():
    model, task = zhong_transformer(1.0)
    heads = [(0, h) for h in range(model.cfg.n_heads)]
    res = ablate(model, task, heads=heads, kind="zero")
    edited = copy.deepcopy(model)
    with torch.no_grad():
        edited.blocks[0].attn.W_O.zero_()
    torch.testing.assert_close(
        torch.tensor(res.metrics["test_loss"]),
        torch.tensor(ablate(edited, task, neurons=[], kind="zero").metrics["test_loss"]),
    )
    assert res.n_heads_ablated == 4 and res.baseline["test_acc"] > 0.9 and res.metrics["test_acc"] < 0.5


def test_ablated_context_manager_leaves_the_model_as_it_was():
    model, task = zhong_transformer(1.0)
    before = all_logits(model, task)
    with ablated(model, task, neurons=range(0, model.n_neurons, 2), kind="mean"):
        during = all_logits(model, task)
    assert not torch.allclose(before, during)
    torch.testing.assert_close(all_logits(model, task), before)


def test_ablation_results_serialise_and_bad_requests_raise_clear_errors():
    model, task = noisy_mlp()
    res = ablate(model, task, neurons=[0, 1], kind="zero")
    assert json.loads(json.dumps(res.to_dict()))["n_neurons_ablated"] == 2
    batch = ablate_batch(model, task, masks=torch.zeros(3, model.n_neurons, dtype=torch.bool))
    assert batch.metrics["test_acc"] == [res.baseline["test_acc"]] * 3
    with pytest.raises(SpecError, match="kind"):
        ablate(model, task, neurons=[0], kind="median")
    with pytest.raises(ShapeError, match="indices"):
        ablate(model, task, neurons=[model.n_neurons])
    with pytest.raises(SpecError, match="heads"):
        ablate(model, task, heads=[(0, 0)])
    with pytest.raises(SpecError, match="task"):
        with ablated(model, neurons=[0], kind="mean"):
            pass
    with pytest.raises(ShapeError, match="one value per neuron"):
        prune_curve(model, task, scores=torch.zeros(3))
    with pytest.raises(SpecError, match="order"):
        prune_curve(model, task, scores=torch.zeros(model.n_neurons), order="random")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_prune_curve_on_gpu_matches_cpu():
    model, task = noisy_mlp()
    scores = torch.arange(model.n_neurons).float()
    cpu = prune_curve(model, task, scores=scores, kind="mean")
    gpu = prune_curve(model, task, scores=scores, kind="mean", device="cuda")
    for key in ("test_acc", "train_noisy_acc"):
        assert gpu.metrics[key] == pytest.approx(cpu.metrics[key], abs=2e-3)
