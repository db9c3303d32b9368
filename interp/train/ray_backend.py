"""`train_many(backend="ray")`: the shape groups of a sweep as Ray tasks on a cluster (docs/ray.md).

Each group of models of one shape (or each chunk of `models_per_task` of them) is one Ray task that
asks for a GPU (or a fraction of one) when its device is CUDA, or CPUs otherwise, and trains with the
local path (`interp.train.local`) inside the worker. The workers write the run directories to `out`,
which every node must be able to write (a shared filesystem; checked on every node before anything
is written), rather than sending weights back through Ray's object store for the driver to write: a
task retried after its worker died (Ray's `max_retries`; no retry loop here) must find the saved
states of the run it is continuing, and a trajectory's checkpoints would otherwise all pass through
the driver's memory. Only each run's final weights and history come back. Progress: every worker
adds its model-steps to one actor, which the driver reads into its one bar.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from interp.checkpoints.format import RUN_FILE, read_run_json
from interp.errors import CheckpointError, SpecError
from interp.train.engine import Hooks, Job, Outcome, group_key
from interp.train.local import prepare_jobs, run_local
from interp.train.rundir import saved_step

_ADDRESS = re.compile(r"^(ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})$")
CONNECT_TIMEOUT_S = 5.0
_POLL_S = 0.5  # how often the driver reads the progress actor while it waits for tasks


class RayCluster:
    """A connection to a Ray cluster that trains prepared jobs: `run(jobs, hooks, max_models)`, then `close()`."""

    def __init__(
        self,
        address: str | None,
        run_dirs: list,
        *,
        models_per_task: int | None = None,
        gpus_per_task: float = 1.0,
        cpus_per_task: int = 1,
        max_retries: int = 3,
    ):
        _check_options(models_per_task, gpus_per_task, cpus_per_task, max_retries)
        if not run_dirs or any(d is None for d in run_dirs):
            raise SpecError(
                "train_many", "out", None, "a folder (or one directory per job) for backend='ray'",
                "The workers write the run directories there; use a path on a filesystem every node mounts.",
            )  # fmt: skip
        self.models_per_task, self.gpus_per_task = models_per_task, float(gpus_per_task)
        self.cpus_per_task, self.max_retries = int(cpus_per_task), int(max_retries)
        self._owns_connection = connect(address)
        try:
            check_writable_everywhere(sorted({str(Path(d).parent) for d in run_dirs}))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect from (or stop) the Ray this object started; a Ray the caller started stays up."""
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False

    def run(self, jobs: list[Job], hooks: Hooks, max_models: int | None) -> dict[int, Outcome]:
        """Train `jobs` as Ray tasks; {job.index: Outcome}, status "failed" for a task that failed for good."""
        if not jobs:
            return {}
        counter = ProgressCounter.remote()
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        refs = {}
        for chunk_id, members in enumerate(self._chunks(jobs)):
            wants_gpu = _wants_gpu(members[0].cfg.device, has_gpus)
            options = dict(
                num_cpus=self.cpus_per_task,
                num_gpus=self.gpus_per_task if wants_gpu else 0,
                max_retries=self.max_retries,
                retry_exceptions=False,  # an error of ours is not a dead worker: report it, do not retry
                name=f"grokscope: {len(members)} models, first {members[0].run_dir}",
            )
            payload = [dataclasses.replace(j, resume=None) for j in members]  # the worker reads the states itself
            ref = train_chunk.options(**options).remote(
                chunk_id, payload, hooks.callback, hooks.state_every_s, max_models, self.cpus_per_task, counter
            )
            refs[ref] = members
        try:
            return self._collect(refs, counter, hooks.progress)
        finally:
            ray.kill(counter)

    def _chunks(self, jobs: list[Job]) -> list[list[Job]]:
        groups: dict[tuple, list[Job]] = {}
        for job in jobs:  # grouped by the device asked for: the workers resolve it, not the driver
            groups.setdefault(group_key(job, job.cfg.device), []).append(job)
        size = self.models_per_task
        return [m[k : k + (size or len(m))] for m in groups.values() for k in range(0, len(m), size or len(m))]

    def _collect(self, refs: dict, counter, progress) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        pending, shown = list(refs), 0
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
                shown = _report_progress(counter, progress, shown)
                for ref in done:
                    try:
                        outcomes.update(ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        outcomes.update({j.index: self._failed(j, exc) for j in refs[ref]})
            _report_progress(counter, progress, shown)
        finally:
            for ref in pending:  # the driver stopped early (Ctrl-C): stop the work it will not collect
                ray.cancel(ref, force=True)
        return outcomes

    def _failed(self, job: Job, exc: Exception) -> Outcome:
        cause = getattr(exc, "cause", None) or exc
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
        history = read_run_json(Path(job.run_dir)).get("history", []) if (Path(job.run_dir) / RUN_FILE).exists() else []
        return Outcome(
            "failed",
            history,
            None,
            f"the Ray task training this run failed ({type(cause).__name__}: {first_line}) after "
            f"{self.max_retries} retries of a dead worker. What it saved is kept in {job.run_dir}: run the "
            "sweep again with resume=True (interp-train --resume) to continue from there.",
        )


@ray.remote(num_cpus=0)
class ProgressCounter:
    """Model-steps completed per task (the one actor the workers report to and the driver reads)."""

    def __init__(self):
        self.done: dict[int, int] = {}

    def start(self, chunk_id: int, already_done: int) -> None:
        self.done[chunk_id] = already_done  # a retried task starts again from its runs' saved states

    def add(self, chunk_id: int, n: int) -> None:
        self.done[chunk_id] = self.done.get(chunk_id, 0) + n

    def total(self) -> int:
        return sum(self.done.values())


@ray.remote
def train_chunk(chunk_id, jobs, callback, state_every_s, max_models, n_threads, counter) -> dict[int, Outcome]:
    """One Ray task: train a chunk of one shape group into its run directories, resuming what a
    previous attempt of this task saved; the final weights (on the CPU) and histories come back."""
    torch.set_num_threads(n_threads)
    gpu_ids = ray.get_gpu_ids()
    jobs = [dataclasses.replace(j, cfg=_device_here(j.cfg, bool(gpu_ids))) for j in jobs]
    counter.start.remote(chunk_id, sum(saved_step(j.run_dir) for j in jobs))

    def progress(n: int) -> None:
        counter.add.remote(chunk_id, n)

    hooks = Hooks(callback=callback, progress=progress, state_every_s=state_every_s)
    # the driver checked these run directories; what is there now is this task's own earlier attempt
    outcomes, todo = prepare_jobs(jobs, resume=True, overwrite=True)
    outcomes.update(run_local(todo, hooks, max_models))
    ray.get(counter.total.remote())  # runs after this worker's `add`s: the driver's last read sees them all
    for o in outcomes.values():
        if o.state_dict is not None:
            o.state_dict = {k: v.detach().cpu() for k, v in o.state_dict.items()}
    return outcomes


def _device_here(cfg, has_gpu: bool):
    """The train config as this worker runs it: Ray's CUDA_VISIBLE_DEVICES renumbers the GPUs it gave
    the task from 0 ("cuda:3" -> "cuda"), and a CPU task on a GPU node stays off the GPUs."""
    if cfg.device.startswith("cuda:"):
        return dataclasses.replace(cfg, device="cuda")
    if cfg.device == "auto" and not has_gpu and torch.cuda.is_available():
        return dataclasses.replace(cfg, device="cpu")
    return cfg


def _wants_gpu(device: str, cluster_has_gpus: bool) -> bool:
    return device.startswith("cuda") or (device == "auto" and cluster_has_gpus)


def _report_progress(counter, progress, shown: int) -> int:
    if progress is None:
        return shown
    total = ray.get(counter.total.remote())
    if total != shown:
        progress(total - shown)
    return total


def _check_options(models_per_task, gpus_per_task, cpus_per_task, max_retries) -> None:
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if models_per_task is not None and (not is_int(models_per_task) or models_per_task < 1):
        raise SpecError("train_many", "models_per_task", models_per_task, "None (a whole shape group) or an int >= 1")
    if isinstance(gpus_per_task, bool) or not isinstance(gpus_per_task, (int, float)) or not 0 < gpus_per_task:
        raise SpecError("train_many", "gpus_per_task", gpus_per_task, "a number > 0 (e.g. 0.25 to share a GPU)")
    if not is_int(cpus_per_task) or cpus_per_task < 1:
        raise SpecError("train_many", "cpus_per_task", cpus_per_task, "an int >= 1")
    if not is_int(max_retries) or max_retries < 0:
        raise SpecError("train_many", "max_retries", max_retries, "an int >= 0")


def connect(address: str | None) -> bool:
    """Connect to the cluster at `address` (None: Ray's default, which starts a local Ray when no cluster
    is running); True when this call started the connection (and so should end it)."""
    if ray.is_initialized():
        if address is None:
            return False  # the caller's Ray
        raise SpecError(
            "train_many", "address", address, "None while this process is already connected to Ray",
            "Call ray.shutdown() first, or pass address=None to use the Ray this process started.",
        )  # fmt: skip
    if address is not None and address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False if address is None else None)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SpecError(
            "train_many", "address", address, "the address of a running Ray cluster",
            f"Ray could not connect ({type(exc).__name__}: {exc}). Start one with `ray start --head` and pass the "
            "address it prints, or address=None for a Ray on this machine.",
        ) from exc  # fmt: skip
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds, not after Ray's minutes of retries, when nothing listens at HOST:PORT."""
    m = _ADDRESS.match(address)
    if m is None:
        raise SpecError(
            "train_many", "address", address, "'auto', HOST:PORT or ray://HOST:PORT",
            "e.g. 10.0.0.5:6379, the address `ray start --head` prints.",
        )  # fmt: skip
    host, port = m["host"].strip("[]"), int(m["port"])
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise SpecError(
            "train_many", "address", address, "the address of a running Ray cluster's head node",
            f"Nothing answers at {host}:{port} ({exc}). Start the head with `ray start --head --port={port}`, "
            "check the host and port, or pass address=None for a Ray on this machine.",
        ) from exc  # fmt: skip


