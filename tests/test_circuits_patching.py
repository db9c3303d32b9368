import inspect
import json

import pytest
import torch
from circuit_models import noisy_mlp, zhong_transformer

from circuits.patching import activation_patch, corrupt_pairs
from interp import Task, TaskSpec
from interp.errors import ShapeError, SpecError
from interp.models import MLPConfig, TransformerConfig, build_model


@pytest.fixture(scope="module", params=["mlp", "transformer"])
def trained(request):
    return noisy_mlp() if request.param == "mlp" else zhong_transformer(1.0)


def _all_and_none(n):
    sets = torch.zeros(2, n, dtype=torch.bool)
    sets[0] = True
    return sets


@pytest.mark.parametrize("corruption", ["a", "b", "both"])
def test_patching_every_neuron_restores_the_clean_answer_and_patching_none_does_not(trained, corruption):
    model, task = trained
    res = activation_patch(
        model,
        task,
        hook="post",
        per="sets",
        neuron_sets=_all_and_none(model.n_neurons),
        metric="accuracy",
        corruption=corruption,
        n_pairs=128,
        split="test",
    )
    values = res.values.reshape(-1)
    assert res.clean_metric > 0.85 and res.corrupted_metric < 0.1
    assert values[0] == pytest.approx(res.clean_metric, abs=0.02)  # every neuron patched: clean answer back
    assert values[1] == pytest.approx(res.corrupted_metric, abs=1e-6)  # nothing patched: still corrupted
    ld = activation_patch(
        model,
        task,
        hook="post",
        per="sets",
        neuron_sets=_all_and_none(model.n_neurons),
        corruption=corruption,
        n_pairs=128,
        split="test",
    )
    norm = ld.normalized.reshape(-1)
    assert norm[0] > 0.9 and norm[1].abs() < 1e-4


def _reference_one_neuron_at_a_time(model, task, res_hook, clean, corrupted, clean_ans, corr_ans):
    """The TransformerLens way: one forward pass per neuron, patching that neuron at every position."""
    is_tf = model.cfg.family == "transformer"
    run = (lambda pairs: model(model.pair_tokens(pairs))[:, -1]) if is_tf else model
    _, cache = model.run_with_cache(model.pair_tokens(clean) if is_tf else clean, names_filter=[res_hook])
    src = cache[res_hook]
    out = []
    ar = torch.arange(len(clean))
    for i in range(model.n_neurons):

        def hook(act, hook, i=i):
            act = act.clone()
            act[..., i] = src[..., i]
            return act

        with torch.no_grad(), model.hooks(fwd_hooks=[(res_hook, hook)]):
            lg = run(corrupted)
        out.append((lg[ar, clean_ans] - lg[ar, corr_ans]).mean())
    return torch.stack(out)


