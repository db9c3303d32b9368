"""Training a finished or interrupted run for longer ends, on CPU, bit-identical to a run asked for the
larger number of steps from the start; only steps and the evaluation / checkpoint cadence may change."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from interp import Task, TaskSpec
from interp.checkpoints import load_run, load_tensors
from interp.cli.train import main
from interp.errors import CheckpointError
from interp.models import MLPConfig
from interp.train import TrainConfig, train, train_many
from interp.train.rundir import state_path

MODEL = MLPConfig(p=23, width=32)
# minibatches (epochs cross the resume point) and warm-up: the continued run must restore both
SHORT = TrainConfig(steps=30, lr=3e-3, eval_every=10, batch_size=50, warmup_steps=8, checkpoint_every=15)
LONG = dataclasses.replace(SHORT, steps=70)


@pytest.fixture(scope="module")
def task():
    return Task(TaskSpec(op="x+y", p=23, frac_train=0.5, label_noise=0.2, seed=1))


@pytest.fixture(scope="module")
def from_the_start(task, tmp_path_factory):
    out = tmp_path_factory.mktemp("long") / "run"
    return train(MODEL, task, LONG, out=out), out


def same_entry(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) if isinstance(a[k], float) and math.isnan(a[k]) else a[k] == b[k]
        for k in a
    )


def assert_same_run(result, out, reference, reference_out):
    """Weights, optimizer state and the history at every step both evaluated: equal, bit for bit."""
    for a, b in zip(reference.model.parameters(), result.model.parameters()):
        assert torch.equal(a, b)
    mine, theirs = load_tensors(state_path(out))[0], load_tensors(state_path(reference_out))[0]
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    ref_by_step = {h["step"]: h for h in reference.history}
    common = [h for h in result.history if h["step"] in ref_by_step]
    assert len(common) >= 7
    assert all(same_entry(h, ref_by_step[h["step"]]) for h in common)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_a_finished_run_trained_longer_equals_the_longer_run_from_the_start(task, from_the_start, tmp_path):
    reference, reference_out = from_the_start
    out = tmp_path / "run"
    train(MODEL, task, SHORT, out=out)
    longer = train(MODEL, task, LONG, out=out, resume=True)
    assert_same_run(longer, out, reference, reference_out)
    assert load_run(out).steps == [0, 15, 30, 45, 60, 70]  # the old checkpoints, then the new cadence
    assert load_run(out).train_config.steps == 70


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumed_with_more_steps_and_a_new_cadence_equals_the_longer_run(
    task, from_the_start, tmp_path
):
    reference, reference_out = from_the_start

    def stop_at_20(index, entry):
        if entry["step"] == 20:
            raise Interrupt

    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(MODEL, task, SHORT, out=out, callback=stop_at_20, state_every_s=0)
    denser = dataclasses.replace(LONG, eval_every=5, checkpoint_log=5)
    longer = train(MODEL, task, denser, out=out, resume=True)
    assert_same_run(longer, out, reference, reference_out)
    steps = [h["step"] for h in longer.history]
    assert steps[:3] == [0, 10, 15] and 25 in steps and 65 in steps  # old cadence up to step 20, then the new
    assert 70 ** (3 / 4) < 25 and 24 in load_run(out).steps  # a log-spaced checkpoint of the 70-step run


def test_a_sweep_trained_longer_equals_the_longer_sweep(tmp_path):
    jobs = [(MODEL, TaskSpec(op="x+y", p=23, frac_train=0.5), dataclasses.replace(SHORT, seed=s)) for s in (0, 1)]
    longer = [(m, t, dataclasses.replace(c, steps=50)) for m, t, c in jobs]
    reference = train_many(longer, out=tmp_path / "ref")
    train_many(jobs, out=tmp_path / "sweep")
    continued = train_many(longer, out=tmp_path / "sweep", resume=True)
    for r, c in zip(reference, continued):
        for a, b in zip(r.model.parameters(), c.model.parameters()):
            assert torch.equal(a, b)


def test_training_longer_refuses_a_cosine_schedule_fewer_steps_and_other_changes(task, tmp_path):
    out = tmp_path / "run"
    cosine = dataclasses.replace(SHORT, schedule="cosine")
    train(MODEL, task, cosine, out=out)
    with pytest.raises(CheckpointError, match="cosine learning-rate schedule depends on steps"):
        train(MODEL, task, dataclasses.replace(cosine, steps=60), out=out, resume=True)
    with pytest.raises(CheckpointError, match=r"already at step 30\. Pass steps >= 30"):
        train(MODEL, task, dataclasses.replace(cosine, steps=20), out=out, resume=True)
    with pytest.raises(CheckpointError, match="train_config.weight_decay.*Only steps, eval_every"):
        train(MODEL, task, dataclasses.replace(cosine, steps=60, weight_decay=0.5), out=out, resume=True)
    again = train(MODEL, task, cosine, out=out, resume=True)  # the same length: finished, nothing to do
    assert again.final["step"] == 30


def test_cli_trains_a_run_directory_longer_from_its_stored_settings(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--op", "x-y", "--p", "11", "--width", "8", "--steps", "12", "--eval-every", "4", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert main(["--out", str(out), "--resume", "--steps", "20", "--quiet"]) == 0
    reference = train(
        MLPConfig(p=11, width=8), TaskSpec(op="x-y", p=11), TrainConfig(steps=20, eval_every=4), out=tmp_path / "ref"
    )
    for a, b in zip(reference.model.parameters(), load_run(out).final.model.parameters()):
        assert torch.equal(a, b)
    assert load_run(out).steps == [0, 12, 20]


def test_cli_trains_a_whole_sweep_folder_longer(tmp_path, capsys):
    out = tmp_path / "sweep"
    base = ["--op", "x+y", "--p", "11", "--width", "8", "--eval-every", "4", "--out", str(out), "--quiet"]
    assert main([*base, "--steps", "8", "--seed", "0", "1"]) == 0
    assert main(["--out", str(out), "--resume", "--steps", "16", "--quiet"]) == 0
    runs = sorted(d.name for d in out.iterdir() if d.is_dir())
    assert runs == ["seed=0", "seed=1"]
    assert all(load_run(out / r).final.step == 16 for r in runs)
    index = json.loads((out / "sweep.json").read_text())
    assert [r["final"]["step"] for r in index["runs"]] == [16, 16]
    assert main(["--out", str(tmp_path / "empty"), "--resume", "--steps", "16"]) == 2


def test_a_run_saved_at_step_0_continues_without_evaluating_step_0_twice(task, tmp_path):
    longer = dataclasses.replace(SHORT, batch_size=None, steps=20)
    train(MODEL, task, dataclasses.replace(longer, steps=0), out=tmp_path / "saved_at_0")  # only step 0 exists
    resumed, fresh = train_many(
        [(MODEL, task, longer), (MODEL, task, longer)], out=[tmp_path / "saved_at_0", tmp_path / "new"], resume=True
    )
    reference = train(MODEL, task, longer)
    steps = [h["step"] for h in reference.history]
    assert steps[0] == 0 and steps.count(0) == 1
    for res in (resumed, fresh):  # never stacked together, each records step 0 once and ends as the reference
        assert [h["step"] for h in res.history] == steps
        assert all(torch.equal(a, b) for a, b in zip(res.model.parameters(), reference.model.parameters()))