def check_writable_everywhere(folders: list[str]) -> None:
    """Create `folders` and write a probe file in each from every alive node; CheckpointError naming the
    node and the folder if one cannot, after removing the folders the check itself created."""
    created = [str(p) for p in _missing_ancestors(folders)]
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    probes = [
        probe_writable.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            folders
        )
        for n in nodes
    ]
    problems = [p for answer in ray.get(probes) for p in answer]
    if problems:
        for d in reversed(created):  # deepest first; only folders left empty
            try:
                Path(d).rmdir()
            except OSError:
                pass
        raise CheckpointError(
            "the Ray workers cannot write the run directories: "
            + "; ".join(problems[:4])
            + ". `out` must be a folder every node of the cluster can write (a shared filesystem mounted at "
            "the same path everywhere). Nothing was trained or written."
        )


def _missing_ancestors(folders: list[str]) -> list[Path]:
    """The folders (and their parents) that do not exist yet, shallowest first."""
    missing: set[Path] = set()
    for f in folders:
        p = Path(f).absolute()
        while not p.exists() and p != p.parent:
            missing.add(p)
            p = p.parent
    return sorted(missing, key=lambda p: len(p.parts))


@ray.remote(num_cpus=0, max_retries=0)
def probe_writable(folders: list[str]) -> list[str]:
    """On one node: make each folder and write and remove a probe file there; the problems found."""
    where = socket.gethostname()
    problems = []
    for f in folders:
        try:
            Path(f).mkdir(parents=True, exist_ok=True)
            probe = Path(f) / f".grokscope-write-check-{where}-{ray.get_runtime_context().get_worker_id()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            problems.append(f"on node {where}: {f} ({type(exc).__name__}: {exc.strerror or exc})")
    return problems
