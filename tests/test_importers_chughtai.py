"""Chughtai et al.'s run folders (cfg.json + model.pt) import as grokscope checkpoints: their element
order and law, their split, and logits equal to their forward passes, written below in plain torch from
their state dict (OneLayerMLP; a TransformerLens 0.2 HookedTransformer) independently of the importer.
The labels are recomputed with SymPy the way their code composes (`perm_to_idx(idx_to_perm(x) *
idx_to_perm(y))`), not with interp.groups."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interp.checkpoints import load, load_run
from interp.errors import CheckpointError, UnsafeCheckpointError
from probes.representations import rep_metrics


def their_elements(group: str, n: int) -> list:
    from sympy.combinatorics import Permutation, PermutationGroup
    from sympy.combinatorics.named_groups import SymmetricGroup

    if group == "SymmetricGroup":
        return list(SymmetricGroup(n).generate())
    return list(PermutationGroup(Permutation(0, 1, 2, 3, 4), Permutation(1, 2)(3, 4)).generate())


def their_labels(group: str, n: int) -> torch.Tensor:
    """[|G|^2] the label of data row x |G| + y, as their Group.get_all_data computes it."""
    if group in ("SymmetricGroup", "AlternatingGroup"):
        els = their_elements(group, n)
        where = {tuple(e.array_form): i for i, e in enumerate(els)}
        return torch.tensor([where[tuple((a * b).array_form)] for a in els for b in els])
    if group == "CyclicGroup":
        return torch.tensor([(x + y) % n for x in range(n) for y in range(n)])

    def compose(x, y):  # their DihedralGroup.compose
        x_r, x_s, y_r, y_s = x % n, x // n, y % n, y // n
        if x_s == 0:
            return (x_r + y_r) % n + y_s * n
        return (x_r - y_r) % n + ((1 + y_s) % 2) * n

    return torch.tensor([compose(x, y) for x in range(2 * n) for y in range(2 * n)])


def their_split(n_pairs: int, frac: float, seed: int) -> torch.Tensor:
    """Their generate_train_test_data: torch.manual_seed(seed); torch.randperm (when seed is truthy)."""
    with torch.random.fork_rng():
        if seed:
            torch.manual_seed(seed)
            order = torch.randperm(n_pairs)
        else:
            order = torch.arange(n_pairs)
    return order[: int(frac * n_pairs)]


def mlp_state(n: int, e: int, h: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "W_x": torch.randn(n, e, generator=g) / e**0.5,
        "W_y": torch.randn(n, e, generator=g) / e**0.5,
        "W": torch.randn(2 * e, h, generator=g) / (2 * e) ** 0.5,
        "W_U": torch.randn(h, n, generator=g) / h**0.5,
    }


def their_mlp_forward(sd: dict, data: torch.Tensor) -> torch.Tensor:
    """OneLayerMLP.forward."""
    embed_stack = torch.hstack((sd["W_x"][data[:, 0]], sd["W_y"][data[:, 1]]))
    return F.relu(embed_stack @ sd["W"]) @ sd["W_U"]


def transformer_state(n: int, d: int = 16, heads: int = 2, d_head: int = 8, d_mlp: int = 32, seed: int = 0) -> dict:
    """A TransformerLens 0.2 HookedTransformer state dict of their Transformer's layout (random weights)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.3  # noqa: E731
    sd = {
        "embed.W_E": r(n + 1, d),
        "pos_embed.W_pos": r(3, d),
        "blocks.0.attn.W_Q": r(heads, d, d_head),
        "blocks.0.attn.W_K": r(heads, d, d_head),
        "blocks.0.attn.W_V": r(heads, d, d_head),
        "blocks.0.attn.W_O": r(heads, d_head, d),
        "blocks.0.attn.b_Q": r(heads, d_head),
        "blocks.0.attn.b_K": r(heads, d_head),
        "blocks.0.attn.b_V": r(heads, d_head),
        "blocks.0.attn.b_O": r(d),
        "blocks.0.attn.mask": torch.tril(torch.ones(3, 3)).bool(),
        "blocks.0.attn.IGNORE": torch.tensor(-1e5),
        "blocks.0.mlp.W_in": r(d, d_mlp),
        "blocks.0.mlp.b_in": r(d_mlp),
        "blocks.0.mlp.W_out": r(d_mlp, d),
        "blocks.0.mlp.b_out": r(d),
        "unembed.W_U": r(d, n),
        "unembed.b_U": r(n),
    }
    sd["x_embed"] = sd["embed.W_E"].clone()
    sd["y_embed"] = sd["embed.W_E"].clone()
    return sd


