"""The engine's general surface: `TrainResult` is a strict-JSON Result, a run continues in memory from
its `TrainState` bit for bit, starts from given weights, keeps snapshots; bad starting points are refused."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load
from interp.errors import SpecError
from interp.models import MLPConfig, build_model
from interp.results import Result
from interp.train import TrainConfig, TrainState, train

TASK = Task(TaskSpec(op="x+y", p=11, frac_train=0.6, label_noise=0.2, seed=0))
MODEL = MLPConfig(p=11, width=24)


def config(steps: int, **kw) -> TrainConfig:
    return TrainConfig(steps=steps, lr=1e-2, weight_decay=0.5, eval_every=20, **kw)


def test_train_result_is_a_frozen_result_with_strict_json_and_no_model():
    run = train(MODEL, TASK, config(20))
    assert isinstance(run, Result) and run.ok and run.final["step"] == 20
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "diverged"
    broken = dataclasses.replace(run, history=[{**run.final, "test_loss": math.nan}])
    d = json.loads(json.dumps(broken.to_dict(), allow_nan=False))  # NaN written as null
    assert d["history"][0]["test_loss"] is None and "model" not in d and d["task_spec"]["p"] == 11
    assert d["status"] == "complete" and d["train_config"]["steps"] == 20
    assert repr(run).startswith("TrainResult(status='complete', step=20")


def test_a_run_continued_in_memory_from_its_state_equals_one_run(tmp_path):
    whole = train(MODEL, TASK, config(60, batch_size=20))
    first = train(MODEL, TASK, config(20, batch_size=20), keep_state=True)
    assert first.state.step == 20 and set(first.state.optimizer) == {
        f"exp_avg{s}.{n}" for s in ("", "_sq") for n in "UVW"
    }
    rest = train(MODEL, TASK, config(60, batch_size=20), init=first.state, out=tmp_path / "rest")
    for a, b in zip(whole.model.parameters(), rest.model.parameters()):
        assert torch.equal(a, b)
    assert rest.history == whole.history  # the in-memory history goes on, and run.json records it all
    assert load(tmp_path / "rest").history == whole.history


def test_a_run_starts_from_given_weights_and_keeps_its_snapshots(tmp_path):
    start = build_model(MODEL, seed=7)
    run = train(MODEL, TASK, config(40), init=start, snapshot_steps=(10, 30), out=tmp_path / "run")
    first = run.history[0]
    assert first["step"] == 0 and first["test_acc"] == pytest.approx(evaluate(start, TASK)["test_acc"])
    assert sorted(run.snapshots) == [10, 30]
    ckpt = load(tmp_path / "run", step=30)  # snapshots are also written as checkpoints
    for name, value in ckpt.model.state_dict().items():
        assert torch.equal(run.snapshots[30][name], value)
    assert sorted(s["step"] for s in run.history) == [0, 10, 20, 30, 40]


def test_bad_starting_points_are_refused():
    with pytest.raises(SpecError, match="init"):
        train(MODEL, TASK, config(10), init="weights.pt")
    with pytest.raises(SpecError, match="init"):
        train(MODEL, TASK, config(10), init=build_model(MLPConfig(p=11, width=8)))
    with pytest.raises(SpecError, match="TrainState.step=-1"):
        train(MODEL, TASK, config(10), init=TrainState(-1, build_model(MODEL).state_dict()))
    with pytest.raises(SpecError, match="snapshot_steps"):
        train(MODEL, TASK, config(10), snapshot_steps=(-3,))
