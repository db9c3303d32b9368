"""save_pretrained / from_pretrained on grokscope's models, load() of such directories, and weight files
in the older format="grokscope" (the shipped zoo's) still loading beside the new format="pt"."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from interp import Task, TaskSpec, zoo
from interp.checkpoints import load, save, save_pretrained
from interp.errors import CheckpointError
from interp.models import MLP, MLPConfig, Transformer, TransformerConfig, build_model, from_pretrained

TASK = Task(TaskSpec(op="x-y", p=11, frac_train=0.6, seed=2))
CONFIGS = [
    MLPConfig(p=11, width=16, act="quad", bias=True),
    TransformerConfig(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_layers=2, diff_vocab=True, causal=False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["mlp", "transformer"])
def test_save_pretrained_then_from_pretrained_gives_the_same_model(cfg, tmp_path):
    model = build_model(cfg, seed=4).eval()
    model.save_pretrained(tmp_path / "m")
    again = type(model).from_pretrained(tmp_path / "m")
    assert again.cfg == cfg and not again.training
    torch.testing.assert_close(again.pair_logits(TASK.inputs), model.pair_logits(TASK.inputs))
    assert from_pretrained(tmp_path / "m").cfg == cfg  # the family is read from config.json
    other = Transformer if isinstance(model, MLP) else MLP
    with pytest.raises(CheckpointError, match="family"):
        other.from_pretrained(tmp_path / "m")


def test_load_of_a_pretrained_directory_needs_the_task_saved_with_it(tmp_path):
    model = build_model(CONFIGS[1], seed=0)
    model.save_pretrained(tmp_path / "bare")
    with pytest.raises(CheckpointError, match="records no task"):
        load(tmp_path / "bare")
    custom = Task.from_split(TASK.spec, torch.arange(0, 121, 2))
    save_pretrained(tmp_path / "full", model, custom, step=7)
    ckpt = load(tmp_path / "full")
    assert ckpt.step == 7 and torch.equal(ckpt.task.train_idx, custom.train_idx)
    assert load(tmp_path / "full" / "model.safetensors").model.cfg == CONFIGS[1]  # the weights file finds its folder


def test_weight_files_in_the_older_grokscope_format_still_load(tmp_path):
    entry = zoo.path("mlp-noise0-small")
    (shipped,) = (entry / "checkpoints").iterdir()
    with safe_open(str(shipped), framework="pt") as f:
        assert f.metadata()["format"] == "grokscope"  # the zoo was written before format="pt"
    assert load("zoo:mlp-noise0-small").model.cfg.width == 65
    model = build_model(CONFIGS[0], seed=1)
    save(tmp_path / "run", model, TASK)
    (new,) = (tmp_path / "run" / "checkpoints").iterdir()
    with safe_open(str(new), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt"
    save_file(load_file(str(new)), str(new), metadata={**meta, "format": "grokscope"})
    torch.testing.assert_close(load(new).model.pair_logits(TASK.inputs), model.pair_logits(TASK.inputs))


def test_a_pt_safetensors_file_without_grokscope_specs_is_refused_clearly(tmp_path):
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "w.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a grokscope checkpoint"):
        load(tmp_path / "w.safetensors")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "d" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not a grokscope model config"):
        load(tmp_path / "d")
