"""The interventions kernel (`interp.interventions`) tested directly, on both model families: what it
reads equals TransformerLens's `run_with_cache` and a hand computation, what it edits equals a hooked
forward pass per variant, and its closed forms reproduce the logits."""

from __future__ import annotations

import pytest
import torch

from interp import zoo
from interp.errors import ShapeError, SpecError
from interp.interventions import (
    activation_grid,
    as_index_mask,
    cache_hooks,
    closed_form_readout,
    expansion_point,
    layout,
    linear_readout,
    max_rows_for,
    neuron_activations,
    neuron_hook_name,
    resolve_hooks,
    run_variants,
)
from interp.models import TransformerConfig, build_model
from interp.tasks import all_pairs


@pytest.fixture(scope="module")
def mlp():
    return zoo.load("mlp-noise0-small").model  # ReLU MLP with an output bias, p = 59, width 65


@pytest.fixture(scope="module")
def tf():
    return zoo.load("grok-transformer").model  # one layer, p = 53, d_mlp 256


@pytest.fixture(scope="module")
def tf2():
    """A fresh two-layer transformer: hooks with an expansion point inside the network, not at its end."""
    cfg = TransformerConfig(p=11, n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=24)
    return build_model(cfg, seed=3).eval()


def some_pairs(p: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, p, (n, 2), generator=torch.Generator().manual_seed(seed))


def model_input(model, pairs):
    """What `run_with_cache` / `run_with_hooks` take for `pairs`: the pairs (MLP) or their tokens."""
    return model.pair_tokens(pairs) if hasattr(model, "pair_tokens") else pairs


def hooked_answer_logits(model, pairs, hooks):
    """The logits at the answer position of one plain hooked forward pass (TransformerLens's way)."""
    out = model.run_with_hooks(model_input(model, pairs), fwd_hooks=hooks)
    return out[:, -1] if out.ndim == 3 else out


# ----- reading --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "tf", "tf2"])
def test_cache_hooks_equals_run_with_cache(name, request):
    model = request.getfixturevalue(name)
    pairs = all_pairs(model.p)
    hooks = list(model.hook_dict)  # every hook of the model
    logits, acts = cache_hooks(model, pairs, hooks, max_rows=1000)  # several chunks of rows
    out, cache = model.run_with_cache(model_input(model, pairs))
    torch.testing.assert_close(logits, out[:, -1] if out.ndim == 3 else out, rtol=1e-5, atol=1e-5)
    assert set(acts) == set(hooks)
    for h in hooks:
        assert acts[h].shape == cache[h].shape, h
        torch.testing.assert_close(acts[h], cache[h], rtol=1e-5, atol=1e-5, msg=h)


def test_mlp_neuron_activations_and_grid_equal_the_weights_by_hand(mlp):
    """The MLP's hidden layer is relu(U[:, a] + V[:, b]): computed from the weights pair by pair."""
    p = mlp.p
    with torch.no_grad():
        by_hand = torch.stack(
            [torch.relu(mlp.U[:, a] + mlp.V[:, b]) for a in range(p) for b in range(p)]
        )  # the hand loop over every pair
    pairs = all_pairs(p)
    torch.testing.assert_close(neuron_activations(mlp, pairs, max_rows=500), by_hand, rtol=1e-5, atol=1e-6)
    grid = activation_grid(mlp)
    assert grid.shape == (p, p, mlp.cfg.width) and grid.dtype == torch.float32
    torch.testing.assert_close(grid, by_hand.reshape(p, p, -1), rtol=1e-5, atol=1e-6)
    # a short name, and the pre-activation hook
    torch.testing.assert_close(
        neuron_activations(mlp, pairs[:7], hook="pre"), (mlp.U.T[pairs[:7, 0]] + mlp.V.T[pairs[:7, 1]]).detach()
    )