def their_transformer_forward(sd: dict, data: torch.Tensor, n: int) -> torch.Tensor:
    """Their Transformer.forward: tokens (x, y, n) through HookedTransformer (no LayerNorm, causal
    attention with IGNORE, ReLU MLP), logits at the last position."""
    tokens = torch.cat([data, torch.full((len(data), 1), n)], dim=1)
    resid = sd["embed.W_E"][tokens] + sd["pos_embed.W_pos"][None]
    b = "blocks.0."
    q = torch.einsum("bpd,hde->bphe", resid, sd[b + "attn.W_Q"]) + sd[b + "attn.b_Q"]
    k = torch.einsum("bpd,hde->bphe", resid, sd[b + "attn.W_K"]) + sd[b + "attn.b_K"]
    v = torch.einsum("bpd,hde->bphe", resid, sd[b + "attn.W_V"]) + sd[b + "attn.b_V"]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / q.shape[-1] ** 0.5
    scores = torch.where(sd[b + "attn.mask"], scores, sd[b + "attn.IGNORE"])
    z = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)
    resid = resid + torch.einsum("bqhe,hed->bqd", z, sd[b + "attn.W_O"]) + sd[b + "attn.b_O"]
    post = F.relu(resid @ sd[b + "mlp.W_in"] + sd[b + "mlp.b_in"])
    resid = resid + post @ sd[b + "mlp.W_out"] + sd[b + "mlp.b_out"]
    return (resid @ sd["unembed.W_U"] + sd["unembed.b_U"])[:, -1]


def write_folder(root: Path, cfg: dict, state) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cfg.json").write_text(json.dumps(cfg))
    torch.save(state, root / "model.pt")
    return root


def cfg_of(group: str, n: int, model: str = "OneLayerMLP", seed: int = 1, frac: float = 0.5, e: int = 8, h: int = 16):
    return {
        "lr": 0.001,
        "weight_decay": 1,
        "betas": [0.9, 0.98],
        "layers": {"embed_dim": e, "hidden_dim": h},
        "model": model,
        "group": group,
        "group_parameter": n,
        "frac_train": frac,
        "seed": seed,
        "num_epochs": 250000,
    }


@pytest.mark.parametrize(
    "group,n,order,seed,frac",
    [("SymmetricGroup", 4, 24, 3, 0.4), ("DihedralGroup", 5, 10, 1, 0.6), ("CyclicGroup", 7, 7, 2, 0.5)],
)
def test_their_mlp_folder_imports_with_their_task_split_and_logits(tmp_path, group, n, order, seed, frac):
    state = mlp_state(order, 8, 16, seed=seed)
    folder = write_folder(tmp_path / "run", cfg_of(group, n, seed=seed, frac=frac), state)
    ckpt = load(folder)  # the layout is sniffed from cfg.json
    task = ckpt.task
    assert task.p == order and task.spec.op.endswith(":x*y") and ckpt.step == 250000
    assert torch.equal(task.inputs[:, 0] * order + task.inputs[:, 1], torch.arange(order * order))
    assert torch.equal(task.labels, their_labels(group, n))
    train = their_split(order * order, frac, seed)
    assert torch.equal(task.train_idx, train.sort().values)
    assert len(task.test_idx) == order * order - int(frac * order * order)
    ours = ckpt.model(task.inputs)
    theirs = their_mlp_forward(state, task.inputs)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)
    r = rep_metrics(ckpt)
    assert r.group == task.spec.op[:-4] and 0 <= r.test_acc <= 1


