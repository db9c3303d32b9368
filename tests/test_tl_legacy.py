"""Equivalence with TransformerLens's HookedTransformer, which TransformerLens 4 removed.

CI runs this file in a second environment with transformer-lens 3.9 (see .ci/run), where
GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER=1 turns a missing HookedTransformer into a failure.
"""

import dataclasses
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp import Task, TaskSpec
from interp.checkpoints import load
from interp.models import TransformerConfig, build_model, from_pretrained

try:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
except ImportError:  # TransformerLens >= 4
    HookedTransformer = None

pytestmark = pytest.mark.tl_legacy

if HookedTransformer is None:
    if os.environ.get("GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER"):
        raise RuntimeError(
            "GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER is set but this TransformerLens has no HookedTransformer"
        )
    pytest.skip(
        "this TransformerLens has no HookedTransformer; .ci/run runs this file under transformer-lens 3.9",
        allow_module_level=True,
    )


CONFIGS = [
    dict(p=13, d_model=32, n_heads=4, d_head=8, d_mlp=64),  # Nanda's shape, scaled down
    dict(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=64, causal=False, eq_token=False),  # Zhong's
    dict(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=48, n_layers=2, normalization_type="LN", act_fn="gelu"),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_hooked_transformer_state_dict_gives_the_same_logits_and_activations(kw):
    cfg = TransformerConfig(**kw)
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    ours = build_model(cfg, seed=None)
    ours.load_hooked_transformer_state_dict(ht.state_dict())
    task = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5))
    tokens = task.tokens(eq_token=cfg.eq_token)
    theirs_logits, theirs_cache = ht.run_with_cache(tokens)
    ours_logits, ours_cache = ours.run_with_cache(tokens)
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-5, rtol=1e-5)
    assert set(theirs_cache.keys()) <= set(ours_cache.keys())
    for name in theirs_cache.keys():
        torch.testing.assert_close(ours_cache[name], theirs_cache[name], atol=1e-5, rtol=1e-5, msg=name)
    torch.testing.assert_close(ours.pair_logits(task.inputs), theirs_logits[:, -1], atol=1e-5, rtol=1e-5)


def test_our_state_dict_loads_into_hooked_transformer():
    cfg = TransformerConfig(**CONFIGS[0])
    ours = build_model(cfg, seed=1)
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config()))
    missing, unexpected = ht.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all(k.endswith((".IGNORE", ".mask")) for k in missing)
    tokens = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).tokens()
    torch.testing.assert_close(ht(tokens), ours(tokens), atol=1e-5, rtol=1e-5)


def test_importer_reads_a_real_hooked_transformer_run(tmp_path):
    from interp.checkpoints import import_progress_measures

    cfg = TransformerConfig(**CONFIGS[0])
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    f = tmp_path / "full_run_data.pth"
    torch.save(
        {
            "config": ht.cfg,  # the pickled HookedTransformerConfig object, as the paper saved it
            "model": ht.state_dict(),
            "checkpoints": [ht.state_dict()],
            "checkpoint_epochs": [0],
            "train_losses": [1.0, 0.5],
            "test_losses": [1.1, 0.9],
            "train_indices": torch.arange(0, 169, 3),
            "test_indices": torch.tensor([i for i in range(169) if i % 3]),
        },
        f,
    )
    run = import_progress_measures(f)
    tokens = run.task.tokens()
    torch.testing.assert_close(run.final.model(tokens), ht(tokens), atol=1e-5, rtol=1e-5)
    assert run.task.n_train == len(range(0, 169, 3))


def test_a_saved_hooked_transformer_state_dict_loads_through_load_with_its_config(tmp_path):
    cfg = TransformerConfig(**CONFIGS[2])
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    torch.save(ht.state_dict(), tmp_path / "model.pt")
    ckpt = load(tmp_path / "model.pt", config=ht.cfg, task=TaskSpec(op="x+y", p=cfg.p))
    tokens = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).tokens(eq_token=cfg.eq_token)
    torch.testing.assert_close(ckpt.model(tokens), ht(tokens), atol=1e-5, rtol=1e-5)
    assert ckpt.model.cfg == cfg and not ckpt.task.split_known


def hooked_transformer_from_config_json(directory) -> HookedTransformer:
    """What a TransformerLens user does with our folder: HookedTransformerConfig from config.json's
    fields, then the state dict from model.safetensors."""
    cfg = json.loads((directory / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(HookedTransformerConfig)}
    ht = HookedTransformer(HookedTransformerConfig(**{k: cfg[k] for k in fields if k in cfg}))
    missing, unexpected = ht.load_state_dict(load_file(str(directory / "model.safetensors")), strict=False)
    assert not unexpected and all(k.endswith((".IGNORE", ".mask")) for k in missing)  # buffers, not weights
    return ht.eval()


@pytest.mark.parametrize(
    "kw",
    CONFIGS
    + [
        dict(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=64, diff_vocab=True, act_fn="silu"),
        dict(p=13, d_model=32, n_heads=2, d_head=16, n_layers=2, attn_only=True, normalization_type="LN"),
    ],
)
def test_config_json_builds_a_hooked_transformer_with_the_same_logits(tmp_path, kw):
    cfg = TransformerConfig(**kw)
    ours = build_model(cfg, seed=3).eval()
    with torch.no_grad():  # non-zero biases and layer-norm weights, so every term is compared
        for name, prm in ours.named_parameters():
            if not name.split(".")[-1].startswith("W"):
                prm.add_(0.1 * torch.randn(prm.shape, generator=torch.Generator().manual_seed(1)))
    ours.save_pretrained(tmp_path)
    ht = hooked_transformer_from_config_json(tmp_path)
    tokens = ours.pair_tokens(Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).inputs)
    torch.testing.assert_close(ht(tokens), ours(tokens), atol=1e-5, rtol=1e-5)
    # TransformerLens's own weight processing (fold_ln, centring, ...) keeps the log-probabilities
    processed = HookedTransformer(ht.cfg)
    processed.load_and_process_state_dict(load_file(str(tmp_path / "model.safetensors")))
    torch.testing.assert_close(processed(tokens).log_softmax(-1), ours(tokens).log_softmax(-1), atol=1e-4, rtol=1e-4)
    assert from_pretrained(tmp_path).cfg == cfg  # and grokscope reads the same file back


