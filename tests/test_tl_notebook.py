"""A TransformerLens user's notebook, run unchanged on grokscope's transformer: cache indexing, the
logit lens, residual decomposition, direct logit attribution and transformer_lens.patching.

It uses only what TransformerLens 3.x and 4.x both have; .ci/run runs it under both (transformer-lens
3.9 in a second environment).
"""

import functools

import pytest
import torch
import transformer_lens.patching as patching
from transformer_lens import ActivationCache

from circuits.patching import activation_patch, corrupt_pairs
from interp import Task, TaskSpec
from interp.checkpoints import load
from interp.errors import ShapeError, SpecError
from interp.models import MLPConfig, TransformerConfig, build_model

PIZZA = "tests/data/zhong_pizza/model_h9m153uuh9.pt"  # Zhong et al.'s 2-layer pizza, p = 59
BATCH = 48


@pytest.fixture(scope="module")
def notebook():
    ckpt = load(PIZZA)
    model, task = ckpt.model.eval(), ckpt.task
    clean = task.inputs[torch.randperm(len(task.inputs), generator=torch.Generator().manual_seed(0))[:BATCH]]
    corrupted = corrupt_pairs(task, clean, "a", seed=1)  # the first operand changed
    answers, wrong = (clean.sum(1) % task.p), (corrupted.sum(1) % task.p)
    return model, task, clean, corrupted, answers, wrong


def test_cache_indexing_works_as_on_a_hooked_transformer(notebook):
    model, _, clean, _, _, _ = notebook
    logits, cache = model.run_with_cache(model.pair_tokens(clean))
    assert isinstance(cache, ActivationCache)
    assert cache["pattern", 0].shape == (BATCH, 4, 2, 2)  # [batch, head, query, key]
    assert cache["post", -1].shape == (BATCH, 2, 512)
    assert torch.equal(cache["post", 1], cache["blocks.1.mlp.hook_post"])
    assert torch.equal(cache["resid_pre", 0], cache["hook_embed"] + cache["hook_pos_embed"])
    assert cache.stack_activation("pattern").shape == (2, BATCH, 4, 2, 2)
    assert logits.shape == (BATCH, 2, 59)


def test_logit_lens_decomposition_and_direct_logit_attribution(notebook):
    model, _, clean, _, answers, wrong = notebook
    logits, cache = model.run_with_cache(model.pair_tokens(clean))
    accum, labels = cache.accumulated_resid(return_labels=True)
    assert labels == ["0_pre", "1_pre", "final_post"]
    torch.testing.assert_close(accum[-1][:, -1] @ model.W_U + model.b_U, logits[:, -1], atol=1e-4, rtol=1e-4)
    parts, labels = cache.decompose_resid(return_labels=True)
    assert labels == ["embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"]
    torch.testing.assert_close(parts.sum(0), cache["resid_post", -1], atol=1e-4, rtol=1e-4)
    attrs = cache.logit_attrs(parts[:, :, -1], tokens=answers, incorrect_tokens=wrong)  # [component, batch]
    ar = torch.arange(BATCH)
    logit_diff = logits[ar, -1, answers] - logits[ar, -1, wrong]
    torch.testing.assert_close(attrs.sum(0), logit_diff, atol=1e-3, rtol=1e-4)
    heads, labels = cache.stack_head_results(layer=-1, return_labels=True)  # each head's output
    assert heads.shape == (8, BATCH, 2, 128) and labels[:2] == ["L0H0", "L0H1"]
    full = cache.get_full_resid_decomposition(expand_neurons=False)  # heads, MLPs, embeddings, biases
    torch.testing.assert_close(full.sum(0), cache["resid_post", -1], atol=1e-4, rtol=1e-4)


def test_layer_norm_is_applied_from_the_cache_as_transformer_lens_does():
    cfg = TransformerConfig(p=13, n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, normalization_type="LN")
    model = build_model(cfg, seed=0).eval()
    tokens = model.pair_tokens(Task(TaskSpec(op="x+y", p=13, frac_train=0.5)).inputs[:40])
    logits, cache = model.run_with_cache(tokens)
    accum = cache.accumulated_resid(apply_ln=True)
    torch.testing.assert_close(accum[-1] @ model.W_U + model.b_U, logits, atol=1e-4, rtol=1e-4)
    parts = cache.decompose_resid(apply_ln=True)
    torch.testing.assert_close(parts.sum(0) @ model.W_U + model.b_U, logits, atol=1e-4, rtol=1e-4)


def test_transformer_lens_patching_runs_on_the_model_and_agrees_with_activation_patch(notebook):
    model, task, clean, corrupted, answers, wrong = notebook
    ar = torch.arange(BATCH)

    def logit_diff(logits):
        return (logits[ar, -1, answers] - logits[ar, -1, wrong]).mean()

    clean_tokens, corrupted_tokens = model.pair_tokens(clean), model.pair_tokens(corrupted)
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(clean_tokens)
        corrupted_logits = model(corrupted_tokens)
    resid = patching.get_act_patch_resid_pre(model, corrupted_tokens, cache, logit_diff)
    assert resid.shape == (2, 2)  # [layer, pos]
    assert float(resid[0, 0]) == pytest.approx(float(logit_diff(clean_logits)), rel=1e-4)  # a restored
    assert float(resid[0, 1]) == pytest.approx(float(logit_diff(corrupted_logits)), rel=1e-4)  # b was not corrupted
    heads = patching.get_act_patch_attn_head_out_by_pos(model, corrupted_tokens, cache, logit_diff)
    assert heads.shape == (2, 2, 4)  # [layer, pos, head]
    ours = activation_patch(model, task, hook="z", per="head_pos", clean_pairs=clean, corrupted_pairs=corrupted)
    assert ours.axis_names == ("layer", "pos", "head")
    torch.testing.assert_close(ours.values, heads.float(), atol=1e-3, rtol=1e-4)
    pattern = patching.get_act_patch_attn_head_pattern_by_pos(model, corrupted_tokens, cache, logit_diff)
    ours = activation_patch(model, task, hook="pattern", per="head_pos", clean_pairs=clean, corrupted_pairs=corrupted)
    assert ours.axis_names == ("layer", "head", "pos") and pattern.shape == (2, 4, 2)
    torch.testing.assert_close(ours.values, pattern.float(), atol=1e-3, rtol=1e-4)


