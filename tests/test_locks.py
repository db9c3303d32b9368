"""One writer per run directory: a second writer is refused with the holder's PID, host and start time; a
dead holder's lock is taken over on its host, a foreign host's only with break_lock; a writer that loses
its lock stops; temp files of killed writers are removed by the next writer or loader, never a live one's."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import SoftFileLock

from interp.checkpoints import load, load_run, load_tensors, run_steps
from interp.errors import RunLockedError, SpecError
from interp.files import host_tag, remove_stale_temp_files
from interp.locks import LOCK_NAME, OWNER_NAME, RunLock, owner_record
from interp.models import MLPConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, train, train_many

SPEC = TaskSpec(op="x+y", p=11, frac_train=0.5)
MLP = MLPConfig(p=11, width=8)
TC = TrainConfig(steps=20, lr=1e-2, eval_every=10, checkpoint_every=10)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def forge_holder(run_dir: Path, pid: int, host: str, token: str = "f" * 32) -> None:
    """The marker and owner file another writer would leave: `pid` on `host`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_NAME).write_text(f"{pid}\n{host}\n12345\n")
    since = time.time() - 3600
    owner = {"pid": pid, "host": host, "since": since, "command": "interp-train --out x", "token": token}
    (run_dir / OWNER_NAME).write_text(json.dumps(owner))


def test_a_run_directory_held_by_a_live_process_is_refused_naming_it(tmp_path):
    with RunLock(tmp_path / "run") as lock:
        assert owner_record(tmp_path / "run")["token"] == lock.token
        other = subprocess.run(
            [sys.executable, "-c", f"from interp.locks import RunLock; RunLock({str(tmp_path / 'run')!r}).acquire()"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert other.returncode == 1
    assert "RunLockedError" in other.stderr
    assert f"being written by another process: PID {os.getpid()} on {socket.gethostname()} (this host)" in other.stderr
    assert "since " in other.stderr and f"kill {os.getpid()}" in other.stderr and "--resume" in other.stderr
    assert not (tmp_path / "run").exists()  # released, and the folder it made for nothing is gone


def test_train_resume_and_overwrite_into_a_locked_directory_are_refused_naming_the_holder(tmp_path):
    held = [tmp_path / "busy", tmp_path / "sweep" / "seed=1"]
    code = f"from interp.locks import RunLock; import time; [RunLock(d).acquire() for d in {[str(d) for d in held]!r}]; print('held', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for kwargs in ({}, {"resume": True}, {"overwrite": True}):
            with pytest.raises(RunLockedError, match=rf"PID {holder.pid} on .*\(this host\).*kill {holder.pid}"):
                train(MLP, SPEC, TC, out=tmp_path / "busy", **kwargs)
        # a refused sweep takes none of its locks and leaves no folder behind
        jobs = [(MLP, SPEC, TrainConfig(steps=4, eval_every=2, seed=s)) for s in (0, 1)]
        with pytest.raises(RunLockedError, match=r"sweep/seed=1 is being written.*Nothing was trained"):
            train_many(jobs, out=tmp_path / "sweep")
        assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["seed=1"]
        assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == [LOCK_NAME, OWNER_NAME]
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_holders_lock_is_taken_over_on_its_host_and_its_temp_files_removed(tmp_path):
    run_dir = tmp_path / "run"
    gone = dead_pid()
    forge_holder(run_dir, gone, socket.gethostname())
    (run_dir / "checkpoints").mkdir()
    partial = run_dir / "checkpoints" / f".step_0000010.safetensors.{gone}.{host_tag()}.0123456789abcdef.tmp"
    partial.write_bytes(b"half a checkpoint")
    result = train(MLP, SPEC, TC, out=run_dir)
    assert result.ok and not partial.exists()
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "run.json", "state"]


def test_a_foreign_hosts_lock_needs_break_lock_and_then_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    forge_holder(run_dir, 4242, "gpu-node-7.cluster")
    with pytest.raises(RunLockedError) as info:
        train(MLP, SPEC, TC, out=run_dir)
    msg = str(info.value)
    assert "PID 4242 on gpu-node-7.cluster" in msg and "(1 h ago)" in msg and "interp-train --out x" in msg
    assert "cannot check whether it is still alive" in msg and "--break-lock" in msg and "break_lock=True" in msg
    assert train(MLP, SPEC, TC, out=run_dir, break_lock=True).ok
    assert not (run_dir / LOCK_NAME).exists()


def test_a_writer_that_loses_its_lock_stops_writing_and_the_others_go_on(tmp_path):
    def steal(index, entry):  # another host breaks the lock of run seed=1 after step 10
        if index == 1 and entry["step"] == 10:
            forge_holder(tmp_path / "sweep" / "seed=1", 4242, "other-host")

    jobs = [(MLP, SPEC, TrainConfig(steps=20, eval_every=10, checkpoint_every=10, seed=s)) for s in (0, 1)]
    results = train_many(jobs, out=tmp_path / "sweep", callback=steal)
    assert [r.status for r in results] == ["complete", "failed"]
    assert "lost the writer lock" in results[1].message and "PID 4242 on other-host" in results[1].message
    assert list(run_steps(tmp_path / "sweep" / "seed=1")) == [0, 10]  # nothing written after the lock was taken
    assert load_run(tmp_path / "sweep" / "seed=1").status == "running"


def test_loading_removes_a_dead_writers_temp_files_but_never_a_live_ones(tmp_path):
    train(MLP, SPEC, TC, out=tmp_path / "run")
    ck = tmp_path / "run" / "checkpoints"
    dead = ck / f".step_0000030.safetensors.{dead_pid()}.{host_tag()}.0123456789abcdef.tmp"
    live = ck / f".step_0000030.safetensors.{os.getpid()}.{host_tag()}.fedcba9876543210.tmp"
    foreign = ck / f".step_0000030.safetensors.77.{host_tag('elsewhere')}.00112233445566aa.tmp"
    old = tmp_path / "run" / ".run.json.00112233445566bb.tmp"  # the old name, without a PID: by age only
    for f in (dead, live, foreign, old):
        f.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert load(tmp_path / "run").step == 20
    assert not dead.exists() and not old.exists()
    assert live.exists() and foreign.exists()  # a live writer's, and one of a host we cannot check (recent)
    assert set(remove_stale_temp_files(ck, locked=True)) == {foreign, live}  # under the lock: every one
    assert sorted(load_tensors(f)[1]["step"] for f in run_steps(tmp_path / "run").values()) == ["0", "10", "20"]


@pytest.mark.slow
def test_two_interp_train_processes_on_one_directory_one_trains_the_other_is_refused(tmp_path):
    """Started together with different seeds: one is refused at once, naming the other; the run holds
    only the other's files (it is stopped once the refusal is seen, to keep the test short)."""
    out = tmp_path / "run"
    argv = ["--p", "11", "--width", "8", "--steps", "100000", "--eval-every", "100", "--checkpoint-every", "100"]
    cmd = [sys.executable, "-m", "interp.cli.train", *argv, "--out", str(out), "--quiet", "--save-state-every", "0"]
    procs = [subprocess.Popen([*cmd, "--seed", str(s)], stderr=subprocess.PIPE, text=True) for s in (0, 1)]
    try:
        deadline = time.time() + 120
        while all(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.1)
        loser = next(i for i, p in enumerate(procs) if p.poll() is not None)
        winner = 1 - loser
        assert procs[loser].returncode == 2
        err = procs[loser].stderr.read()
        assert f"being written by another process: PID {procs[winner].pid} on {socket.gethostname()}" in err, err
        while not run_steps(out) and time.time() < deadline:  # the winner goes on writing
            time.sleep(0.1)
        assert procs[winner].poll() is None
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            p.wait(60)
    seeds = {json.loads(load_tensors(f)[1]["train_config"])["seed"] for f in run_steps(out).values()}
    assert seeds == {winner}
    assert json.loads((out / "run.json").read_text())["train_config"]["seed"] == winner
    assert not (out / LOCK_NAME).exists()  # Ctrl-C released it


@pytest.mark.slow
def test_a_killed_writer_leaves_a_lock_the_next_resume_takes_over(tmp_path):
    """SIGKILL mid-run: the stale lock does not block --resume, which finishes the run."""
    out = tmp_path / "run"
    argv = ["--p", "11", "--width", "8", "--steps", "20000", "--eval-every", "100", "--save-state-every", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "interp.cli.train", *argv, "--out", str(out), "--quiet"])
    try:
        deadline = time.time() + 120
        while not (out / "state" / "resume.safetensors").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert SoftFileLock(str(out / LOCK_NAME)).pid == proc.pid
        with pytest.raises(RunLockedError, match=f"PID {proc.pid}"):
            train(MLP, SPEC, TC, out=out, resume=True)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (out / LOCK_NAME).exists()  # left behind by the killed writer
    from interp.cli.train import main
    from interp.train.rundir import saved_step

    steps = saved_step(out) + 100
    assert main(["--out", str(out), "--resume", "--steps", str(steps), "--quiet"]) == 0
    assert load(out).step == steps and not (out / LOCK_NAME).exists()


