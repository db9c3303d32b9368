"""Files between grokscope and TransformerLens: config.json carries the HookedTransformerConfig of the
architecture (or says why there is none), and a Hugging Face folder whose config.json is a
HookedTransformerConfig imports as a HookedTransformer checkpoint, refused by the name of any feature
grokscope's transformer lacks. (Building a HookedTransformer from the files: tests/test_tl_legacy.py.)"""

import json

import pytest
import torch
from safetensors.torch import save_file

from interp import Task, TaskSpec
from interp.checkpoints import load
from interp.errors import CheckpointError
from interp.models import MLPConfig, TransformerConfig, build_model, from_pretrained

P = 13
SMALL = dict(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=32)


def hooked_transformer_folder(directory, model, config: dict):
    """model.safetensors + a HookedTransformerConfig config.json, as a TransformerLens user saves them."""
    directory.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_config_json_carries_the_hooked_transformer_config_beside_ours(tmp_path):
    cfg = TransformerConfig(**SMALL, n_layers=2, normalization_type="LN", causal=False, diff_vocab=True)
    build_model(cfg).save_pretrained(tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["model_type"] == "grokscope-transformer" and doc["family"] == "transformer"
    assert {k: doc[k] for k in ("d_vocab", "d_vocab_out", "n_ctx", "act_fn", "normalization_type")} == {
        "d_vocab": 2 * P + 1,
        "d_vocab_out": P,
        "n_ctx": 3,
        "act_fn": "relu",
        "normalization_type": "LN",
    }
    assert doc["attention_dir"] == "bidirectional" and doc["positional_embedding_type"] == "standard"
    assert doc["attn_scale"] == pytest.approx(8**0.5) and doc["attn_only"] is False
    assert "hooked_transformer_incompatible" not in doc
    assert TransformerConfig.from_hooked_transformer_config(doc) == cfg  # the twin describes the same model
    assert from_pretrained(tmp_path).cfg == cfg


@pytest.mark.parametrize(
    "kw, why",
    [(dict(attention_rate=0.3), "attention_rate=0.3"), (dict(act_fn="quad"), "act_fn='quad'")],
)
def test_config_json_says_why_no_hooked_transformer_computes_the_model(tmp_path, kw, why):
    cfg = TransformerConfig(**SMALL, **kw)
    build_model(cfg).save_pretrained(tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    assert why in doc["hooked_transformer_incompatible"] and "other logits" in doc["hooked_transformer_incompatible"]
    assert "d_vocab" not in doc and "n_ctx" not in doc  # no HookedTransformerConfig to build by mistake
    assert from_pretrained(tmp_path).cfg == cfg
    build_model(MLPConfig(p=P, width=8)).save_pretrained(tmp_path / "mlp")
    mlp_doc = json.loads((tmp_path / "mlp" / "config.json").read_text())
    assert "not a transformer" in mlp_doc["hooked_transformer_incompatible"]
    assert from_pretrained(tmp_path / "mlp").cfg == MLPConfig(p=P, width=8)


@pytest.mark.parametrize("attn_only", [False, True])
def test_a_hooked_transformer_folder_is_sniffed_and_imported_with_the_same_logits(tmp_path, attn_only):
    cfg = TransformerConfig(**SMALL, n_layers=2, attn_only=attn_only)
    model = build_model(cfg, seed=0).eval()
    folder = hooked_transformer_folder(tmp_path / "ht", model, cfg.hooked_transformer_config())
    tokens = Task(TaskSpec(op="x+y", p=P, frac_train=0.5)).tokens()
    for path in (folder, folder / "model.safetensors"):
        ckpt = load(path, task=TaskSpec(op="x+y", p=P))
        assert ckpt.model.cfg == cfg and not ckpt.task.split_known
        torch.testing.assert_close(ckpt.model(tokens), model(tokens))
    with pytest.raises(CheckpointError, match="does not record its task"):
        load(folder)


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(positional_embedding_type="rotary"), "positional_embedding_type='rotary'"),
        (dict(normalization_type="LNPre"), "normalization_type='LNPre'.*fold_ln"),
        (dict(normalization_type="RMS"), "RMS norm"),
        (dict(gated_mlp=True), "gated_mlp=True"),
        (dict(n_key_value_heads=1), "grouped-query attention"),
        (dict(act_fn="solu_ln"), "act_fn='solu_ln'"),
        (dict(parallel_attn_mlp=True, use_attn_scale=False), "parallel_attn_mlp=True.*use_attn_scale=False"),
    ],
)
def test_an_unsupported_hooked_transformer_config_is_refused_by_the_name_of_its_feature(tmp_path, change, named):
    model = build_model(TransformerConfig(**SMALL), seed=0)
    folder = hooked_transformer_folder(tmp_path, model, {**model.cfg.hooked_transformer_config(), **change})
    with pytest.raises(CheckpointError, match=named):
        load(folder, task=TaskSpec(op="x+y", p=P))


def test_mlp_weights_and_attn_only_that_disagree_are_named(tmp_path):
    with_mlp = build_model(TransformerConfig(**SMALL), seed=0)
    attn_only = build_model(TransformerConfig(**SMALL, attn_only=True), seed=0)
    folder = hooked_transformer_folder(tmp_path / "a", attn_only, with_mlp.cfg.hooked_transformer_config())
    with pytest.raises(CheckpointError, match="no MLP weights.*attn_only=False"):
        load(folder, task=TaskSpec(op="x+y", p=P))
    folder = hooked_transformer_folder(tmp_path / "b", with_mlp, attn_only.cfg.hooked_transformer_config())
    with pytest.raises(CheckpointError, match="attn_only=True but the state dict has MLP weights"):
        load(folder, task=TaskSpec(op="x+y", p=P))


def test_a_folder_of_another_librarys_config_is_named(tmp_path):
    model = build_model(TransformerConfig(**SMALL), seed=0)
    folder = hooked_transformer_folder(tmp_path, model, {"model_type": "gpt2", "n_embd": 16})
    with pytest.raises(CheckpointError, match="not a grokscope model config.*model_type='gpt2'"):
        load(folder)