def test_their_symmetric_group_order_puts_the_identity_at_element_20_of_s5(tmp_path):
    folder = write_folder(tmp_path / "s5", cfg_of("SymmetricGroup", 5, seed=1, frac=0.5), mlp_state(120, 8, 16))
    ckpt = load(folder)
    assert ckpt.task.spec.op == "S5[chughtai]:x*y"
    row = 20 * 120 + 7  # e * g = g
    assert int(ckpt.task.labels[row]) == 7
    assert torch.equal(ckpt.task.labels, their_labels("SymmetricGroup", 5))


def test_their_transformer_folder_imports_with_logits_equal_to_their_forward(tmp_path):
    state = transformer_state(60)
    folder = write_folder(tmp_path / "a5", cfg_of("AlternatingGroup", 5, model="Transformer", seed=1, frac=0.6), state)
    ckpt = load(folder / "model.pt")  # the weight file finds its cfg.json
    task = ckpt.task
    assert task.spec.op == "A5[chughtai]:x*y" and ckpt.model.cfg.family == "transformer"
    assert torch.equal(task.labels, their_labels("AlternatingGroup", 5))
    assert torch.equal(task.train_idx, their_split(3600, 0.6, 1).sort().values)
    theirs = their_transformer_forward(state, task.inputs, 60)
    assert torch.allclose(ckpt.model.pair_logits(task.inputs), theirs, atol=1e-5, rtol=1e-5)
    run = load_run(folder)
    assert run.steps == [250000] and torch.equal(run.load(250000).task.train_idx, task.train_idx)
    r = rep_metrics(ckpt)
    assert list(r.irreps) == ["trivial", "(4,1)", "(3,2)", "(3,1,1)+", "(3,1,1)-"]


def test_their_seed_zero_leaves_the_data_unshuffled(tmp_path):
    folder = write_folder(tmp_path / "c", cfg_of("CyclicGroup", 9, seed=0, frac=0.3, e=4, h=8), mlp_state(9, 4, 8))
    task = load(folder, layout="chughtai").task
    assert torch.equal(task.train_idx, torch.arange(int(0.3 * 81)))


def test_importing_does_not_touch_the_global_random_state(tmp_path):
    folder = write_folder(tmp_path / "c", cfg_of("CyclicGroup", 9, seed=5, e=4, h=8), mlp_state(9, 4, 8))
    before = torch.random.get_rng_state()
    load(folder)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c: c.pop("group"), r"cfg\.json: the field 'group' is missing"),
        (lambda c: c.update(group="QuaternionGroup"), r"cfg\.json: the field 'group' is 'QuaternionGroup'"),
        (lambda c: c.update(group_parameter="4"), r"cfg\.json: the field 'group_parameter' is '4'"),
        (lambda c: c.update(model="BilinearNet"), r"cfg\.json: the field 'model' is 'BilinearNet'"),
        (lambda c: c.update(frac_train=0), r"cfg\.json: the field 'frac_train' is 0"),
        (lambda c: c.update(seed=-1), r"cfg\.json: the field 'seed' is -1"),
        (lambda c: c.update(group="AlternatingGroup"), r"cfg\.json: the field 'group_parameter' is 4 .* n = 5 only"),
        (
            lambda c: c.update(group_parameter=7),
            r"cfg\.json: group SymmetricGroup with group_parameter 7 .* at most 3000",
        ),
    ],
)
def test_a_malformed_cfg_json_names_the_file_and_the_field(tmp_path, change, message):
    cfg = cfg_of("SymmetricGroup", 4)
    change(cfg)
    folder = write_folder(tmp_path / "run", cfg, mlp_state(24, 8, 16))
    with pytest.raises(CheckpointError, match=message):
        load(folder)