@pytest.mark.parametrize("name", ["tf", "tf2"])
def test_transformer_neuron_activations_and_grid_equal_a_loop_over_pairs(name, request):
    """The fast path (last layer at the answer position only) against one full forward pass per pair."""
    model = request.getfixturevalue(name)
    hook = model.neuron_hook
    pairs = some_pairs(model.p, 40, seed=1)
    loop = []
    for a, b in pairs.tolist():
        _, cache = model.run_with_cache(model.pair_tokens(torch.tensor([[a, b]])), names_filter=hook)
        loop.append(cache[hook][0, -1])
    loop = torch.stack(loop)
    torch.testing.assert_close(neuron_activations(model, pairs), loop, rtol=1e-5, atol=1e-5)
    grid = activation_grid(model)
    assert grid.shape == (model.p, model.p, model.cfg.d_mlp)
    torch.testing.assert_close(grid[pairs[:, 0], pairs[:, 1]], loop, rtol=1e-5, atol=1e-5)


# ----- editing: run_variants ------------------------------------------------------------------------

# (model fixture, hook, whether run_variants switches to k*B rows inside the network (an expansion point)
# or repeats the inputs)
CASES = [
    ("mlp", "hook_post", True),
    ("mlp", "hook_pre", True),
    ("mlp", "hook_in_a", False),
    ("tf", "blocks.0.mlp.hook_post", True),
    ("tf", "blocks.0.attn.hook_z", True),
    ("tf", "hook_embed", False),
    ("tf2", "blocks.0.mlp.hook_post", True),
    ("tf2", "blocks.1.hook_resid_pre", True),
    ("tf2", "blocks.1.attn.hook_v", True),
    ("tf2", "hook_pos_embed", False),
]


def zero_unit(j):
    def hook(act, hook):
        act = act.clone()
        act[..., j] = 0.0
        return act

    return hook


@pytest.mark.parametrize("name,hook,expands", CASES)
def test_run_variants_identity_and_zeroing_edits(name, hook, expands, request):
    model = request.getfixturevalue(name)
    assert (expansion_point(model, hook) is not None) == expands
    pairs = some_pairs(model.p, 12, seed=2)
    n_variants = 5
    max_rows = 2 * len(pairs)  # two variants per pass: three chunks, the last one short
    keep = lambda logits, sl: logits.clone()  # noqa: E731

    plain = hooked_answer_logits(model, pairs, [])
    same = torch.cat(run_variants(model, pairs, n_variants, {hook: lambda act, sl: act}, keep, max_rows=max_rows))
    assert same.shape == (n_variants, len(pairs), model.p)
    for j in range(n_variants):
        torch.testing.assert_close(same[j], plain, rtol=1e-5, atol=1e-5)

    def zero_variant_unit(act, sl):  # act [k, B, ...]: variant v zeroes unit v of the last axis
        act = act.clone()
        for i, v in enumerate(range(sl.start, sl.stop)):
            act[i, ..., v] = 0.0
        return act

    edited = torch.cat(run_variants(model, pairs, n_variants, {hook: zero_variant_unit}, keep, max_rows=max_rows))
    for j in range(n_variants):
        expected = hooked_answer_logits(model, pairs, [(hook, zero_unit(j))])
        torch.testing.assert_close(edited[j], expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(expected, plain)  # the edit changes something: the check has teeth


@pytest.mark.parametrize(
    "name,hooks", [("mlp", ("hook_in_b", "hook_post")), ("tf2", ("blocks.0.hook_attn_out", "blocks.1.mlp.hook_pre"))]
)
def test_run_variants_with_two_edited_hooks_repeats_the_inputs(name, hooks, request):
    model = request.getfixturevalue(name)
    pairs = some_pairs(model.p, 9, seed=4)
    first, second = hooks

    def scale(factor):
        def edit(act, sl):
            f = torch.tensor([factor * (v + 1) for v in range(sl.start, sl.stop)]).reshape(-1, *[1] * (act.ndim - 1))
            return act * f

        return edit

    out = torch.cat(
        run_variants(model, pairs, 3, {first: scale(0.5), second: scale(-1.0)}, lambda lg, sl: lg, max_rows=9)
    )
    for v in range(3):
        expected = hooked_answer_logits(
            model,
            pairs,
            [(first, lambda a, hook, v=v: a * 0.5 * (v + 1)), (second, lambda a, hook, v=v: a * -1.0 * (v + 1))],
        )
        torch.testing.assert_close(out[v], expected, rtol=1e-5, atol=1e-5)


def test_run_variants_reduce_sees_each_chunk_and_its_variants(mlp):
    pairs = some_pairs(mlp.p, 4)
    seen = []
    out = run_variants(
        mlp,
        pairs,
        7,
        {"hook_post": lambda a, sl: a},
        lambda lg, sl: seen.append((sl, lg.shape)) or lg.sum(),
        max_rows=12,
    )
    assert [s for s, _ in seen] == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert [shape for _, shape in seen] == [(3, 4, mlp.p), (3, 4, mlp.p), (1, 4, mlp.p)]
    assert len(out) == 3


# ----- closed forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,short", [("mlp", "post"), ("mlp", "pre"), ("tf", "post"), ("tf", "pre"), ("tf2", "post"), ("tf2", "pre")]
)
def test_linear_readout_reproduces_the_logits_of_a_changed_activation(name, short, request):
    """logits = transform(act)[answer position] @ readout + rest: change the activation through a hook and
    the logits move by exactly transform(new) @ readout - transform(old) @ readout."""
    model = request.getfixturevalue(name)
    hook = neuron_hook_name(model, short)
    readout, transform = linear_readout(model, hook)
    pairs = some_pairs(model.p, 16, seed=5)
    _, acts = cache_hooks(model, pairs, [hook])
    old = acts[hook]
    new = old + torch.randn(old.shape, generator=torch.Generator().manual_seed(0))  # changed at every position
    logits_old = hooked_answer_logits(model, pairs, [])
    logits_new = hooked_answer_logits(model, pairs, [(hook, lambda act, hook: new)])
    answer = (lambda x: x[:, -1]) if old.ndim == 3 else (lambda x: x)
    with torch.no_grad():
        predicted = logits_old + (answer(transform(new)) - answer(transform(old))) @ readout
        rest = logits_old - answer(transform(old)) @ readout  # what the hook does not touch: the same both times
    torch.testing.assert_close(logits_new, predicted, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits_new - answer(transform(new)) @ readout, rest, rtol=1e-4, atol=1e-4)
    assert (logits_new - logits_old).abs().max() > 1e-2


