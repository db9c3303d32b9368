"""HookedTransformer's calling surface on grokscope's models: `return_type` and the loss, the gradient
cache, start/stop_at_layer, the tokens helpers, OV / QK, TransformerLens 4's logit lens, and
attention-only transformers."""

import pytest
import torch
import torch.nn.functional as F
from transformer_lens.FactoredMatrix import FactoredMatrix

from circuits.patching import activation_patch
from interp import Task, TaskSpec, zoo
from interp.errors import ShapeError, SpecError
from interp.models import MLPConfig, TransformerConfig, build_model
from interp.models.tl_surface import Output

P = 13


@pytest.fixture(scope="module")
def task():
    return Task(TaskSpec(op="x+y", p=P, frac_train=0.5))


@pytest.fixture(scope="module")
def grok():
    ckpt = zoo.load("grok-transformer")
    return ckpt.model.eval(), ckpt.task


def with_answers(model, task, n=16):
    """Tokens `a b = c` [n, n_ctx + 1] and their answers."""
    pairs, labels = task.inputs[:n], task.labels[:n]
    return torch.cat([model.pair_tokens(pairs), labels[:, None]], dim=1), labels


def test_return_types_mean_what_they_mean_on_a_hooked_transformer(grok):
    model, task = grok
    tokens, labels = with_answers(model, task)
    logits = model(tokens[:, :-1])
    assert torch.equal(model(tokens[:, :-1], return_type="logits"), logits)
    assert torch.equal(model(tokens), logits)  # the answer column is not read as input
    expected = F.cross_entropy(logits[:, -1], labels)
    loss = model(tokens, return_type="loss")
    assert loss.ndim == 0 and torch.allclose(loss, expected)
    both = model(tokens, "both")  # return_type is the second positional argument, as in TransformerLens
    assert isinstance(both, Output) and torch.equal(both.logits, logits) and torch.allclose(both.loss, expected)
    logits_, loss_ = both  # a NamedTuple, as HookedTransformer's Output
    per_token = model(tokens, return_type="loss", loss_per_token=True)
    assert per_token.shape == (16, 1)  # one predicted position per sequence (HookedTransformer: [batch, pos - 1])
    torch.testing.assert_close(per_token[:, 0], F.cross_entropy(logits[:, -1], labels, reduction="none"))
    torch.testing.assert_close(model(tokens[:, :-1], return_type="loss", labels=labels), expected)
    assert model(tokens, return_type=None) is None


def test_a_loss_without_answers_or_an_unknown_return_type_is_a_clear_error(grok):
    model, task = grok
    tokens, labels = with_answers(model, task)
    with pytest.raises(SpecError, match="carries no answers.*labels="):
        model(tokens[:, :-1], return_type="loss")
    with pytest.raises(SpecError, match="return_type"):
        model(tokens, return_type="probs")
    with pytest.raises(SpecError, match="labels"):
        model(tokens, return_type="loss", labels=labels)  # the answers twice
    with pytest.raises(ShapeError, match=r"labels must be integer answers of shape \[16\]"):
        model(tokens[:, :-1], return_type="loss", labels=labels[:3])
    with pytest.raises(ShapeError, match="answers"):
        model(torch.cat([tokens[:, :-1], torch.full((16, 1), model.p)], 1), return_type="loss")
    with pytest.raises(SpecError, match="BOS"):
        model(tokens, prepend_bos=True)


def test_run_with_hooks_passes_return_type_and_a_hook_changes_the_loss(grok):
    model, task = grok
    tokens, _ = with_answers(model, task)

    def ablate_head_0(z, hook):
        z[:, :, 0] = 0.0
        return z

    clean = model.run_with_hooks(tokens, return_type="loss")
    ablated = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[("blocks.0.attn.hook_z", ablate_head_0)])
    assert clean.ndim == 0 and torch.allclose(clean, model(tokens, return_type="loss"))
    assert not torch.allclose(ablated, clean)
    logits = model.run_with_hooks(tokens, return_type="logits", fwd_hooks=[("blocks.0.attn.hook_z", ablate_head_0)])
    torch.testing.assert_close(F.cross_entropy(logits[:, -1], tokens[:, -1]), ablated)


