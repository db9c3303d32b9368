"""Faults and bad input meet grokscope's errors, never a traceback: a full disk is an I/O failure (exit 3,
StorageError) naming the run and the space, finished runs kept and --resume finishing the rest; output
paths are checked before any work; damaged run.json files and sweep files name the field; a sweep states
its estimate before it starts and refuses one that cannot fit unless told to go on."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

import interp.files
from interp.checkpoints import load, load_run, load_tensors, run_steps
from interp.cli.report import main as report_main
from interp.cli.train import main as train_main
from interp.errors import CheckpointError, SpecError, StorageError
from interp.models import MLPConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, estimate_sweep, train, train_many

SPEC = TaskSpec(op="x+y", p=11, frac_train=0.5)
MLP = MLPConfig(p=11, width=8)
TINY = ["--p", "11", "--width", "8", "--steps", "20", "--eval-every", "10", "--checkpoint-every", "10", "--quiet"]


def disk_full_after(monkeypatch, n_writes: int) -> list[int]:
    """Every file write after the first `n_writes` fails with ENOSPC, as on a full disk."""
    count = [0]
    real = interp.files._write_all

    def write(fd, data):
        count[0] += 1
        if count[0] > n_writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(interp.files, "_write_all", write)
    return count


def test_a_full_disk_raises_storage_error_naming_the_file_and_keeps_the_last_state(tmp_path, monkeypatch):
    disk_full_after(monkeypatch, 4)  # the lock's owner file, step 0's checkpoint, run.json, resume state
    cfg = TrainConfig(steps=20, eval_every=10, checkpoint_every=10)
    with pytest.raises(StorageError) as info:
        train(MLP, SPEC, cfg, out=tmp_path / "run", state_every_s=0)
    exc = info.value
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    msg = str(exc)
    assert str(tmp_path / "run" / "checkpoints" / "step_0000010.safetensors") in msg
    assert "No space left on device" in msg and "it needs" in msg and "free on that filesystem" in msg
    assert not list((tmp_path / "run").rglob("*.tmp"))  # the failed write left no temp file
    monkeypatch.undo()
    assert load(tmp_path / "run").step == 0  # the checkpoint written before the disk filled loads
    resumed = train(MLP, SPEC, cfg, out=tmp_path / "run", resume=True)
    fresh = train(MLP, SPEC, cfg, out=tmp_path / "fresh")
    for a, b in zip(resumed.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)


def test_interp_train_on_a_full_disk_exits_3_keeps_finished_runs_and_resume_finishes(tmp_path, monkeypatch, capsys):
    sweep = [*TINY, "--seed", "0", "1", "--width", "8", "16", "--out", str(tmp_path / "s")]  # two groups of two
    # the lock owner files of the sweep and its 4 runs, then the first group: 2 runs x 3 evaluations x 3 files
    disk_full_after(monkeypatch, 1 + 4 + 2 * 3 * 3)
    assert train_main(sweep) == 3
    err = capsys.readouterr().err
    assert "I/O failure while writing run" in err and "width=16" in err and "No space left on device" in err
    assert "2 of 4 runs are finished and kept" in err and "--resume" in err
    assert not (tmp_path / "s" / "sweep.json").exists()
    monkeypatch.undo()
    for name in ("width=8,seed=0", "width=8,seed=1"):
        assert json.loads((tmp_path / "s" / name / "run.json").read_text())["status"] == "complete"
    assert train_main([*sweep, "--resume"]) == 0
    rows = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["complete"] * 4


def test_interp_train_help_documents_exit_status_3(capsys):
    assert train_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "3    I/O failure after work started" in out and "--resume finishes the rest" in out


@pytest.mark.parametrize("flag", ["--json"])
def test_interp_train_checks_its_output_paths_before_training(tmp_path, flag, capsys):
    (tmp_path / "a-file").write_text("")
    for bad in (tmp_path / "a-file" / "summary.json", tmp_path):
        assert train_main([*TINY, "--out", str(tmp_path / "run"), flag, str(bad)]) == 2
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # exit 2: nothing was trained or written


def test_interp_train_refuses_an_out_that_is_a_file_before_the_estimate_or_the_bar(tmp_path, capsys):
    (tmp_path / "a-file").write_text("kept")
    assert train_main([*TINY, "--out", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and "model-step" not in err and "step/s" not in err
    assert (tmp_path / "a-file").read_text() == "kept"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_interp_train_refuses_a_json_path_in_a_read_only_folder_before_training(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert train_main([*TINY, "--out", str(tmp_path / "run"), "--json", str(ro / "s.json")]) == 2
    finally:
        ro.chmod(0o755)
    assert "cannot write in" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_interp_report_checks_both_outputs_before_building_anything(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    argv = ["zoo:mlp-noise0-small", "--sections", "summary", "--no-progress"]
    assert report_main([*argv, "-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "a-file" / "r.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert report_main([*argv, "-o", str(tmp_path / "a-file" / "r.html")]) == 2
    assert "-o" in capsys.readouterr().err
    assert report_main([*argv, "-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.html")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no HTML left behind on exit 2


def test_interp_report_on_a_full_disk_exits_3(tmp_path, monkeypatch, capsys):
    disk_full_after(monkeypatch, 0)
    argv = ["zoo:mlp-noise0-small", "--sections", "summary", "--no-progress", "-o", str(tmp_path / "r.html")]
    assert report_main(argv) == 3
    assert "No space left on device" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "doc,needles",
    [
        ([1, 2], ["a JSON list", "expected a JSON object"]),
        ({"history": "step 0"}, ["field 'history' is a str", "expected a list of evaluations"]),
        ({"history": [{"step": "0"}]}, ["history[0] has step=a str", "non-negative int"]),
        ({"history": [{"step": 0, "test_acc": "high"}]}, ["history[0] has test_acc=a str", "number or null"]),
        ({"history": [3]}, ["history[0] is a int", "expected an object"]),
        ({"status": 1}, ["field 'status' is a int"]),
        ({"task_spec": []}, ["field 'task_spec' is a list"]),
        ({"model_config": None}, ["field 'model_config' is a NoneType"]),
        ({"train_idx": ["a"]}, ["field 'train_idx'", "a list of ints"]),
        ({"format_version": "1"}, ["field 'format_version' is a str"]),
    ],
    ids=["list", "history-str", "step-str", "metric-str", "entry-int", "status", "task", "model", "idx", "version"],
)
def test_a_damaged_run_json_is_a_checkpoint_error_naming_the_file_and_field(tmp_path, doc, needles, capsys):
    train(MLP, SPEC, TrainConfig(steps=4, eval_every=2), out=tmp_path / "run")
    path = tmp_path / "run" / "run.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps(doc if isinstance(doc, list) else {**stored, **doc}))
    for reader in (load, load_run):
        with pytest.raises(CheckpointError) as info:
            reader(tmp_path / "run")
        assert str(path) in str(info.value) and all(n in str(info.value) for n in needles)
    assert report_main([str(tmp_path / "run"), "-o", str(tmp_path / "r.html"), "--no-progress"]) == 2
    assert train_main(["--out", str(tmp_path / "run"), "--resume", "--steps", "6", "--quiet"]) == 2
    assert needles[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("step", "1.5", "'step' is '1.5'; expected a non-negative integer"),
        ("history", '"step 0"', "'history' is a str"),
        ("task", "[]", "'task' is a list"),
        ("train_config", "not json", "'train_config' is not JSON"),
    ],
)
def test_a_damaged_resume_state_is_refused_naming_the_field(tmp_path, key, value, needle, capsys):
    from interp.files import save_tensors
    from interp.train.rundir import state_path

    train(MLP, SPEC, TrainConfig(steps=4, eval_every=2), out=tmp_path / "run")
    tensors, meta = load_tensors(state_path(tmp_path / "run"))
    save_tensors(state_path(tmp_path / "run"), tensors, {**meta, key: value})
    assert train_main(["--out", str(tmp_path / "run"), "--resume", "--steps", "6", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "overwrite" in err


def test_a_resume_state_missing_optimizer_state_is_refused_before_training(tmp_path):
    from interp.files import save_tensors
    from interp.train.rundir import state_path

    cfg = TrainConfig(steps=4, eval_every=2)
    train(MLP, SPEC, cfg, out=tmp_path / "run")
    tensors, meta = load_tensors(state_path(tmp_path / "run"))
    del tensors["optim.exp_avg.W"]
    save_tensors(state_path(tmp_path / "run"), tensors, meta)
    with pytest.raises(CheckpointError, match=r"the optimizer state 'exp_avg\.W' is missing"):
        train(MLP, SPEC, TrainConfig(steps=6, eval_every=2), out=tmp_path / "run", resume=True)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[train]\nseed = []\n", "[train] seed = [] is an empty list"),
        ("[task]\nop = []\n", "[task] op = [] is an empty list"),
        ("[model]\nwidth = [[8], [16]]\n", "expected a list of plain values"),
        ("[train]\nlr = {a = 1}\n", "is a table"),
        ('out = ""\n', "expected a non-empty string"),
    ],
)
def test_sweep_files_with_values_no_config_can_take_exit_2(tmp_path, text, needle, capsys):
    (tmp_path / "s.toml").write_text(text)
    assert train_main(["--sweep", str(tmp_path / "s.toml"), "--dry-run"]) == 2
    assert needle in capsys.readouterr().err


def test_a_sweep_states_its_estimate_before_it_starts(tmp_path, capsys):
    assert train_main([*TINY, "--seed", "0", "1", "2", "--out", str(tmp_path / "s"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "3 models in 1 batch group" in err and "parameters" in err and "model-steps" in err
    assert "memory about" in err and "available" in err and "disk about" in err and "free" in err
    jobs = [(MLP, SPEC, TrainConfig(steps=20, eval_every=10, checkpoint_every=10, seed=s)) for s in range(3)]
    est = estimate_sweep(jobs, out=tmp_path / "s")
    assert est.models == 3 and est.groups == 1 and est.parameters == 3 * MLP.n_params and est.model_steps == 60
    assert est.seconds_per_model_step > 0 and est.seconds > 0 and not est.problems()
    train_many(jobs, out=tmp_path / "s", keep_models=False)
    written = sum(f.stat().st_size for f in (tmp_path / "s").rglob("*") if f.is_file() and f.name != "sweep.json")
    assert 0.5 * written <= est.disk_bytes <= 2 * written  # the disk model, against what was written


def test_a_sweep_that_cannot_fit_is_refused_naming_the_override(tmp_path, monkeypatch, capsys):
    import interp.train.estimate as estimate

    monkeypatch.setattr(estimate, "free_disk", lambda folder: 1000)  # a nearly full disk
    jobs = [(MLP, SPEC, TrainConfig(steps=4, eval_every=2, seed=s)) for s in range(2)]
    with pytest.raises(SpecError, match=r"cannot fit: it writes about .* and 1000 B is free there.*size_check=False"):
        train_many(jobs, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    assert train_main([*TINY, "--seed", "0", "1", "--out", str(tmp_path / "s")]) == 2
    assert "--no-size-check" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert train_main([*TINY, "--seed", "0", "1", "--out", str(tmp_path / "s"), "--no-size-check"]) == 0
    monkeypatch.setattr(estimate, "available_memory", lambda: 1000)
    with pytest.raises(SpecError, match=r"memory .* for the 2 results held until it returns\) and 1000 B is available"):
        train_many(jobs, out=None)
    assert len(train_many(jobs, out=None, size_check=False)) == 2


def test_keep_models_false_returns_results_without_models_and_the_weights_stay_on_disk(tmp_path):
    jobs = [(MLP, SPEC, TrainConfig(steps=4, eval_every=2, seed=s)) for s in range(2)]
    results = train_many(jobs, out=tmp_path / "s", keep_models=False)
    assert all(r.ok and r.model is None and r.final["step"] == 4 for r in results)
    assert all(list(run_steps(Path(r.out))) == [0, 4] for r in results)