def test_a_missing_or_unreadable_cfg_json_is_named(tmp_path):
    folder = write_folder(tmp_path / "run", cfg_of("SymmetricGroup", 4), mlp_state(24, 8, 16))
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"cfg\.json is not valid JSON"):
        load(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(CheckpointError, match=r"cfg\.json is missing"):
        load(folder, layout="chughtai")
    with pytest.raises(CheckpointError, match="cfg.json"):
        load(folder)  # nothing to sniff: the error lists what a folder may be
    (folder / "cfg.json").write_text(json.dumps(cfg_of("SymmetricGroup", 4)))
    (folder / "model.pt").unlink()
    with pytest.raises(CheckpointError, match=r"model\.pt is missing"):
        load(folder)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: s.update(W_x=torch.zeros(23, 8)), r"model\.pt: 'W_x' has shape \[23, 8\]; expected \[24, 8\]"),
        (lambda s: s.update(W=torch.zeros(16, 15)), r"model\.pt: 'W' has shape \[16, 15\]; expected \[16, 16\]"),
        (lambda s: s.pop("W_U"), r"model\.pt: the tensor 'W_U' is missing"),
        (lambda s: s.update(b_U=torch.zeros(24)), r"model\.pt holds \['b_U'\]"),
    ],
)
def test_a_state_dict_of_the_wrong_shape_names_the_file_and_the_tensor(tmp_path, change, message):
    state = mlp_state(24, 8, 16)
    change(state)
    folder = write_folder(tmp_path / "run", cfg_of("SymmetricGroup", 4), state)
    with pytest.raises(CheckpointError, match=message):
        load(folder)


def test_a_transformer_state_dict_of_the_wrong_shape_names_the_file_and_the_tensor(tmp_path):
    state = transformer_state(24)
    state["embed.W_E"] = state["embed.W_E"][:24]
    folder = write_folder(tmp_path / "t", cfg_of("SymmetricGroup", 4, model="Transformer"), state)
    with pytest.raises(CheckpointError, match=r"model\.pt: 'embed\.W_E' has shape \[24, 16\]; expected \[25, 16\]"):
        load(folder)
    state = transformer_state(24)
    state["x_embed"] = state["x_embed"] + 1
    write_folder(folder, cfg_of("SymmetricGroup", 4, model="Transformer"), state)
    with pytest.raises(CheckpointError, match="'x_embed' is not a copy of embed.W_E"):
        load(folder)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_nothing_but_tensors_is_unpickled(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps(cfg_of("SymmetricGroup", 4)))
    with open(folder / "model.pt", "wb") as fh:
        torch.save({"W_x": torch.zeros(24, 8), "extra": Payload()}, fh, pickle_module=pickle)
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        load(folder)


def test_a_report_runs_on_their_run_folder(tmp_path):
    from interp.report import build_report

    folder = write_folder(tmp_path / "s4", cfg_of("SymmetricGroup", 4, seed=2), mlp_state(24, 8, 16))
    rep = build_report(str(folder), sections=["summary", "spectra", "filtration", "representations"])
    assert not rep.failed, rep.failed
    assert rep.numbers["representations"]["group"] == "S4[chughtai]"


def test_their_mlp_may_carry_its_effective_embeddings(tmp_path):
    state = mlp_state(24, 8, 16)
    state["x_embed"] = state["W_x"] @ state["W"][:8]
    state["y_embed"] = state["W_y"] @ state["W"][8:]
    folder = write_folder(tmp_path / "run", cfg_of("SymmetricGroup", 4), state)
    ckpt = load(folder)
    assert torch.allclose(ckpt.model.U.T, state["x_embed"], atol=1e-6)
    state["y_embed"] = state["y_embed"] * 2
    write_folder(folder, cfg_of("SymmetricGroup", 4), state)
    with pytest.raises(CheckpointError, match="'y_embed' is not W_y times its half of W"):
        load(folder)