def test_gradient_cache_holds_the_gradients_of_the_loss_under_transformer_lens_names(grok):
    model, task = grok
    tokens, _ = with_answers(model, task)
    model.zero_grad()
    loss, cache = model.run_with_cache(tokens, return_type="loss", incl_bwd=True)
    model.zero_grad()
    for name in ("blocks.0.hook_resid_post", "blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_post", "hook_embed"):
        assert cache[name + "_grad"].shape == cache[name].shape
    # the gradient of the loss with respect to an activation, recomputed by patching it in as a leaf
    resid = cache["blocks.0.hook_resid_mid"].clone().requires_grad_(True)
    loss_again = model.run_with_hooks(
        tokens, return_type="loss", fwd_hooks=[("blocks.0.hook_resid_mid", lambda act, hook: resid)]
    )
    (grad,) = torch.autograd.grad(loss_again, resid)
    torch.testing.assert_close(cache["blocks.0.hook_resid_mid_grad"], grad)
    with pytest.raises(RuntimeError, match="return_type='loss'"):
        model.run_with_cache(tokens[:, :-1], incl_bwd=True)  # logits: no scalar to backpropagate
    with torch.no_grad(), pytest.raises(RuntimeError, match="enable_grad"):
        model.run_with_cache(tokens, return_type="loss", incl_bwd=True)


def test_start_and_stop_at_layer_split_the_forward_pass_as_transformer_lens_does(task):
    cfg = TransformerConfig(p=P, n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, normalization_type="LN")
    model = build_model(cfg, seed=0).eval()
    tokens, labels = with_answers(model, task)
    logits, cache = model.run_with_cache(tokens[:, :-1])
    resid = model(tokens[:, :-1], stop_at_layer=1)
    torch.testing.assert_close(resid, cache["blocks.1.hook_resid_pre"])
    torch.testing.assert_close(model(resid, start_at_layer=1), logits)
    torch.testing.assert_close(
        model(resid, start_at_layer=-1, return_type="loss", tokens=tokens), model(tokens, "loss")
    )
    assert torch.equal(model(tokens, stop_at_layer=0), cache["blocks.0.hook_resid_pre"])


def test_the_mlp_reads_return_type_with_answers_as_a_third_column(task):
    model = build_model(MLPConfig(p=P, width=32), seed=0)
    pairs, labels = task.inputs[:20], task.labels[:20]
    logits = model(pairs)
    triples = torch.cat([pairs, labels[:, None]], dim=1)
    assert torch.equal(model(triples), logits)
    torch.testing.assert_close(model(triples, return_type="loss"), F.cross_entropy(logits, labels))
    assert model(triples, return_type="loss", loss_per_token=True).shape == (20,)
    torch.testing.assert_close(model(pairs, return_type="both", labels=labels).loss, F.cross_entropy(logits, labels))
    one_hot = F.one_hot(pairs, P).float()  # the soft one-hot input takes labels= for its loss
    torch.testing.assert_close(model(one_hot, return_type="loss", labels=labels), F.cross_entropy(logits, labels))
    loss, cache = model.run_with_cache(triples, return_type="loss", incl_bwd=True)
    assert cache["hook_post_grad"].shape == (20, 32) and cache["post"].shape == (20, 32)
    with pytest.raises(SpecError, match="carries no answers"):
        model(pairs, return_type="loss")


def test_to_tokens_reads_problems_written_as_text_or_rows(grok, task):
    model, _ = grok
    eq = model.cfg.d_vocab - 1
    assert model.to_tokens("3 5 =").tolist() == [[3, 5, eq]]
    assert model.to_tokens(["3 + 5 = 8", "1 2 = 3"]).tolist() == [[3, 5, eq, 8], [1, 2, eq, 3]]
    assert torch.equal(model.to_tokens(task.inputs[:4] % model.p), model.pair_tokens(task.inputs[:4] % model.p))
    assert model.to_str_tokens("3 5 = 8") == ["3", "5", "=", "8"]
    assert model.to_string(model.to_tokens(["3 5", "4 4"])) == ["3 5 =", "4 4 ="]
    assert model.to_single_token("=") == eq and model.to_single_token("7") == 7
    torch.testing.assert_close(model("3 + 5 = 8", return_type="loss"), model(model.to_tokens("3 5 = 8"), "loss"))
    zhong = build_model(TransformerConfig(p=P, eq_token=False, diff_vocab=True, d_model=16, d_head=8, d_mlp=8))
    assert zhong.to_tokens("3 5").tolist() == [[3, P + 5]] and zhong.to_str_tokens(zhong.to_tokens("3 5")) == ["3", "5"]
    mlp = build_model(MLPConfig(p=P, width=8))
    assert mlp.to_tokens("3 + 5 = 8").tolist() == [[3, 5, 8]]
    for bad in ("3 5 6 7", "3 = 5", "three plus five", "3 5 = 8 ="):
        with pytest.raises(SpecError, match="to_tokens"):
            model.to_tokens(bad)
    with pytest.raises(ShapeError, match=r"\[0, 53\)"):
        model.to_tokens("60 1 =")