def test_linear_readout_is_none_where_the_logits_do_not_read_the_hook_linearly(mlp, tf2):
    assert linear_readout(mlp, "hook_in_a") is None
    assert linear_readout(mlp, "hook_logits") is None
    assert linear_readout(tf2, "blocks.0.mlp.hook_post") is None  # another layer follows
    assert linear_readout(tf2, "blocks.1.hook_resid_pre") is None
    ln = build_model(TransformerConfig(p=7, d_model=8, n_heads=1, d_head=8, d_mlp=8, normalization_type="LN"), seed=0)
    assert linear_readout(ln, "blocks.0.mlp.hook_post") is None  # a final layer norm divides by the norm
    with pytest.raises(SpecError, match="not read linearly"):
        closed_form_readout(mlp, "hook_in_a", "closed_form", "test")
    with pytest.raises(SpecError, match="method"):
        closed_form_readout(mlp, "hook_post", "fast", "test")
    assert closed_form_readout(mlp, "hook_post", "expanded_batch", "test") is None
    assert closed_form_readout(mlp, "hook_in_a", "auto", "test") is None
    assert closed_form_readout(mlp, "hook_post", "auto", "test") is not None


# ----- names ----------------------------------------------------------------------------------------


def test_expansion_points_are_the_documented_hooks(mlp, tf, tf2):
    # MLP: the hidden layer and the logits carry the whole state; the two input branches do not.
    assert [expansion_point(mlp, h) for h in ("hook_pre", "hook_post", "hook_logits", "hook_in_a", "hook_in_b")] == [
        "hook_pre",
        "hook_post",
        "hook_logits",
        None,
        None,
    ]
    # Transformer: the residual stream at the start of the hook's block (or of its half), the hook itself
    # when it is on the residual stream, None for the embeddings.
    expected = {
        "blocks.1.attn.hook_z": "blocks.1.hook_resid_pre",
        "blocks.1.attn.hook_pattern": "blocks.1.hook_resid_pre",
        "blocks.0.hook_attn_out": "blocks.0.hook_resid_pre",
        "blocks.0.mlp.hook_post": "blocks.0.hook_resid_mid",
        "blocks.1.mlp.hook_pre": "blocks.1.hook_resid_mid",
        "blocks.0.hook_mlp_out": "blocks.0.hook_resid_mid",
        "blocks.1.hook_resid_mid": "blocks.1.hook_resid_mid",
        "blocks.1.hook_resid_post": "blocks.1.hook_resid_post",
        "hook_embed": None,
        "hook_pos_embed": None,
    }
    assert {h: expansion_point(tf2, h) for h in expected} == expected
    for h in tf.hook_dict:  # every expansion point is a hook the model has
        point = expansion_point(tf, h)
        assert point is None or point in tf.hook_dict


