"""`train_many(backend="ray")`: on a local Ray (2 CPUs, started here) a sweep gives the same run
directories and weights as `backend="local"`, a worker that dies is retried and resumes from its saved
state, and a missing install, a bad address or an unwritable `out` fail at once, writing nothing."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
import sys
import time

import pytest
import torch

from interp.checkpoints import load_tensors, run_steps
from interp.errors import CheckpointError, SpecError
from interp.models import MLPConfig, TransformerConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, train_many
from interp.train.rundir import state_path

pytestmark = pytest.mark.slow  # trains for tens of seconds (or starts Ray clusters): the slow suite

ray = pytest.importorskip("ray", reason="the Ray backend's tests need `pip install grokscope[ray]`")

SPEC = TaskSpec(op="x+y", p=13, frac_train=0.5, label_noise=0.2)
# on the CPU even where a GPU exists: bit-for-bit comparisons need one deterministic device
BASE = TrainConfig(steps=20, lr=5e-3, eval_every=10, checkpoint_every=10, warmup_steps=3, device="cpu")
MLP = MLPConfig(p=13, width=16)
TRANSFORMER = TransformerConfig(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32)
DIVERGING = dataclasses.replace(BASE, lr=1e4, optimizer="sgd", momentum=0.0, warmup_steps=0, checkpoint_every=None)


def sweep_jobs():
    """Three MLPs (one shape group, two Ray tasks of at most 2), a transformer, and an SGD run that diverges."""
    mlps = [(MLP, SPEC, dataclasses.replace(BASE, seed=s, weight_decay=wd)) for s, wd in ((0, 1.0), (1, 0.1), (2, 1.0))]
    return [*mlps, (TRANSFORMER, SPEC, BASE), (MLPConfig(p=13, width=16, act="quad"), SPEC, DIVERGING)]


# ----- failures before anything runs (no Ray needed: these come first, before the fixture starts one) --
def test_a_missing_ray_install_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "interp.train.ray_backend", raising=False)
    with pytest.raises(SpecError, match=r"ray is not.*pip install grokscope\[ray\]"):
        train_many(sweep_jobs()[:1], out=tmp_path / "sweep", backend="ray")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    "address,message",
    [
        ("head-node", r"expected 'auto', HOST:PORT or ray://HOST:PORT"),
        ("no-such-host.invalid:6379", r"Nothing answers at no-such-host\.invalid:6379.*ray start --head"),
    ],
)
def test_a_bad_address_fails_in_seconds_and_writes_nothing(tmp_path, address, message):
    assert not ray.is_initialized()
    with pytest.raises(SpecError, match=message):
        train_many(sweep_jobs()[:1], out=tmp_path / "sweep", backend="ray", address=address)
    assert not (tmp_path / "sweep").exists()


def test_a_stale_auto_session_fails_in_seconds_naming_it(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port where nothing listens: the address a stopped cluster left behind
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(SpecError, match=rf"recorded on this machine \(127\.0\.0\.1:{port}\) does not answer.*ray stop"):
        train_many(sweep_jobs()[:1], out=tmp_path / "sweep", backend="ray", address="auto")
    assert time.monotonic() - t0 < 30 and not ray.is_initialized() and not (tmp_path / "sweep").exists()


def test_an_address_that_answers_but_is_no_ray_head_fails_at_the_deadline(tmp_path, monkeypatch):
    """A listener that accepts and never speaks Ray (a stale port reused, a tunnel to nowhere): the
    connection probe is killed at the deadline instead of retrying for minutes."""
    import interp.train.ray_backend as backend

    monkeypatch.setattr(backend, "CONNECT_DEADLINE_S", 4.0)
    server = socket.create_server((backend._machine_address() or "127.0.0.1", 0))
    port = server.getsockname()[1]
    host = backend._machine_address() or "127.0.0.1"
    try:
        t0 = time.monotonic()
        with pytest.raises(SpecError, match=r"did not accept a connection within 4 s|could not connect"):
            train_many(sweep_jobs()[:1], out=tmp_path / "sweep", backend="ray", address=f"{host}:{port}")
        assert time.monotonic() - t0 < 40
    finally:
        server.close()
    assert not ray.is_initialized() and not (tmp_path / "sweep").exists()


def test_a_head_listening_on_loopback_only_is_refused_with_the_reason(tmp_path):
    import interp.train.ray_backend as backend

    if backend._machine_address() in (None, "127.0.0.1"):
        pytest.skip("this machine has no address besides loopback")
    server = socket.create_server(("127.0.0.1", 0))  # answers on loopback, not on the machine's address
    try:
        with pytest.raises(SpecError, match=r"listens on loopback only"):
            train_many(
                sweep_jobs()[:1], out=tmp_path / "s", backend="ray", address=f"127.0.0.1:{server.getsockname()[1]}"
            )
    finally:
        server.close()
    assert not (tmp_path / "s").exists()


def test_ray_options_are_checked_before_connecting(tmp_path):
    with pytest.raises(SpecError, match="train_many.models_per_task=0"):
        train_many(sweep_jobs()[:1], out=tmp_path / "s", backend="ray", models_per_task=0)
    with pytest.raises(SpecError, match="train_many.out=None.*a folder"):
        train_many(sweep_jobs()[:1], backend="ray")
    with pytest.raises(SpecError, match="train_many.backend='dask'"):
        train_many(sweep_jobs()[:1], out=tmp_path / "s", backend="dask")
    assert not ray.is_initialized() and not (tmp_path / "s").exists()


# ----- on a local Ray -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a stale session
    # the callbacks below are defined in this test module, which the workers cannot import: send them by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def same_run_directory(a, b):
    """The same run.json and the same tensors in every checkpoint and in the resume state."""
    assert json.loads((a / "run.json").read_text()) == json.loads((b / "run.json").read_text())
    assert list(run_steps(a)) == list(run_steps(b))
    for file_a, file_b in [*zip(run_steps(a).values(), run_steps(b).values()), (state_path(a), state_path(b))]:
        (ta, ma), (tb, mb) = load_tensors(file_a), load_tensors(file_b)
        assert ma == mb and ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def test_a_sweep_on_ray_writes_the_same_run_directories_and_weights_as_local(local_ray, tmp_path):
    jobs = sweep_jobs()
    local = train_many(jobs, out=tmp_path / "local", max_models=2)  # the same chunks as models_per_task=2
    steps_done = []
    remote = train_many(jobs, out=tmp_path / "ray", backend="ray", models_per_task=2, progress=steps_done.append)
    assert [r.status for r in remote] == ["complete"] * 4 + ["diverged"]  # the diverging run ends alone
    assert [r.status for r in local] == [r.status for r in remote]
    assert remote[4].model is None and "lower the learning rate" in remote[4].message
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(
        p.name for p in (tmp_path / "local").iterdir()
    )
    for lr, rr in zip(local[:4], remote[:4]):
        for a, b in zip(lr.model.parameters(), rr.model.parameters()):
            assert torch.equal(a, b)
        same_run_directory(lr.out, rr.out)
    assert sum(steps_done) >= 4 * 20  # the actor's count of model-steps reached the driver's progress hook
    index = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    assert [r["status"] for r in index["runs"]] == [r.status for r in remote]


def die_once_after_step_10(log: str, index: int, entry: dict) -> None:
    """Runs on the worker: record each evaluation; on the first attempt, kill the worker process right
    after the last model of the chunk has saved its step-10 checkpoint and resume state."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {index} {entry['step']}\n")
    marker = log + ".died"
    if entry["step"] == 10 and index == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)