def test_a_transformer_lens_metric_runs_unchanged_in_activation_patch(notebook):
    model, task, clean, corrupted, answers, wrong = notebook
    ar = torch.arange(BATCH)

    def logit_diff(logits):  # TransformerLens's signature: logits [batch, pos, d_vocab]
        return (logits[ar, -1, answers] - logits[ar, -1, wrong]).mean()

    with torch.no_grad():
        _, cache = model.run_with_cache(model.pair_tokens(clean))
    corrupted_tokens = model.pair_tokens(corrupted)
    theirs = {
        "resid_pre": patching.get_act_patch_resid_pre(model, corrupted_tokens, cache, logit_diff),
        "z": patching.get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, cache, logit_diff),
        "post": patching.get_act_patch_mlp_out(model, corrupted_tokens, cache, logit_diff),
    }
    patch = functools.partial(activation_patch, model, task, clean_pairs=clean, corrupted_pairs=corrupted)
    for hook, per, tl_name in (("resid_pre", "pos", "resid_pre"), ("z", "head", "z"), ("mlp_out", "pos", "post")):
        ours = patch(hook=hook, per=per, metric=logit_diff)
        torch.testing.assert_close(ours.values, theirs[tl_name].float(), atol=1e-3, rtol=1e-4)
    # the same metric at the answer position only (ours), and the closed form at a neuron hook agree with it
    for hook, per in (("resid_pre", "pos"), ("post", "neuron")):
        tl = patch(hook=hook, per=per, metric=logit_diff, metric_logits="model")
        answer = patch(hook=hook, per=per, metric="logit_diff", reduce="mean")
        assert tl.method == answer.method
        torch.testing.assert_close(tl.values, answer.values, atol=1e-3, rtol=1e-4)


def test_a_metric_that_reads_neither_logits_shape_is_a_clear_error(notebook):
    model, task, clean, corrupted, *_ = notebook
    patch = functools.partial(
        activation_patch, model, task, hook="resid_pre", per="pos", clean_pairs=clean, corrupted_pairs=corrupted
    )
    with pytest.raises(ShapeError, match=r"answer logits \[batch, p\].*IndexError.*model's logits \[batch, pos"):
        patch(metric=lambda logits: logits[:, -1, 0, 0].mean())
    with pytest.raises(ShapeError, match=r"metric_logits='model'"):
        patch(metric=lambda logits: logits[:, -1, 0].mean(), metric_logits="answer")


def test_the_mlp_cache_reads_its_hidden_layer_and_says_what_does_not_apply():
    model = build_model(MLPConfig(p=13, width=32), seed=0)
    pairs = Task(TaskSpec(op="x+y", p=13, frac_train=0.5)).inputs[:20]
    logits, cache = model.run_with_cache(pairs)
    assert torch.equal(cache["post", 0], cache["hook_post"]) and torch.equal(cache["post"], cache["hook_post"])
    assert cache.stack_activation("post").shape == (1, 20, 32)
    torch.testing.assert_close(cache["post"] @ model.neuron_out_weights(), logits)
    with pytest.raises(SpecError, match="no residual stream"):
        cache.accumulated_resid()
    with pytest.raises(KeyError, match="one hidden layer"):
        cache["post", 1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cache_and_transformer_lens_patching_on_gpu_match_cpu(notebook):
    model, task, clean, corrupted, answers, wrong = notebook
    gpu = load(PIZZA, device="cuda").model.eval()
    ar = torch.arange(BATCH)

    def logit_diff(logits):
        return (logits[ar, -1, answers.to(logits.device)] - logits[ar, -1, wrong.to(logits.device)]).mean()

    results = []
    for m in (model, gpu):
        dev = m.W_E.device
        with torch.no_grad():
            _, cache = m.run_with_cache(m.pair_tokens(clean.to(dev)))
        attrs = cache.logit_attrs(
            cache.decompose_resid()[:, :, -1], tokens=answers.to(dev), incorrect_tokens=wrong.to(dev)
        )
        resid = patching.get_act_patch_resid_pre(m, m.pair_tokens(corrupted.to(dev)), cache, logit_diff)
        results.append((attrs.cpu(), resid.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-3, rtol=1e-3)
    ours = activation_patch(gpu, task, hook="z", per="head", reduce="none", n_pairs=32, device="cuda")
    low, high = ours.bootstrap_ci(n_resamples=200)
    assert bool((low <= ours.mean() + 1e-5).all()) and bool((ours.mean() <= high + 1e-5).all())
