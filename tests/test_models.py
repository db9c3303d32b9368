import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.errors import DeviceError, ShapeError, SpecError
from interp.models import MLPConfig, TransformerConfig, build_model

P = 11


@pytest.fixture(scope="module")
def task():
    return Task(TaskSpec(op="x+y", p=P, frac_train=0.5, label_noise=0.3, seed=0))


@pytest.mark.parametrize("act", ["relu", "quad", "gelu", "silu", "rev_relu"])
def test_mlp_computes_W_act_Ue_a_plus_Ve_b(act, task):
    model = build_model(MLPConfig(p=P, width=16, act=act, bias=True), seed=1)
    with torch.no_grad():
        model.b_out.normal_()
    x = task.inputs[:20]
    e_a = torch.nn.functional.one_hot(x[:, 0], P).float()
    e_b = torch.nn.functional.one_hot(x[:, 1], P).float()
    h = e_a @ model.U.T + e_b @ model.V.T
    phi = {
        "relu": torch.relu(h),
        "quad": h**2,
        "gelu": torch.nn.functional.gelu(h),
        "silu": torch.nn.functional.silu(h),
        "rev_relu": torch.relu(-h),
    }[act]
    expected = phi @ model.W.T + model.b_out
    torch.testing.assert_close(model(x), expected)
    # the same through soft one-hot inputs, so gradients w.r.t. inputs can be taken
    torch.testing.assert_close(model(torch.stack([e_a, e_b], 1)), expected)


def test_mlp_tied_and_learned_embedding_variants(task):
    tied = build_model(MLPConfig(p=P, width=8, tied=True))
    assert not hasattr(tied, "V") or "V" not in dict(tied.named_parameters())
    w = tied.neuron_in_weights()
    assert torch.equal(w[:, 0], w[:, 1])
    learned = build_model(MLPConfig(p=P, width=8, embed="learned", d_embed=5))
    assert learned.W_E.shape == (P, 5) and learned.U.shape == (8, 5)
    x = task.inputs[:4]
    h = learned.W_E[x[:, 0]] @ learned.U.T + learned.W_E[x[:, 1]] @ learned.V.T
    torch.testing.assert_close(learned(x), torch.relu(h) @ learned.W.T)
    assert learned.neuron_in_weights().shape == (8, 2, P)
    assert MLPConfig(p=P, width=8, embed="learned", d_embed=5).n_params == sum(p.numel() for p in learned.parameters())


def test_mlp_hooks_expose_hidden_neurons_and_logits(task):
    model = build_model(MLPConfig(p=P, width=16))
    logits, cache = model.run_with_cache(task.inputs)
    assert set(cache.keys()) == {"hook_in_a", "hook_in_b", "hook_pre", "hook_post", "hook_logits"}
    assert cache["hook_post"].shape == (P * P, 16)
    torch.testing.assert_close(cache["hook_post"], torch.relu(cache["hook_pre"]))
    # zero-ablating every hidden neuron through run_with_hooks leaves zero logits (no bias)
    out = model.run_with_hooks(task.inputs, fwd_hooks=[("hook_post", lambda act, hook: act * 0)])
    assert torch.count_nonzero(out) == 0