def test_a_worker_killed_mid_task_is_retried_and_resumes_from_its_checkpoint(local_ray, tmp_path):
    jobs = sweep_jobs()[:2]
    log = tmp_path / "evaluations.log"
    callback = functools.partial(die_once_after_step_10, str(log))
    remote = train_many(jobs, out=tmp_path / "ray", backend="ray", callback=callback)
    local = train_many(jobs, out=tmp_path / "local")
    assert (tmp_path / "evaluations.log.died").exists()
    attempts: dict[str, list[int]] = {}
    for line in log.read_text().splitlines():
        pid, index, step = line.split()
        attempts.setdefault(pid, []).append(int(step))
    first, retry = attempts.values()
    assert first == [0, 0, 10, 10]  # both models evaluated at 0 and 10, then the process died
    assert retry == [20, 20]  # the retry resumed from step 10: no step 0 again
    for lr, rr in zip(local, remote):
        assert rr.status == "complete", rr.message
        for a, b in zip(lr.model.parameters(), rr.model.parameters()):
            assert torch.equal(a, b)
        same_run_directory(lr.out, rr.out)


def test_a_task_that_still_fails_marks_its_runs_failed_and_resume_finishes_them(local_ray, tmp_path):
    jobs = sweep_jobs()[:2]
    callback = functools.partial(die_once_after_step_10, str(tmp_path / "evaluations.log"))
    failed = train_many(jobs, out=tmp_path / "ray", backend="ray", callback=callback, max_retries=0)
    assert [r.status for r in failed] == ["failed", "failed"]
    assert "resume=True" in failed[0].message and [h["step"] for h in failed[0].history] == [0, 10]
    resumed = train_many(jobs, out=tmp_path / "ray", backend="ray", resume=True)
    local = train_many(jobs, out=tmp_path / "local")
    for lr, rr in zip(local, resumed):
        assert rr.status == "complete"
        same_run_directory(lr.out, rr.out)


def test_interp_train_ray_flag_trains_the_sweep_file_on_ray(local_ray, tmp_path, capsys):
    from interp.cli.train import main

    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        f'out = "{(tmp_path / "runs").as_posix()}"\n[task]\nop = "x+y"\np = 11\n[model]\nwidth = [8, 12]\n'
        "[train]\nsteps = 6\neval_every = 3\nseed = [0, 1]\n"
    )
    assert main(["--sweep", str(sweep), "--ray", "--models-per-task", "2", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()) == [
        "width=12,seed=0", "width=12,seed=1", "width=8,seed=0", "width=8,seed=1",
    ]  # fmt: skip
    assert re.search(r"width=8,seed=1 +complete", capsys.readouterr().out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_groups_ask_ray_for_a_gpu_share_and_match_local_training(local_ray, tmp_path):
    jobs = [(m, t, dataclasses.replace(c, device="cuda")) for m, t, c in sweep_jobs()[:4]]
    local = train_many(jobs, out=tmp_path / "local", max_models=2)
    remote = train_many(jobs, out=tmp_path / "ray", backend="ray", models_per_task=2, gpus_per_task=0.5)
    assert [r.status for r in remote] == ["complete"] * 4
    for lr, rr in zip(local, remote):
        assert next(rr.model.parameters()).device.type == "cpu"  # results come back to the driver's CPU
        for a, b in zip(lr.model.parameters(), rr.model.parameters()):
            torch.testing.assert_close(b, a.cpu(), rtol=1e-4, atol=1e-5)  # GPU kernels need not be bitwise stable


def test_an_out_the_workers_cannot_write_fails_first_and_writes_nothing(local_ray, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"cannot write the sweep folder .*a-file/sweep.*nothing was trained"):
        train_many(sweep_jobs()[:2], out=tmp_path / "a-file" / "sweep", backend="ray")
    assert (tmp_path / "a-file").read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