def test_ov_and_qk_are_factored_matrices_of_every_head(grok):
    model, _ = grok
    assert isinstance(model.OV, FactoredMatrix) and model.OV.shape == (1, 4, 64, 64)
    torch.testing.assert_close(model.OV[0, 2].AB, model.W_V[0, 2] @ model.W_O[0, 2])
    torch.testing.assert_close(model.QK[0, 1].AB, model.W_Q[0, 1] @ model.W_K[0, 1].T)
    torch.testing.assert_close(model.blocks[0].attn.OV.AB, model.OV[0].AB)
    torch.testing.assert_close(model.blocks[0].attn.QK.AB, model.QK[0].AB)
    assert model.b_Q.shape == (1, 4, 16) and model.W_E_pos.shape == (model.cfg.d_vocab + 3, 64)


@pytest.mark.parametrize("normalization_type", [None, "LN"])
def test_transformer_lens_logit_lens_reads_our_residual_stream(task, normalization_type):
    from transformer_lens import ActivationCache

    if not hasattr(ActivationCache, "logit_lens"):
        pytest.skip("ActivationCache.logit_lens is TransformerLens 4's")
    cfg = TransformerConfig(
        p=P, n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, normalization_type=normalization_type
    )
    model = build_model(cfg, seed=0).eval()
    tokens = model.pair_tokens(task.inputs[:10])
    logits, cache = model.run_with_cache(tokens)
    lens = cache.logit_lens()
    assert lens.labels == ["0_pre", "1_pre", "final_post"] and lens.values.shape == (3, 10, P)
    torch.testing.assert_close(lens.values[-1], logits[:, -1], atol=1e-5, rtol=1e-5)  # the last entry is the model
    ranks = cache.logit_lens(targets=task.labels[:10]).rank_trajectory()  # per-example answers
    assert ranks.shape == (3, 10)


def test_the_mlp_cache_says_why_it_has_no_logit_lens():
    model = build_model(MLPConfig(p=P, width=8), seed=0)
    _, cache = model.run_with_cache(torch.tensor([[1, 2]]))
    for method, why in (("accumulated_resid", "no residual stream"), ("stack_head_results", "no attention heads")):
        with pytest.raises(SpecError, match=why):
            getattr(cache, method)()
    if hasattr(cache, "logit_lens"):
        with pytest.raises(SpecError, match="only readout is the logits"):
            cache.logit_lens()


def test_an_attention_only_transformer_runs_caches_and_refuses_neuron_analyses(task):
    cfg = TransformerConfig(p=P, n_layers=2, d_model=16, n_heads=2, d_head=8, attn_only=True)
    model = build_model(cfg, seed=0).eval()
    assert not any(".mlp." in k or ".ln2." in k for k in model.state_dict())
    assert "blocks.0.hook_resid_mid" not in model.hook_dict and "blocks.0.hook_mlp_out" not in model.hook_dict
    tokens = model.pair_tokens(task.inputs[:8])
    logits, cache = model.run_with_cache(tokens)
    parts, labels = cache.decompose_resid(return_labels=True)
    assert labels == ["embed", "pos_embed", "0_attn_out", "1_attn_out"]
    torch.testing.assert_close(parts.sum(0) @ model.W_U + model.b_U, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.pair_logits(task.inputs[:8]), logits[:, -1], atol=1e-6, rtol=1e-6)
    assert cfg.n_params == sum(p.numel() for p in model.parameters())
    assert cfg.to_dict()["attn_only"] is True and "attn_only" not in TransformerConfig(p=P).to_dict()
    for what in (lambda: model.neuron_hook, model.neuron_out_weights, lambda: model.hidden_act):
        with pytest.raises(SpecError, match="attention-only"):
            what()
    heads = activation_patch(model, task, hook="z", per="head", n_pairs=8)  # attention analyses run
    assert heads.values.shape == (2, 2)
    with pytest.raises(SpecError, match="attn_only=True"):
        activation_patch(model, task, hook="post", n_pairs=8)