def test_transformer_parameter_names_and_shapes_match_hooked_transformer():
    cfg = TransformerConfig(p=113)
    model = build_model(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["embed.W_E"] == (114, 128)
    assert shapes["pos_embed.W_pos"] == (3, 128)
    assert shapes["blocks.0.attn.W_Q"] == (4, 128, 32)
    assert shapes["blocks.0.attn.W_O"] == (4, 32, 128)
    assert shapes["blocks.0.attn.b_Q"] == (4, 32)
    assert shapes["blocks.0.mlp.W_in"] == (128, 512)
    assert shapes["blocks.0.mlp.W_out"] == (512, 128)
    assert shapes["unembed.W_U"] == (128, 113)
    assert cfg.n_params == sum(p.numel() for p in model.parameters())
    hooks = set(model.hook_dict)
    for name in [
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.attn.hook_pattern",
        "blocks.0.attn.hook_z",
        "blocks.0.mlp.hook_pre",
        "blocks.0.mlp.hook_post",
        "blocks.0.hook_resid_post",
    ]:
        assert name in hooks


@pytest.mark.parametrize(
    "kw", [{}, dict(causal=False, eq_token=False), dict(attention_rate=0.0), dict(n_layers=2, normalization_type="LN")]
)
def test_transformer_fast_answer_path_equals_full_forward(kw):
    task = Task(TaskSpec(op="x+y", p=P, frac_train=0.5))
    model = build_model(TransformerConfig(p=P, d_model=32, n_heads=2, d_head=16, d_mlp=64, **kw))
    full = model(task.tokens(eq_token=model.cfg.eq_token))[:, -1]
    torch.testing.assert_close(model.pair_logits(task.inputs), full)


def test_attention_rate_zero_gives_constant_attention():
    model = build_model(
        TransformerConfig(
            p=P, d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=0.0, causal=False, eq_token=False
        )
    )
    task = Task(TaskSpec(op="x+y", p=P, frac_train=0.5))
    _, cache = model.run_with_cache(task.tokens(eq_token=False))
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.allclose(pattern, torch.ones_like(pattern))
    # so what attention writes depends on a and b only through E_a + E_b: swapping them changes nothing
    _, cache_swapped = model.run_with_cache(task.inputs.flip(1))
    torch.testing.assert_close(cache["blocks.0.hook_attn_out"][:, -1], cache_swapped["blocks.0.hook_attn_out"][:, -1])


def test_attention_rate_blends_softmax_with_uniform():
    kw = dict(p=P, d_model=32, n_heads=2, d_head=16, d_mlp=64, causal=False, eq_token=False)
    m1 = build_model(TransformerConfig(**kw), seed=3)
    mh = build_model(TransformerConfig(**kw, attention_rate=0.25), seed=3)
    toks = Task(TaskSpec(op="x+y", p=P, frac_train=0.5)).tokens(eq_token=False)[:7]
    _, c1 = m1.run_with_cache(toks)
    _, ch = mh.run_with_cache(toks)
    expected = 0.25 * c1["blocks.0.attn.hook_pattern"] + 0.75
    torch.testing.assert_close(ch["blocks.0.attn.hook_pattern"], expected)


def test_same_seed_gives_same_weights_and_different_seed_differs():
    a = build_model(MLPConfig(p=P, width=8), seed=5)
    b = build_model(MLPConfig(p=P, width=8), seed=5)
    c = build_model(MLPConfig(p=P, width=8), seed=6)
    assert torch.equal(a.U, b.U) and not torch.equal(a.U, c.U)


def test_shared_surface_is_the_same_on_both_families(task):
    for model in [
        build_model(MLPConfig(p=P, width=16)),
        build_model(TransformerConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=24)),
    ]:
        assert model.pair_logits(task.inputs).shape == (P * P, P)
        assert model.neuron_hook in model.hook_dict
        assert model.neuron_out_weights().shape == (model.n_neurons, P)
        metrics = evaluate(model, task)
        for key in ["test_acc", "train_clean_acc", "train_noisy_acc", "train_noisy_true_acc", "test_loss"]:
            assert 0.0 <= metrics[key] <= (1.0 if key.endswith("acc") else 100.0)


def test_evaluate_splits_noisy_examples_by_given_and_true_labels(task):
    """A model that outputs the given training labels exactly scores 1 on train_noisy and 0 on
    train_noisy_true; checked by building the logits directly from the labels."""
    from interp.metrics import subset_metrics

    logits = torch.full((P * P, P), -10.0)
    logits[task.train_idx, task.train_labels] = 10.0
    logits[task.test_idx, task.labels[task.test_idx]] = 10.0
    m = subset_metrics(logits, task)
    assert m["train_noisy_acc"] == 1.0 and m["train_noisy_true_acc"] == 0.0
    assert m["train_clean_acc"] == 1.0 and m["test_acc"] == 1.0
    assert abs(m["train_true_acc"] - (1 - task.noisy_mask.double().mean().item())) < 1e-9


def test_bad_model_inputs_and_configs_give_clear_errors(task):
    mlp = build_model(MLPConfig(p=P, width=8))
    with pytest.raises(ShapeError, match=r"\[batch, 2\]"):
        mlp(torch.zeros(5, 4, dtype=torch.long))  # [batch, 3] is (a, b, answer): see test_tl_surface.py
    with pytest.raises(ShapeError, match="must lie in"):
        mlp(torch.full((2, 2), P))
    other = Task(TaskSpec(op="x+y", p=13, frac_train=0.5))
    with pytest.raises(ShapeError, match="p=11 but the task has p=13"):
        evaluate(mlp, other)
    tr = build_model(TransformerConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=24))
    with pytest.raises(ShapeError, match="n_ctx=3"):
        tr(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(SpecError, match="act"):
        MLPConfig(p=P, width=8, act="tanh")
    with pytest.raises(SpecError, match="attention_rate"):
        TransformerConfig(p=P, attention_rate=1.5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_a_gpu_without_one_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        build_model(MLPConfig(p=P, width=8), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_models_run_on_cuda(task):
    for cfg in [MLPConfig(p=P, width=16), TransformerConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=24)]:
        cpu = build_model(cfg, seed=0)
        gpu = build_model(cfg, seed=0, device="cuda")
        torch.testing.assert_close(
            gpu.pair_logits(task.inputs.cuda()).cpu(), cpu.pair_logits(task.inputs), atol=1e-4, rtol=1e-4
        )
        _, cache = gpu.run_with_cache(task.inputs.cuda() if cfg.family == "mlp" else task.tokens().cuda())
        assert cache[gpu.neuron_hook].is_cuda