def test_config_json_of_a_model_with_attention_rate_says_why_no_hooked_transformer_matches(tmp_path):
    build_model(
        TransformerConfig(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=64, attention_rate=0.0)
    ).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert "attention_rate=0.0" in cfg["hooked_transformer_incompatible"] and "d_vocab" not in cfg
    fields = {f.name for f in dataclasses.fields(HookedTransformerConfig)}
    with pytest.raises(TypeError, match="n_ctx"):  # no silent wrong model: the config cannot be built
        HookedTransformerConfig(**{k: cfg[k] for k in fields if k in cfg})


def test_an_attention_only_hooked_transformer_folder_imports_with_the_same_logits_and_cache(tmp_path):
    ht_cfg = HookedTransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_head=8, d_vocab=14, d_vocab_out=13, n_ctx=3, attn_only=True, seed=0
    )
    ht = HookedTransformer(ht_cfg).eval()
    save_file({k: v.contiguous() for k, v in ht.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(ht_cfg.to_dict(), default=str))  # dtype, device as strings
    ckpt = load(tmp_path, task=TaskSpec(op="x+y", p=13))  # sniffed: a HookedTransformer folder
    assert ckpt.model.cfg.attn_only
    tokens = Task(TaskSpec(op="x+y", p=13, frac_train=0.5)).tokens()
    theirs_logits, theirs_cache = ht.run_with_cache(tokens)
    ours_logits, ours_cache = ckpt.model.run_with_cache(tokens)
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-5, rtol=1e-5)
    assert set(theirs_cache.keys()) <= set(ours_cache.keys())
    for name in theirs_cache.keys():
        torch.testing.assert_close(ours_cache[name], theirs_cache[name], atol=1e-5, rtol=1e-5, msg=name)


def test_return_type_and_the_gradient_cache_match_a_hooked_transformer():
    cfg = TransformerConfig(**CONFIGS[2])
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    ours = build_model(cfg, seed=None)
    ours.load_hooked_transformer_state_dict(ht.state_dict())
    task = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5))
    tokens = task.tokens()
    answers = task.labels
    # HookedTransformer's next-token loss at the '=' position is our answer loss
    logits = ht(tokens)
    expected = torch.nn.functional.cross_entropy(logits[:, -1], answers)
    with_answers = torch.cat([tokens, answers[:, None]], dim=1)
    torch.testing.assert_close(ours(with_answers, return_type="loss"), expected, atol=1e-5, rtol=1e-5)
    assert ht(tokens, return_type=None) is None and ours(tokens, return_type=None) is None
    # the gradients of the same scalar, through TransformerLens's backward hooks in both models
    names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.mlp.hook_post"]
    cache_ht = {}

    def save(grad, hook):
        cache_ht[hook.name + "_grad"] = grad.detach()

    with ht.hooks(bwd_hooks=[(n, save) for n in names]):
        torch.nn.functional.cross_entropy(ht(tokens)[:, -1], answers).backward()
    _, ours_cache = ours.run_with_cache(with_answers, return_type="loss", incl_bwd=True)
    for name in names:
        torch.testing.assert_close(ours_cache[name + "_grad"], cache_ht[name + "_grad"], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kw", CONFIGS)
def test_the_switched_hooks_hold_what_a_hooked_transformer_puts_there(kw):
    """set_use_attn_result, set_use_split_qkv_input / set_use_attn_in and set_use_hook_mlp_in, on both."""
    cfg = TransformerConfig(**kw)
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    ours = build_model(cfg, seed=None)
    ours.load_hooked_transformer_state_dict(ht.state_dict())
    tokens = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).tokens(eq_token=cfg.eq_token)
    for inputs in ("set_use_split_qkv_input", "set_use_attn_in"):
        for model in (ht, ours):
            model.set_use_split_qkv_input(False)
            model.set_use_attn_in(False)
            model.set_use_attn_result(True)
            model.set_use_hook_mlp_in(True)
            getattr(model, inputs)(True)
        theirs_logits, theirs = ht.run_with_cache(tokens)
        ours_logits, cache = ours.run_with_cache(tokens)
        torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-5, rtol=1e-5)
        switched = [k for k in theirs.keys() if k.endswith(("hook_result", "_input", "hook_attn_in", "hook_mlp_in"))]
        assert len(switched) == cfg.n_layers * (5 if inputs == "set_use_split_qkv_input" else 3)
        assert set(theirs.keys()) <= set(cache.keys())
        for name in switched:
            torch.testing.assert_close(cache[name], theirs[name], atol=1e-5, rtol=1e-5, msg=name)
