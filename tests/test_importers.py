"""Published checkpoints import as ordinary grokscope checkpoints: Zhong et al.'s clock/pizza models
(tests/data/zhong_pizza, two of their models with their configs, MIT) reproduce their published
measurements, and a HookedTransformer-layout state dict loads with its config.

Zhong et al.'s forward pass is re-implemented below in plain torch from their state dict (their
code/train-main.py: einsum shapes as theirs), independently of grokscope's importer, so the logits
check compares two implementations, not one with itself.
"""

import datetime
import json
import random
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load, load_run, save
from interp.checkpoints.format import UnknownSplitTask
from interp.cli.report import main as report_main
from interp.errors import CheckpointError, ShapeError, UnsafeCheckpointError
from interp.models import TransformerConfig, build_model
from interp.models.stacked import StackedModels
from interp.tasks import all_pairs
from probes.clock_pizza import classify_circuit, distance_irrelevance, gradient_symmetricity

DATA = Path(__file__).parent / "data" / "zhong_pizza"
# Their README: gradient symmetricity on their 100 triples, distance irrelevance, accuracy on all pairs.
PUBLISHED = {"p99zdpze5l": (1, 0.9937, 0.1717), "h9m153uuh9": (2, 0.9974, 0.1855)}


def zhong_forward(sd: dict, config: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Their Transformer.forward from the state dict: tokens [batch, pos] -> logits [batch, pos, d_vocab]."""
    x = sd["embed.W_E"][:, tokens].permute(1, 2, 0)  # [d_model, batch, pos] -> [batch, pos, d_model]
    x = x + sd["pos_embed.W_pos"][: tokens.shape[1]]
    act = {"ReLU": F.relu, "GeLU": F.gelu, "Tanh": torch.tanh}[config["act_fn"]]
    coeff = float(config["attn_coeff"])
    layers = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for layer in range(layers):
        w = {k.split(".", 2)[2]: v for k, v in sd.items() if k.startswith(f"blocks.{layer}.")}
        d_head = w["attn.W_K"].shape[1]
        k = torch.einsum("ihd,bpd->biph", w["attn.W_K"], x)  # [batch, head, pos, d_head]
        q = torch.einsum("ihd,bpd->biph", w["attn.W_Q"], x)
        v = torch.einsum("ihd,bpd->biph", w["attn.W_V"], x)
        scores = torch.einsum("biph,biqh->biqp", k, q) / d_head**0.5  # [batch, head, q, k]; no mask applied
        attn = F.softmax(scores, dim=-1) * coeff + (1 - coeff)
        z = torch.einsum("biph,biqp->biqh", v, attn)  # [batch, head, q, d_head]
        z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], z.shape[2], -1)  # 'b i q h -> b q (i h)'
        x = x + torch.einsum("df,bqf->bqd", w["attn.W_O"], z_flat)
        post = act(torch.einsum("md,bpd->bpm", w["mlp.W_in"], x) + w["mlp.b_in"])
        x = x + torch.einsum("dm,bpm->bpd", w["mlp.W_out"], post) + w["mlp.b_out"]
    return x @ sd["unembed.W_U"]


def zhong_tokens(config: dict, pairs: torch.Tensor) -> torch.Tensor:
    """Their dataset's inputs: [a, b (+ p with diff_vocab) (, '=' = vocab - 1 with eqn_sign)]."""
    p = config["C"]
    vocab = p * (2 if config["diff_vocab"] else 1) + (1 if config["eqn_sign"] else 0)
    cols = [pairs[:, :1], pairs[:, 1:] + (p if config["diff_vocab"] else 0)]
    if config["eqn_sign"]:
        cols.append(torch.full_like(pairs[:, :1], vocab - 1))
    return torch.cat(cols, dim=1)


def their_100_triples(p: int) -> torch.Tensor:
    """Zhong et al.'s sample: all p^3 triples in lexicographic order, shuffled by random.Random(42), first 100."""
    triples = [(a, b, c) for a in range(p) for b in range(p) for c in range(p)]
    random.Random(42).shuffle(triples)
    return torch.tensor(triples[:100])


def read(runid: str):
    config = json.loads((DATA / f"config_{runid}.json").read_text())
    return torch.load(DATA / f"model_{runid}.pt", map_location="cpu", weights_only=True), config


@pytest.fixture(scope="module", params=sorted(PUBLISHED))
def zhong(request):
    return request.param, load(DATA / f"model_{request.param}.pt")


def test_zhong_models_import_with_logits_equal_to_their_forward_pass_on_all_pairs(zhong):
    runid, ckpt = zhong
    sd, config = read(runid)
    pairs = all_pairs(59)
    theirs = zhong_forward(sd, config, zhong_tokens(config, pairs))[:, -1]  # [p^2, 59]
    ours = ckpt.model.pair_logits(pairs)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    cfg = ckpt.model.cfg
    assert (cfg.n_layers, cfg.attention_rate, cfg.causal, cfg.eq_token) == (
        PUBLISHED[runid][0],
        config["attn_coeff"],
        False,
        False,
    )


def test_zhong_models_reproduce_their_published_symmetricity_and_distance_irrelevance(zhong):
    runid, ckpt = zhong
    _, symmetricity, irrelevance = PUBLISHED[runid]
    assert gradient_symmetricity(ckpt, triples=their_100_triples(59)) == pytest.approx(symmetricity, abs=1e-3)
    assert distance_irrelevance(ckpt) == pytest.approx(irrelevance, abs=1e-3)
    verdict = classify_circuit(ckpt, n_triples=1024)
    assert verdict.verdict == "pizza" and verdict.test_acc == 1.0


def test_explicit_triples_must_be_triples_of_residues(zhong):
    _, ckpt = zhong
    with pytest.raises(ShapeError, match=r"\[n, 3\]"):
        gradient_symmetricity(ckpt, triples=[[1, 2]])
    with pytest.raises(ShapeError, match="in \\[0, 59\\)"):
        gradient_symmetricity(ckpt, triples=[[1, 2, 59]])


def test_zhong_task_says_its_split_is_unknown_and_metrics_use_every_pair(zhong):
    _, ckpt = zhong
    task = ckpt.task
    assert isinstance(task, UnknownSplitTask) and not task.split_known
    assert "split unknown" in repr(task) and "unseeded" in repr(task)
    assert task.n_train == task.n_test == 59 * 59 and task.spec.op == "x+y"
    assert evaluate(ckpt.model, task)["test_acc"] == 1.0


def test_imported_checkpoint_round_trips_through_grokscope_storage(zhong, tmp_path):
    _, ckpt = zhong
    save(tmp_path / "run", ckpt.model, ckpt.task, train_config=ckpt.train_config, step=ckpt.step)
    again = load(tmp_path / "run")
    assert again.model.cfg == ckpt.model.cfg and again.step == ckpt.step
    assert isinstance(again.task, UnknownSplitTask) and again.task.source == ckpt.task.source
    torch.testing.assert_close(again.model.pair_logits(all_pairs(59)), ckpt.model.pair_logits(all_pairs(59)))
    assert len(load_run(DATA / "model_p99zdpze5l.pt").steps) == 1  # a foreign file is a one-checkpoint run


def test_config_is_found_beside_the_model_or_passed_and_its_absence_is_a_clear_error(tmp_path):
    shutil.copy(DATA / "model_p99zdpze5l.pt", tmp_path / "model_p99zdpze5l.pt")
    with pytest.raises(CheckpointError, match="config_p99zdpze5l.json"):
        load(tmp_path / "model_p99zdpze5l.pt")
    ckpt = load(tmp_path / "model_p99zdpze5l.pt", config=DATA / "config_p99zdpze5l.json")
    assert ckpt.model.cfg.n_layers == 1
    config = json.loads((DATA / "config_p99zdpze5l.json").read_text())
    with pytest.raises(CheckpointError, match="pass op="):
        load(tmp_path / "model_p99zdpze5l.pt", config={**config, "funcs": "lambda x: (x[0]**3)%59"})
    assert load(tmp_path / "model_p99zdpze5l.pt", config=config, op="x-y").task.spec.op == "x-y"


def synthetic_zhong_model(seed: int, extra_columns_lose: bool):
    """A state dict in their layout with every option: 2 layers, diff_vocab, eqn_sign, Tanh, a
    blended attention; their unembedding has d_vocab = 2p + 1 columns."""
    p, d, heads, d_head = 7, 16, 2, 8
    vocab = 2 * p + 1
    g = torch.Generator().manual_seed(seed)
    sd = {"embed.W_E": torch.randn(d, vocab, generator=g), "pos_embed.W_pos": torch.randn(3, d, generator=g)}
    for layer in range(2):
        b = f"blocks.{layer}."
        for n in "KQV":
            sd[b + f"attn.W_{n}"] = torch.randn(heads, d_head, d, generator=g) / d**0.5
        sd[b + "attn.W_O"] = torch.randn(d, heads * d_head, generator=g) / d**0.5
        sd[b + "attn.mask"] = torch.ones(3, 3).tril()
        sd[b + "mlp.W_in"] = torch.randn(4 * d, d, generator=g) / d**0.5
        sd[b + "mlp.b_in"] = torch.randn(4 * d, generator=g)
        sd[b + "mlp.W_out"] = torch.randn(d, 4 * d, generator=g) / d
        sd[b + "mlp.b_out"] = torch.randn(d, generator=g)
    W_U = torch.randn(d, vocab, generator=g)
    if extra_columns_lose:  # each extra logit is the mean of the answer logits: below their max
        W_U[:, p:] = W_U[:, :p].mean(1, keepdim=True)
    sd["unembed.W_U"] = W_U
    config = {"C": p, "n_heads": heads, "d_model": d, "n_layers": 2, "act_fn": "Tanh", "attn_coeff": 0.4}
    config.update({"funcs": f"lambda x: (x[0]+x[1])%{p}", "frac": 0.8, "diff_vocab": True, "eqn_sign": True})
    return sd, config


def test_second_operand_vocabulary_eq_sign_and_tanh_import_with_their_logits(tmp_path):
    sd, config = synthetic_zhong_model(0, extra_columns_lose=True)
    torch.save(sd, tmp_path / "model_synthetic.pt")
    (tmp_path / "config_synthetic.json").write_text(json.dumps(config))
    ckpt = load(tmp_path / "model_synthetic.pt")
    cfg = ckpt.model.cfg
    assert (cfg.diff_vocab, cfg.eq_token, cfg.act_fn, cfg.d_vocab, cfg.d_vocab_out) == (True, True, "tanh", 15, 7)
    pairs = all_pairs(7)
    assert ckpt.model.pair_tokens(pairs).tolist() == zhong_tokens(config, pairs).tolist()
    theirs = zhong_forward(sd, config, zhong_tokens(config, pairs))[:, -1, :7]
    torch.testing.assert_close(ckpt.model.pair_logits(pairs), theirs, atol=1e-5, rtol=1e-5)
    assert ckpt.model.neuron_in_weights().shape == (64, 2, 7)  # both embedding tables
    save(tmp_path / "run", ckpt.model, ckpt.task)
    assert load(tmp_path / "run").model.cfg == cfg  # the new config fields round-trip


def test_an_extra_output_column_that_wins_is_refused(tmp_path):
    sd, config = synthetic_zhong_model(1, extra_columns_lose=False)
    sd["unembed.W_U"][:, 9] = 50 * sd["unembed.W_U"][:, :7].sum(1)  # class 9 (a b-token) now wins somewhere
    torch.save(sd, tmp_path / "model_bad.pt")
    with pytest.raises(CheckpointError, match="beyond the 7 answers wins"):
        load(tmp_path / "model_bad.pt", config=config)


def test_hooked_transformer_state_dict_loads_with_its_config_and_task(tmp_path):
    cfg = TransformerConfig(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_layers=2, normalization_type="LN")
    model = build_model(cfg, seed=3)
    sd = {**model.state_dict(), "blocks.0.attn.IGNORE": torch.tensor(-1e5), "blocks.0.attn.mask": torch.ones(3, 3)}
    torch.save(sd, tmp_path / "ht.pt")
    with pytest.raises(CheckpointError, match="config"):
        load(tmp_path / "ht.pt")
    ht_config = cfg.hooked_transformer_config()
    with pytest.raises(CheckpointError, match="task"):
        load(tmp_path / "ht.pt", config=ht_config)
    ckpt = load(tmp_path / "ht.pt", config=ht_config, task=TaskSpec(op="x+y", p=11))
    assert isinstance(ckpt.task, UnknownSplitTask) and ckpt.model.cfg == cfg
    torch.testing.assert_close(ckpt.model.pair_logits(all_pairs(11)), model.pair_logits(all_pairs(11)))
    (tmp_path / "config.json").write_text(json.dumps(ht_config))  # Hugging Face style: config.json beside
    task = Task(TaskSpec(op="x+y", p=11, frac_train=0.5))
    assert load(tmp_path / "ht.pt", task=task).task is task


def test_layouts_are_sniffed_and_foreign_pickles_refused(tmp_path):
    assert load(DATA / "model_h9m153uuh9.pt", layout="zhong").model.cfg.n_layers == 2
    torch.save({"embed.W_E": torch.zeros(1), "when": datetime.date(2023, 1, 1)}, tmp_path / "odd.pt")
    with pytest.raises(UnsafeCheckpointError, match="never unpickles"):
        load(tmp_path / "odd.pt", layout="zhong")
    with pytest.raises(ValueError, match="layout"):
        load(DATA / "model_h9m153uuh9.pt", layout="nanda")


@pytest.mark.slow
@pytest.mark.parametrize("runid", sorted(PUBLISHED))
def test_interp_report_renders_an_imported_model(runid, tmp_path):
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    args = [str(DATA / f"model_{runid}.pt"), "-o", str(html), "--json", str(js), "--no-progress"]
    assert report_main([*args, "--sections", "summary,spectra,clock_pizza,patching"]) == 0
    numbers = json.loads(js.read_text())
    assert not numbers["failed"] and numbers["sections"]["clock_pizza"]["verdict"] == "pizza"
    assert numbers["sections"]["summary"]["n_test"] == 59 * 59  # metrics on every pair
    assert "split unknown" in html.read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_zhong_import_on_gpu_matches_cpu():
    cpu = load(DATA / "model_h9m153uuh9.pt")
    gpu = load(DATA / "model_h9m153uuh9.pt", device="cuda")
    assert gpu.model.embed.W_E.is_cuda
    pairs = all_pairs(59)
    torch.testing.assert_close(
        gpu.model.pair_logits(pairs.cuda()).cpu(), cpu.model.pair_logits(pairs), atol=1e-3, rtol=1e-4
    )
    triples = their_100_triples(59)
    assert gradient_symmetricity(gpu, triples=triples) == pytest.approx(
        gradient_symmetricity(cpu, triples=triples), abs=1e-4
    )


def test_the_stacked_training_forward_supports_the_fields_zhong_et_al_need():
    cfg = TransformerConfig(
        p=7,
        d_model=16,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        n_layers=2,
        act_fn="tanh",
        attention_rate=0.3,
        causal=False,
        diff_vocab=True,
    )
    models = [build_model(cfg, seed=s) for s in range(3)]
    stacked = StackedModels(cfg, torch.device("cpu"), torch.float32)
    flat = stacked.stack([m.state_dict() for m in models])
    pairs = all_pairs(7)
    logits = stacked.forward(stacked.views(flat), stacked.prepare(pairs.expand(3, -1, -1)))  # [3, 49, 7]
    torch.testing.assert_close(logits, torch.stack([m.pair_logits(pairs) for m in models]), atol=1e-5, rtol=1e-5)


def test_a_torch_file_that_is_no_pickle_is_called_damaged_not_unsafe(tmp_path):
    from interp.checkpoints.importers.state_dicts import read_state_dict
    from interp.errors import CheckpointError, UnsafeCheckpointError

    f = tmp_path / "model.pt"
    f.write_text("not weights at all\n")
    with pytest.raises(CheckpointError, match="not a file torch.save wrote") as info:
        read_state_dict(f)
    assert not isinstance(info.value, UnsafeCheckpointError)
