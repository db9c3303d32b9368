"""`interp-train`: flags and sweep files, one run directory per combination, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from interp.checkpoints import load_run, load_tensors
from interp.cli.train import expand, main
from interp.models import MLPConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, train
from interp.train.rundir import state_path

SWEEP = """
out = "{out}"
[task]
op = "x+y"
p = 13
frac_train = 0.5
label_noise = [0.0, 0.25]
[model]
family = "mlp"
width = 16
act = "quad"
[train]
steps = 12
eval_every = 6
lr = 1e-2
weight_decay = [0.0, 1.0]
betas = [0.9, 0.98]
seed = [0, 1]
"""


def test_sweep_file_trains_one_run_directory_per_combination(tmp_path, capsys):
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP.format(out=(tmp_path / "runs").as_posix()))
    assert main(["--sweep", str(f), "--quiet"]) == 0
    dirs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(dirs) == 8  # 2 noise levels x 2 weight decays x 2 seeds
    for d in dirs:
        run = load_run(d)
        assert run.status == "complete" and run.steps[-1] == 12
        assert run.train_config.betas == (0.9, 0.98)
    table = capsys.readouterr().out
    assert "label_noise=0.25,weight_decay=1,seed=1" in table and "test_acc" in table
    index = json.loads((tmp_path / "runs" / "sweep.json").read_text())
    assert len(index["runs"]) == 8


def test_flags_override_the_sweep_file_and_several_values_are_crossed(tmp_path, capsys):
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP.format(out=(tmp_path / "runs").as_posix()))
    assert main(["--sweep", str(f), "--dry-run", "--seed", "5", "--lr", "1e-3", "2e-3", "3e-3"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 * 2 * 3
    assert {x["train"]["seed"] for x in lines} == {5}
    assert {x["train"]["lr"] for x in lines} == {1e-3, 2e-3, 3e-3}


def test_betas_pairs_are_one_value_and_lists_of_pairs_are_swept():
    assert len(expand({"train": {"betas": [0.9, 0.98]}})) == 1
    assert len(expand({"train": {"betas": [[0.9, 0.98], [0.8, 0.9]]}, "task": {"p": [7, 11]}})) == 4


def test_single_run_from_flags_refuses_to_overwrite_then_resumes(tmp_path, capsys):
    args = [
        "--op",
        "x-y",
        "--p",
        "11",
        "--width",
        "8",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    assert main(args) == 0
    assert load_run(tmp_path / "r").steps == [0, 6]
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0


def test_bad_settings_exit_with_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["--p", "11", "--lr", "-1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "TrainConfig.lr=-1.0" in capsys.readouterr().err
    assert main(["--model", "transformer", "--width", "8", "--p", "11", "--dry-run"]) == 2
    assert "['width'] are not settings of the transformer model" in capsys.readouterr().err


def test_a_diverging_run_exits_nonzero_and_says_why(tmp_path, capsys):
    args = ["--p", "11", "--width", "8", "--act", "quad", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e4"]
    assert (
        main(
            args
            + ["--warmup-steps", "0", "--steps", "20", "--eval-every", "5", "--out", str(tmp_path / "d"), "--quiet"]
        )
        == 1
    )
    assert "diverged" in capsys.readouterr().err


# The child kills itself with SIGKILL right after the evaluation at step 30 has been written (its resume
# state included): a real kill, at a point fixed by the step count rather than by a wall-clock race.
KILL_AT_STEP_30 = """
import os, signal, sys
import interp.cli.train as cli
real_train_many = cli.train_many

def train_many(*args, **kwargs):
    def kill_at_30(index, entry):
        if entry["step"] == 30:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_train_many(*args, callback=kill_at_30, **kwargs)

cli.train_many = train_many
sys.exit(cli.main(sys.argv[1:]))
"""


def test_killed_training_process_resumes_bit_identical(tmp_path):
    """A real interruption: the CLI is SIGKILLed mid-run, then --resume finishes it exactly as an
    uninterrupted run (one thread on both sides, so matmuls reduce in the same order)."""
    out = tmp_path / "killed"
    args = ["--op", "x+y", "--p", "23", "--frac-train", "0.5", "--width", "64", "--act", "quad", "--lr", "1e-2"]
    args += ["--steps", "200", "--eval-every", "10", "--batch-size", "100", "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP_30, *args, "--save-state-every", "0"], env=env, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert int(load_tensors(state_path(out))[1]["step"]) == 30
    assert main([*args, "--resume"]) == 0
    spec = TaskSpec(op="x+y", p=23, frac_train=0.5)
    cfg = TrainConfig(steps=200, lr=1e-2, eval_every=10, batch_size=100)
    ref = train(MLPConfig(p=23, width=64, act="quad"), spec, cfg)
    final = load_run(out).final
    for a, b in zip(ref.model.parameters(), final.model.parameters()):
        assert torch.equal(a, b)
