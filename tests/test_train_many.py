"""Training a sweep as one batched computation: each model ends where `train` alone would, writes
the same run directory, stops alone when it diverges, and resumes."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from interp import Task, TaskSpec
from interp.checkpoints import load_run
from interp.models import MLPConfig, TransformerConfig
from interp.train import TrainConfig, train, train_many
from interp.train.engine import group_key


def assert_histories_close(a: list[dict], b: list[dict], rel: float):
    assert [h["step"] for h in a] == [h["step"] for h in b]
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if x[k] is None or math.isnan(x[k]):  # run.json stores NaN (an empty subset) as null
                assert y[k] is None or math.isnan(y[k]), k
            else:
                assert y[k] == pytest.approx(x[k], rel=rel, abs=1e-9), (x["step"], k)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep mixing seeds, learning rates, weight decays, betas, schedules, label noise and task
    seeds (one batch of MLPs) with a transformer (a second batch)."""
    out = tmp_path_factory.mktemp("sweep")
    mlp = MLPConfig(p=17, width=24)
    base = TrainConfig(steps=30, lr=5e-3, eval_every=10, checkpoint_every=15, warmup_steps=3)
    rep = dataclasses.replace
    jobs = [
        (mlp, TaskSpec(op="x+y", p=17, frac_train=0.5), base),
        (mlp, TaskSpec(op="x+y", p=17, frac_train=0.5, label_noise=0.3, seed=2), rep(base, seed=1, weight_decay=0.1)),
        (mlp, TaskSpec(op="x-y", p=17, frac_train=0.5, seed=1), rep(base, seed=2, lr=1e-2, betas=(0.8, 0.9))),
        (
            MLPConfig(p=17, width=24, init_scale=0.5),
            TaskSpec(op="x+y", p=17, frac_train=0.5),
            rep(base, schedule="cosine"),
        ),
        (
            TransformerConfig(p=17, d_model=16, n_heads=2, d_head=8, d_mlp=32),
            TaskSpec(op="x+y", p=17, frac_train=0.5),
            base,
        ),
    ]
    results = train_many(jobs, out=out)
    return jobs, results, out


def test_sweep_groups_models_of_one_shape_into_one_batch(sweep):
    jobs, _, _ = sweep
    keys = [group_key(_job(i, j), torch.device("cpu")) for i, j in enumerate(jobs)]
    assert len(set(keys[:4])) == 1 and keys[4] != keys[0]


def _job(i, job):
    from interp.train.engine import Job

    m, spec, cfg = job
    return Job(i, m, Task(spec), cfg)


def test_each_model_of_a_sweep_ends_where_train_alone_ends(sweep, tmp_path):
    jobs, results, out = sweep
    assert [r.status for r in results] == ["complete"] * len(jobs)
    for i, (m, spec, cfg) in enumerate(jobs):
        alone = train(m, spec, cfg, out=tmp_path / f"alone{i}")
        for a, b in zip(alone.model.parameters(), results[i].model.parameters()):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        assert_histories_close(alone.history, results[i].history, rel=1e-5)
        # and its run directory holds the same checkpoints and history
        mine, theirs = load_run(results[i].out), load_run(tmp_path / f"alone{i}")
        assert mine.steps == theirs.steps == [0, 15, 30]
        assert mine.status == "complete"
        assert_histories_close(theirs.history, mine.history, rel=1e-5)
        for a, b in zip(theirs.final.model.parameters(), mine.final.model.parameters()):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_sweep_run_directories_are_named_after_what_varies(sweep):
    _, results, out = sweep
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(names) == 5 and all((out / n / "run.json").exists() for n in names)
    assert any("weight_decay=0.1" in n for n in names)
    index = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in index["runs"]] == ["complete"] * 5