@pytest.mark.parametrize("hook", ["post", "pre"])
@pytest.mark.parametrize("method", ["closed_form", "expanded_batch"])
def test_batched_neuron_patching_equals_one_neuron_at_a_time_reference(trained, method, hook):
    model, task = trained
    res = activation_patch(model, task, hook=hook, per="neuron", n_pairs=48, method=method, seed=3, max_rows=48 * 20)
    gen = torch.Generator().manual_seed(3)
    clean = task.inputs[torch.randperm(len(task.inputs), generator=gen)[:48]]
    corrupted = corrupt_pairs(task, clean, "a", seed=4)
    grid = torch.full((task.p, task.p), -1, dtype=torch.long)
    grid[task.inputs[:, 0], task.inputs[:, 1]] = torch.arange(len(task.inputs))
    ans = lambda pairs: task.labels[grid[pairs[:, 0], pairs[:, 1]]]  # noqa: E731
    ref = _reference_one_neuron_at_a_time(model, task, res.hooks[0], clean, corrupted, ans(clean), ans(corrupted))
    torch.testing.assert_close(res.values.reshape(-1), ref, atol=2e-4, rtol=1e-4)
    if method == "expanded_batch":
        assert res.n_forward_passes == -(-model.n_neurons // 20)  # chunks of 20 neurons per pass
    else:
        assert res.n_forward_passes == 0


@pytest.mark.parametrize(
    "hook, per, tl_name",
    [
        ("resid_pre", "pos", "get_act_patch_resid_pre"),
        ("attn_out", "pos", "get_act_patch_attn_out"),
        ("z", "head", "get_act_patch_attn_head_out_all_pos"),
        ("z", "head_pos", "get_act_patch_attn_head_out_by_pos"),
        ("v", "head", "get_act_patch_attn_head_v_all_pos"),
        ("pattern", "head_pos", "get_act_patch_attn_head_pattern_by_pos"),
    ],
)
def test_transformer_patching_matches_transformer_lens_shapes_and_values(hook, per, tl_name):
    import transformer_lens.patching as tlp

    model, task = zhong_transformer(1.0)
    model.eval()
    res = activation_patch(model, task, hook=hook, per=per, n_pairs=32, seed=1)
    gen = torch.Generator().manual_seed(1)
    clean = task.inputs[torch.randperm(len(task.inputs), generator=gen)[:32]]
    corrupted = corrupt_pairs(task, clean, "a", seed=2)
    clean_ans, corr_ans = (
        task.labels[clean[:, 0] * task.p + clean[:, 1]],
        task.labels[corrupted[:, 0] * task.p + corrupted[:, 1]],
    )
    ar = torch.arange(32)

    def metric(logits):  # [batch, pos, p] -> scalar, at the answer position
        return (logits[ar, -1, clean_ans] - logits[ar, -1, corr_ans]).mean()

    _, cache = model.run_with_cache(model.pair_tokens(clean))
    expected = getattr(tlp, tl_name)(model, model.pair_tokens(corrupted), cache, metric)
    assert res.values.shape == expected.shape
    torch.testing.assert_close(res.values, expected.float(), atol=2e-4, rtol=1e-4)


def test_corruptions_change_the_named_operand_and_stay_in_the_table():
    task = Task(TaskSpec(op="x/y", p=13, frac_train=0.5))
    clean = task.inputs
    a = corrupt_pairs(task, clean, "a", seed=0)
    b = corrupt_pairs(task, clean, "b", seed=0)
    both = corrupt_pairs(task, clean, "both", seed=0)
    assert (a[:, 0] != clean[:, 0]).all() and (a[:, 1] == clean[:, 1]).all()
    assert (b[:, 1] != clean[:, 1]).all() and (b[:, 0] == clean[:, 0]).all() and (b[:, 1] != 0).all()
    assert (both != clean).all()


def test_user_pairs_and_user_metrics_vmappable_or_not():
    model, task = noisy_mlp()
    clean, corrupted = task.inputs[:16], task.inputs[16:32]
    vm = activation_patch(
        model,
        task,
        hook="post",
        per="neuron",
        clean_pairs=clean,
        corrupted_pairs=corrupted,
        metric=lambda lg: lg.max(-1).values.mean(),
    )
    loop = activation_patch(
        model,
        task,
        hook="post",
        per="neuron",
        clean_pairs=clean,
        corrupted_pairs=corrupted,
        metric=lambda lg: torch.tensor(lg.max(-1).values.mean().item()),
    )
    assert vm.corruption == "user" and vm.values.shape == (model.n_neurons,)
    torch.testing.assert_close(vm.values, loop.values)
    no_task = activation_patch(
        model, None, hook="post", per="all", clean_pairs=clean, corrupted_pairs=corrupted, metric="accuracy"
    )
    assert float(no_task.values) == pytest.approx(1.0)  # answers default to the clean run's own argmax


def test_per_neuron_patching_of_512_neurons_takes_a_handful_of_forward_passes():
    model = build_model(TransformerConfig(p=23, d_model=32, n_heads=4, d_head=8, d_mlp=512), seed=0)
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.5))
    res = activation_patch(model, task, hook="post", per="neuron", n_pairs=64, method="expanded_batch", max_rows=8192)
    assert res.values.shape == (1, 512) and res.axis_names == ("layer", "neuron")
    assert res.n_forward_passes == 4  # 128 neurons x 64 pairs per pass
    assert activation_patch(model, task, hook="post", per="neuron", n_pairs=64).n_forward_passes == 0  # closed form