def test_hookedtransformer_switches_add_the_per_head_hooks_and_leave_the_logits_alone(task):
    cfg = TransformerConfig(p=P, n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, normalization_type="LN")
    model = build_model(cfg, seed=0).eval()
    tokens = model.pair_tokens(task.inputs[:8])
    before, plain = model.run_with_cache(tokens)
    plain_hooks = set(plain.keys())  # before stack_head_results adds the head results to the cache
    assert "blocks.0.attn.hook_result" not in model.hook_dict  # off by default, as on a HookedTransformer
    with pytest.raises(SpecError, match=r"set_use_attn_result\(True\)"):
        model.resolve_hook("blocks.0.attn.hook_result")

    model.set_use_attn_result(True)
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, before, atol=1e-6, rtol=1e-6)
    for layer in range(2):
        result = cache["result", layer]  # [batch, pos, head, d_model]
        assert result.shape == (8, 3, 2, 16)
        attn = model.blocks[layer].attn
        torch.testing.assert_close(result.sum(-2) + attn.b_O, plain["attn_out", layer], atol=1e-5, rtol=1e-5)
        z = plain["z", layer]
        torch.testing.assert_close(result, torch.einsum("bphe,hed->bphd", z, attn.W_O), atol=1e-5, rtol=1e-5)
        for name in ("q_input", "k_input", "v_input"):  # a copy of the residual stream per head
            x = cache[f"blocks.{layer}.hook_{name}"]
            assert x.shape == (8, 3, 2, 16)
            torch.testing.assert_close(x, plain["resid_pre", layer][:, :, None].expand(-1, -1, 2, -1))
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_mlp_in"], plain["resid_mid", layer])
    torch.testing.assert_close(
        cache.stack_head_results(layer=-1), plain.stack_head_results(layer=-1), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(model.pair_logits(task.inputs[:8]), before[:, -1], atol=1e-5, rtol=1e-5)

    # the per-head inputs are separate: zeroing head 1's key input changes head 1 only
    def zero_head_1(x, hook):
        x[:, :, 1] = 0.0
        return x

    with model.hooks(fwd_hooks=[("blocks.0.hook_k_input", zero_head_1)]):
        _, edited = model.run_with_cache(tokens)
    torch.testing.assert_close(edited["blocks.0.attn.hook_k"][:, :, 0], plain["blocks.0.attn.hook_k"][:, :, 0])
    assert not torch.allclose(edited["blocks.0.attn.hook_k"][:, :, 1], plain["blocks.0.attn.hook_k"][:, :, 1])
    # a per-head ablation at hook_result is the same as at hook_z
    heads_result = activation_patch(model, task, hook="blocks.1.attn.hook_result", per="head", n_pairs=8)
    heads_z = activation_patch(model, task, hook="blocks.1.attn.hook_z", per="head", n_pairs=8)
    torch.testing.assert_close(heads_result.values, heads_z.values, atol=1e-5, rtol=1e-5)

    with pytest.raises(SpecError, match=r"set_use_split_qkv_input\(False\)"):
        model.set_use_attn_in(True)  # they exclude each other, as in TransformerLens
    model.set_use_split_qkv_input(False)
    model.set_use_attn_in(True)
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.1.hook_attn_in"].shape == (8, 3, 2, 16) and "blocks.1.hook_q_input" not in cache
    for switch in ("set_use_attn_result", "set_use_attn_in", "set_use_hook_mlp_in"):
        getattr(model, switch)(False)
    assert set(model.hook_dict) == plain_hooks  # every hook in hook_dict fires, and only those
    with pytest.raises(SpecError, match="True or False"):
        model.set_use_attn_result("yes")
    attn_only = build_model(TransformerConfig(p=P, d_model=16, n_heads=2, d_head=8, attn_only=True), seed=0)
    with pytest.raises(SpecError, match="attention-only"):
        attn_only.set_use_hook_mlp_in(True)