def test_a_diverging_model_stops_alone_and_the_rest_of_the_batch_finishes(tmp_path):
    mlp = MLPConfig(p=17, width=16, act="quad")
    spec = TaskSpec(op="x+y", p=17, frac_train=0.5)
    good = TrainConfig(steps=30, lr=0.05, optimizer="sgd", momentum=0.0, eval_every=10, warmup_steps=0)
    bad = TrainConfig(steps=30, lr=1e4, optimizer="sgd", momentum=0.0, eval_every=10, warmup_steps=0, seed=1)
    results = train_many(
        [(mlp, spec, good), (mlp, spec, bad), (mlp, spec, dataclasses.replace(good, seed=2))], out=tmp_path
    )
    assert [r.status for r in results] == ["complete", "diverged", "complete"]
    assert results[1].model is None and "diverged" in results[1].message and results[1].diverged_step is not None
    assert json.loads((results[1].out / "run.json").read_text())["status"] == "diverged"
    alone = train(mlp, spec, good)  # the diverging neighbour did not disturb the others
    for a, b in zip(alone.model.parameters(), results[0].model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert results[2].final["step"] == 30


class Interrupt(Exception):
    pass


def test_interrupted_sweep_resumes_to_the_same_weights(tmp_path):
    mlp = MLPConfig(p=17, width=16)
    spec = TaskSpec(op="x+y", p=17, frac_train=0.5, label_noise=0.2)
    jobs = [
        (mlp, spec, TrainConfig(steps=24, lr=lr, eval_every=8, batch_size=40, seed=s))
        for s in (0, 1)
        for lr in (3e-3, 1e-2)
    ]
    full = train_many(jobs, out=tmp_path / "full")

    def stop(index, entry):
        if entry["step"] == 16 and index == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_many(jobs, out=tmp_path / "cut", callback=stop, state_every_s=0)
    resumed = train_many(jobs, out=tmp_path / "cut", resume=True)
    for f, r in zip(full, resumed):
        for a, b in zip(f.model.parameters(), r.model.parameters()):
            assert torch.equal(a, b)
        assert_histories_close(f.history, r.history, rel=0)


@pytest.mark.parametrize(
    "cfg",
    [
        TransformerConfig(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32),
        TransformerConfig(
            p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_layers=2, normalization_type="LN", act_fn="gelu"
        ),
        TransformerConfig(
            p=11,
            d_model=16,
            n_heads=2,
            d_head=8,
            d_mlp=32,
            n_layers=2,
            attention_rate=0.3,
            causal=False,
            eq_token=False,
        ),
        TransformerConfig(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_layers=2, attention_rate=0.0),
        TransformerConfig(p=11, d_model=16, n_heads=2, d_head=8, n_layers=2, attn_only=True, normalization_type="LN"),
        MLPConfig(p=11, width=20, embed="learned", d_embed=5, bias=True, act="silu"),
        MLPConfig(p=11, width=20, tied=True, act="rev_relu"),
    ],
    ids=["nanda", "2layer-ln-gelu", "zhong-alpha0.3", "pizza", "attn-only-ln", "mlp-learned-bias", "mlp-tied"],
)
def test_batched_forward_gives_each_models_own_logits(cfg):
    from interp.models import build_model
    from interp.models.stacked import StackedModels

    task = Task(TaskSpec(op="x-y", p=11, frac_train=0.5))
    models = [build_model(cfg, seed=s) for s in range(3)]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-zero biases and layer-norm weights, so every term is exercised
        for m in models:
            for name, prm in m.named_parameters():
                if not name.split(".")[-1].startswith("W"):
                    prm.add_(0.1 * torch.randn(prm.shape, generator=gen, dtype=prm.dtype))
    stacked = StackedModels(cfg, torch.device("cpu"), torch.float32)
    flat = stacked.stack([m.state_dict() for m in models])  # [3, P]
    logits = stacked.forward(stacked.views(flat), stacked.prepare(task.inputs.expand(3, -1, -1)))
    expected = torch.stack([m.pair_logits(task.inputs) for m in models])
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    back = stacked.model_at(flat, 1)
    torch.testing.assert_close(back.pair_logits(task.inputs), expected[1])