def test_patch_result_to_dict_is_json_and_bad_requests_raise_clear_errors():
    model, task = noisy_mlp()
    res = activation_patch(model, task, hook="post", per="neuron", n_pairs=8)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["axis_names"] == ["neuron"] and len(d["values"]) == model.n_neurons
    with pytest.raises(SpecError, match="per"):
        activation_patch(model, task, hook="post", per="head")
    with pytest.raises(SpecError, match="hook"):
        activation_patch(model, task, hook="resid_pre")
    with pytest.raises(SpecError, match="closed_form"):
        activation_patch(model, task, hook="in_a", method="closed_form")
    with pytest.raises(ShapeError, match="p=23"):
        activation_patch(build_model(MLPConfig(p=23, width=4)), Task(TaskSpec(op="x+y", p=29, frac_train=0.5)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_patching_on_gpu_matches_cpu():
    model, task = zhong_transformer(1.0)
    cpu = activation_patch(model, task, hook="post", per="neuron", n_pairs=64, method="expanded_batch")
    gpu = activation_patch(model, task, hook="post", per="neuron", n_pairs=64, method="expanded_batch", device="cuda")
    torch.testing.assert_close(gpu.values, cpu.values, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(
    "hook, per, tl_name",
    [
        ("resid_pre", "pos", "get_act_patch_resid_pre"),
        ("resid_mid", "pos", "get_act_patch_resid_mid"),
        ("mlp_out", "pos", "get_act_patch_mlp_out"),
        ("z", "head_pos", "get_act_patch_attn_head_out_by_pos"),
        ("q", "head", "get_act_patch_attn_head_q_all_pos"),
        ("pattern", "head", "get_act_patch_attn_head_pattern_all_pos"),
    ],
)
def test_two_layer_transformer_patching_matches_transformer_lens(hook, per, tl_name):
    """Layer 0 (full positions, batch expanded inside the model) and the last layer (answer position only)."""
    import transformer_lens.patching as tlp

    torch.manual_seed(0)
    model = build_model(TransformerConfig(p=11, n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=32), seed=1).eval()
    task = Task(TaskSpec(op="x+y", p=11, frac_train=0.5))
    res = activation_patch(model, task, hook=hook, per=per, n_pairs=16, seed=2)
    gen = torch.Generator().manual_seed(2)
    clean = task.inputs[torch.randperm(len(task.inputs), generator=gen)[:16]]
    corrupted = corrupt_pairs(task, clean, "a", seed=3)
    clean_ans, corr_ans = (
        task.labels[clean[:, 0] * 11 + clean[:, 1]],
        task.labels[corrupted[:, 0] * 11 + corrupted[:, 1]],
    )
    ar = torch.arange(16)
    _, cache = model.run_with_cache(model.pair_tokens(clean))
    expected = getattr(tlp, tl_name)(
        model,
        model.pair_tokens(corrupted),
        cache,
        lambda lg: (lg[ar, -1, clean_ans] - lg[ar, -1, corr_ans]).mean(),
    )
    assert res.values.shape == expected.shape == (2, *expected.shape[1:])
    torch.testing.assert_close(res.values, expected.float(), atol=2e-5, rtol=1e-4)


def test_pattern_patching_names_the_query_position_pos_as_transformer_lens_4():
    model, task = zhong_transformer(1.0)
    res = activation_patch(model, task, hook="pattern", per="head_pos", n_pairs=8)
    assert res.axis_names == ("layer", "head", "pos") and res.values.shape == (1, 4, 2)
    assert activation_patch(model, task, hook="pattern", per="pos", n_pairs=8).axis_names == ("layer", "pos")


@pytest.mark.parametrize("method", ["closed_form", "expanded_batch"])
def test_reduce_none_keeps_each_example_and_its_mean_is_the_reduced_value(method):
    model, task = zhong_transformer(1.0)
    kw = dict(hook="post", per="neuron", n_pairs=40, seed=4, method=method)
    full = activation_patch(model, task, reduce="none", **kw)
    scalar = activation_patch(model, task, **kw)
    assert not full.reduced and full.values.shape == (1, model.n_neurons, 40)
    assert full.baseline.shape == full.source_baseline.shape == (40,)
    torch.testing.assert_close(full.mean(), scalar.values, atol=1e-4, rtol=1e-5)
    assert full.corrupted_metric == pytest.approx(scalar.corrupted_metric, rel=1e-5)
    torch.testing.assert_close(full.effect().mean(-1), scalar.values - scalar.corrupted_metric, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(full.normalized, scalar.normalized, atol=1e-4, rtol=1e-4)
    per_example_fn = activation_patch(model, task, reduce="mean", metric=lambda lg: lg.max(-1).values, **kw)
    assert per_example_fn.values.shape == (1, model.n_neurons) and per_example_fn.reduced
    with pytest.raises(ShapeError, match="one value per example"):
        activation_patch(model, task, reduce="none", metric=lambda lg: lg.max(), **kw)
    with pytest.raises(SpecError, match="reduce='none'"):
        scalar.bootstrap_ci()


def test_bootstrap_intervals_over_examples_bracket_the_mean_and_match_the_normal_approximation():
    model, task = noisy_mlp()
    res = activation_patch(model, task, hook="post", per="neuron", n_pairs=256, reduce="none", seed=1)
    low, high = res.bootstrap_ci(n_resamples=2000, seed=0)
    mean, se = res.mean(), res.stderr()
    assert low.shape == high.shape == (model.n_neurons,)
    assert bool((low <= mean + 1e-6).all()) and bool((mean <= high + 1e-6).all())
    ratio = ((high - low) / (2 * 1.96 * se))[se > 0]  # a mean of 256 examples is close to normal
    assert 0.9 < float(ratio.median()) < 1.1
    again = res.bootstrap_ci(n_resamples=2000, seed=0)
    assert torch.equal(low, again[0]) and torch.equal(high, again[1])  # seeded: the same interval
    e_low, e_high = res.bootstrap_ci(n_resamples=500, of_effect=True)
    assert e_low.shape == e_high.shape == low.shape
    assert bool((e_low <= res.effect().mean(-1) + 1e-6).all())


def test_per_example_values_match_transformer_lens_reduce_none():
    import transformer_lens.patching as tlp

    if "reduce" not in inspect.signature(tlp.generic_activation_patch).parameters:
        pytest.skip("this TransformerLens predates reduce='none' (TransformerLens 4)")
    model, task = zhong_transformer(1.0)
    model.eval()
    clean, corrupted = task.inputs[:24], corrupt_pairs(task, task.inputs[:24], "b", seed=0)
    res = activation_patch(
        model, task, hook="resid_pre", per="pos", clean_pairs=clean, corrupted_pairs=corrupted, reduce="none"
    )
    ar = torch.arange(24)
    clean_ans, corr_ans = (
        task.labels[clean[:, 0] * task.p + clean[:, 1]],
        task.labels[corrupted[:, 0] * task.p + corrupted[:, 1]],
    )
    _, cache = model.run_with_cache(model.pair_tokens(clean))
    theirs = tlp.get_act_patch_resid_pre(
        model,
        model.pair_tokens(corrupted),
        cache,
        lambda lg: lg[ar, -1, clean_ans] - lg[ar, -1, corr_ans],
        reduce="none",
        baseline=True,
    )
    assert list(theirs.axis_names) == list(res.axis_names) and theirs.values.shape == res.values.shape
    torch.testing.assert_close(res.values, theirs.values.float(), atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(res.baseline, theirs.baseline.float(), atol=2e-4, rtol=1e-4)


def test_patch_result_to_frame_is_tidy_with_transformer_lens_axis_names():
    model, task = zhong_transformer(1.0)
    res = activation_patch(model, task, hook="z", per="head_pos", n_pairs=6, reduce="none")
    frame = res.to_frame()
    assert list(frame.columns[:4]) == ["layer", "pos", "head", "example"] and len(frame) == 1 * 2 * 4 * 6
    means = frame.groupby(["layer", "pos", "head"])["values"].mean().to_numpy()
    torch.testing.assert_close(torch.tensor(means, dtype=torch.float32), res.mean().reshape(-1), atol=1e-5, rtol=1e-5)
    assert (frame["metric"] == "logit_diff").all() and (frame["n_pairs"] == 6).all()
