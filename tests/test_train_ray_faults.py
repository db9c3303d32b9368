"""Ray without single points of failure, on a local multi-node cluster (ray.cluster_utils, this machine
only): losing the node that holds the progress counter costs the progress bar, never a result; losing a
worker node mid-task retries the task on another node, which resumes under the driver's lock; a private
local Ray never joins a session another program left."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import warnings

import pytest
import torch

from interp.models import MLPConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, train_many

ray = pytest.importorskip("ray", reason="the Ray backend's tests need `pip install grokscope[ray]`")
pytestmark = pytest.mark.slow(seconds=20)  # a Ray cluster per test

SPEC = TaskSpec(op="x+y", p=23, frac_train=0.5)
# long enough (a few seconds per task) for the nodes to go while the tasks train
BASE = TrainConfig(steps=3000, lr=5e-3, eval_every=500, checkpoint_every=1000, device="cpu")


def jobs(n: int = 4, steps: int = BASE.steps):
    return [(MLPConfig(p=23, width=64), SPEC, dataclasses.replace(BASE, seed=s, steps=steps)) for s in range(n)]


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    fast_failure_detection = {
        "health_check_initial_delay_ms": 0,
        "health_check_period_ms": 500,
        "health_check_failure_threshold": 3,
    }
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": fast_failure_detection},
    )
    c.add_node(num_cpus=1, resources={"counter": 1})  # the node the progress counter is pinned to
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield c, workers
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()
    c.shutdown()


def test_losing_the_progress_counters_node_and_a_worker_node_loses_no_result(cluster, tmp_path, monkeypatch):
    import interp.train.ray_backend as backend

    c, workers = cluster
    counter_node = next(n for n in c.worker_nodes if n not in workers)

    def counter_on_its_own_node():  # where the counter landed when the issue was found: a node that can go
        return backend.ProgressCounter.options(resources={"counter": 0.01}).remote()

    monkeypatch.setattr(backend, "_start_counter", counter_on_its_own_node)
    removed, seen = [], []

    def progress(n):  # on the driver: once work is under way, take away the counter's node and a worker's
        if not removed and seen.append(n) is None and sum(seen) >= 1000:
            removed.append(True)
            c.remove_node(counter_node, allow_graceful=False)
            c.remove_node(workers[0], allow_graceful=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remote = train_many(jobs(), out=tmp_path / "ray", backend="ray", models_per_task=2, progress=progress)
    assert removed
    assert [r.status for r in remote] == ["complete"] * 4, [r.message for r in remote]
    assert any("progress counter of this Ray sweep was lost" in str(w.message) for w in caught), [
        str(w.message)[:200] for w in caught
    ]
    index = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    assert [r["status"] for r in index["runs"]] == ["complete"] * 4
    local = train_many(jobs(), out=tmp_path / "local", max_models=2)
    for lr, rr in zip(local, remote):
        for a, b in zip(lr.model.parameters(), rr.model.parameters()):
            assert torch.equal(a, b)
    assert not list((tmp_path / "ray").rglob(".grokscope.lock"))  # every lock released


def die_after_the_last_write(index: int, entry: dict) -> None:
    """Runs on the worker, after each evaluation is written: the process dies once both runs are finished."""
    if index == 1 and entry["step"] == 500:
        os._exit(1)


def test_a_task_that_dies_after_its_runs_finished_reports_them_complete(tmp_path):
    """Results come from the run directories: a task whose runs are all written but whose worker then dies
    (no retries left) does not turn finished runs into failed ones."""
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        results = train_many(
            jobs(2, steps=500), out=tmp_path / "ray", backend="ray", max_retries=0, callback=die_after_the_last_write
        )
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()
    assert [r.status for r in results] == ["complete", "complete"], [r.message for r in results]
    local = train_many(jobs(2, steps=500), out=tmp_path / "local")
    for lr, rr in zip(local, results):
        assert json.dumps(rr.history) == json.dumps(lr.history)  # NaN (no noisy examples) compares equal as text
        for a, b in zip(lr.model.parameters(), rr.model.parameters()):
            assert torch.equal(a, b)


def test_a_private_local_ray_never_joins_a_stale_session(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("RAY_ADDRESS", dead)  # what a stopped cluster leaves for ray.init() to find
    results = train_many(jobs(1, steps=100), out=tmp_path / "ray", backend="ray")
    assert results[0].ok and not ray.is_initialized()  # it started its own Ray and stopped it


def test_a_private_local_ray_listens_on_loopback_only():
    """A Ray that grokscope starts on this machine serves nothing to the network: every port of every Ray
    process listens on 127.0.0.1 (Ray's single-node mode), not on the machine's address or 0.0.0.0."""
    import psutil

    from interp.train.ray_backend import connect

    assert connect(None)
    try:
        # our Ray's processes: the ones this driver started (GCS, raylet, agents) and theirs (workers), not
        # the Ray clusters other tests may be running beside this one
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        listening = [
            c.laddr.ip for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours
        ]
        assert listening, "the local Ray's processes listen somewhere"
        assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip in listening), sorted(set(listening))
    finally:
        ray.shutdown()
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None  # the mode ends with the block