def test_resolve_hooks_and_layouts(mlp, tf2):
    assert resolve_hooks(tf2, "z") == [(0, "blocks.0.attn.hook_z"), (1, "blocks.1.attn.hook_z")]
    assert resolve_hooks(tf2, "post", layers=[1]) == [(1, "blocks.1.mlp.hook_post")]
    assert resolve_hooks(tf2, "resid_pre", layers=0) == [(0, "blocks.0.hook_resid_pre")]
    assert resolve_hooks(tf2, "embed") == [(None, "hook_embed")]
    assert resolve_hooks(tf2, "blocks.1.mlp.hook_pre") == [(1, "blocks.1.mlp.hook_pre")]
    assert resolve_hooks(mlp, "post") == [(None, "hook_post")]
    assert resolve_hooks(mlp, "hook_in_b") == [(None, "hook_in_b")]
    for short in tf2.BLOCK_HOOKS:
        assert all(name in tf2.hook_dict for _, name in resolve_hooks(tf2, short))
    with pytest.raises(SpecError, match="short name"):
        resolve_hooks(tf2, "mlp_post")
    with pytest.raises(SpecError, match="layer"):
        resolve_hooks(tf2, "z", layers=[2])
    assert neuron_hook_name(tf2, None) == "blocks.1.mlp.hook_post"  # the last layer's neurons
    assert neuron_hook_name(tf2, "pre") == "blocks.1.mlp.hook_pre"
    assert neuron_hook_name(mlp, None) == "hook_post"
    assert layout(mlp, "hook_post") == "units"
    assert [
        layout(tf2, h) for h in ("blocks.0.hook_resid_pre", "blocks.0.attn.hook_z", "blocks.0.attn.hook_pattern")
    ] == [
        "pos_units",
        "pos_head",
        "head_qk",
    ]


# ----- small helpers --------------------------------------------------------------------------------


def test_as_index_mask():
    assert as_index_mask([1, 3], 5).tolist() == [False, True, False, True, False]
    assert as_index_mask(torch.tensor([4]), 5).tolist() == [False, False, False, False, True]
    assert as_index_mask([], 3).tolist() == [False, False, False]
    mask = torch.tensor([True, False, True])
    assert as_index_mask(mask, 3).tolist() == mask.tolist()
    with pytest.raises(ShapeError, match=r"mask must have shape \[4\]"):
        as_index_mask(mask, 4)
    with pytest.raises(ShapeError, match=r"lie in \[0, 5\)"):
        as_index_mask([0, 5], 5)
    with pytest.raises(ShapeError, match=r"heads indices must lie in \[0, 2\)"):
        as_index_mask([-1], 2, what="heads")


def test_max_rows(mlp):
    assert max_rows_for(mlp, 7) == 7
    assert max_rows_for(mlp, None) >= 1
    with pytest.raises(SpecError, match="max_rows"):
        max_rows_for(mlp, 0)