def test_interp_train_into_a_foreign_hosts_run_exits_2_and_break_lock_takes_it_over(tmp_path, capsys):
    from interp.cli.train import main

    forge_holder(tmp_path / "run", 4242, "gpu-node-7.cluster")
    argv = ["--p", "11", "--width", "8", "--steps", "4", "--eval-every", "2", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "PID 4242 on gpu-node-7.cluster" in err and "--break-lock" in err
    assert main([*argv, "--break-lock"]) == 0
    assert load(tmp_path / "run").step == 4


def test_the_next_write_of_a_file_removes_the_temp_file_its_killed_writer_left(tmp_path):
    from interp.files import atomic_write_bytes

    dead = tmp_path / f".report.html.{dead_pid()}.{host_tag()}.0123456789abcdef.tmp"
    live = tmp_path / f".report.html.{os.getpid()}.{host_tag()}.fedcba9876543210.tmp"
    other = tmp_path / f".notes.txt.{dead_pid()}.{host_tag()}.00112233445566aa.tmp"
    for f in (dead, live, other):
        f.write_bytes(b"partial")
    atomic_write_bytes(tmp_path / "report.html", b"<html>")
    assert not dead.exists() and live.exists() and other.exists()  # only that file's, only a dead writer's


def test_two_jobs_given_one_run_directory_are_refused(tmp_path):
    jobs = [(MLP, SPEC, TrainConfig(steps=4, eval_every=2, seed=s)) for s in (0, 1)]
    with pytest.raises(SpecError, match=r"train_many\.out=.*run.*given twice"):
        train_many(jobs, out=[tmp_path / "run", tmp_path / "x" / ".." / "run"])
    assert not (tmp_path / "run").exists()
