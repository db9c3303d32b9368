"""grokscope's checkpoints follow Hugging Face's convention: a directory of model.safetensors (metadata
format="pt") and config.json, and run-directory weight files, read by `safetensors` and `json` alone.

This module imports nothing from grokscope: the checkpoints are written by a separate Python process,
as a user of another library would receive them.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from interp import Task, TaskSpec
    from interp.checkpoints import save, save_pretrained
    from interp.models import TransformerConfig, build_model
    out = Path(sys.argv[1])
    cfg = TransformerConfig(p=7, d_model=16, n_heads=2, d_head=8, d_mlp=32, diff_vocab=True, act_fn="tanh")
    model = build_model(cfg, seed=0).eval()
    task = Task(TaskSpec(op="x+y", p=7, frac_train=0.5))
    model.save_pretrained(out / "bare")
    save_pretrained(out / "with_task", model, task)
    save(out / "run", model, task)
    tokens = model.pair_tokens(task.inputs)
    (out / "expected.json").write_text(json.dumps({"tokens": tokens.tolist(), "logits": model(tokens)[:, -1].tolist()}))
    """
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    subprocess.run([sys.executable, "-c", WRITER, str(out)], check=True, timeout=300)
    return out


def forward(w: dict, cfg: dict, tokens: torch.Tensor) -> torch.Tensor:
    """The transformer's answer logits from its tensors and config.json alone (no layer norm, no causal mask
    needed at the answer position: it is the last one), as a user of another library would write it."""
    x = w["embed.W_E"][tokens] + w["pos_embed.W_pos"][: tokens.shape[1]]
    for layer in range(cfg["n_layers"]):
        b = f"blocks.{layer}."
        q, k, v = (torch.einsum("bpd,hde->bphe", x, w[b + f"attn.W_{n}"]) + w[b + f"attn.b_{n}"] for n in "QKV")
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / cfg["d_head"] ** 0.5
        if cfg["causal"]:
            scores = scores.masked_fill(~torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril(), float("-inf"))
        pattern = cfg["attention_rate"] * scores.softmax(-1) + (1 - cfg["attention_rate"])
        x = x + torch.einsum("bqhe,hed->bqd", torch.einsum("bkhe,bhqk->bqhe", v, pattern), w[b + "attn.W_O"])
        x = x + w[b + "attn.b_O"]
        post = torch.tanh(x @ w[b + "mlp.W_in"] + w[b + "mlp.b_in"])
        x = x + post @ w[b + "mlp.W_out"] + w[b + "mlp.b_out"]
    return (x @ w["unembed.W_U"] + w["unembed.b_U"])[:, -1]


@pytest.mark.parametrize("folder", ["bare", "with_task"])
def test_a_save_pretrained_directory_loads_with_safetensors_and_json_alone(written, folder):
    directory = written / folder
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["format"] == "pt"
    weights = load_file(str(directory / "model.safetensors"))
    cfg = json.loads((directory / "config.json").read_text())
    assert cfg["model_type"] == "grokscope-transformer" and cfg["family"] == "transformer"
    d_vocab = cfg["p"] * 2 + 1  # diff_vocab: the second operand's own tokens, then '='
    assert weights["embed.W_E"].shape == (d_vocab, cfg["d_model"])
    assert weights["blocks.0.attn.W_Q"].shape == (cfg["n_heads"], cfg["d_model"], cfg["d_head"])
    expected = json.loads((written / "expected.json").read_text())
    logits = forward(weights, cfg, torch.tensor(expected["tokens"]))
    torch.testing.assert_close(logits, torch.tensor(expected["logits"]), atol=1e-5, rtol=1e-5)


def test_run_directory_weight_files_are_plain_safetensors_with_format_pt(written):
    (step,) = (written / "run" / "checkpoints").iterdir()
    with safe_open(str(step), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and json.loads(meta["model_config"])["diff_vocab"] is True
    assert set(load_file(str(step))) == set(load_file(str(written / "bare" / "model.safetensors")))
    assert json.loads((written / "with_task" / "config.json").read_text())["grokscope"]["task_spec"]["p"] == 7
    assert "grokscope" not in json.loads((written / "bare" / "config.json").read_text())
    assert not any(Path(written).rglob("*.tmp"))
