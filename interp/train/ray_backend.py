"""`train_many(backend="ray")`: the shape groups of a sweep as Ray tasks on a cluster (docs/ray.md).

Each group of models of one shape (or each chunk of `models_per_task` of them) is one Ray task that
asks for a GPU (or a fraction of one) when its device is CUDA, or CPUs otherwise, and trains with the
local path (`interp.train.local`) inside the worker. The workers write the run directories to `out`,
which every node must be able to write (a shared filesystem; checked on every node before anything
is written), rather than sending weights back through Ray's object store for the driver to write: a
task retried after its worker died (Ray's `max_retries`; no retry loop here) must find the saved
states of the run it is continuing, and a trajectory's checkpoints would otherwise all pass through
the driver's memory. Only each run's final weights and history come back.

Progress is best effort: every worker adds its model-steps to one actor, placed on the driver's node,
which the driver reads into its one bar without ever waiting on it. Losing it (its node, a restart)
costs the bar, never a result: the workers ignore a dead counter and the driver says the bar stopped.
Results come from the tasks and, when a task fails, from its run directories: a run whose files say it
finished is complete whatever happened to the task that trained it.

Connecting has a deadline (`CONNECT_DEADLINE_S`, or GROKSCOPE_RAY_CONNECT_TIMEOUT seconds): an address is
checked with a TCP connection, then a throw-away process connects to it and is killed if it has not
connected in time, so a stale session, a head that only listens on loopback, or any other address Ray
would retry for minutes fails at once with a message. With no address a new private Ray starts on this
machine (`address="local"`, never a session left by another program), without the dashboard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from interp.checkpoints.format import RUN_FILE, read_run_json
from interp.errors import CheckpointError, GrokscopeError, SpecError, StorageError
from interp.train.engine import Hooks, Job, Outcome, group_key
from interp.train.local import prepare_jobs, run_local
from interp.train.rundir import read_state, saved_step

_ADDRESS = re.compile(r"^(ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})$")
CONNECT_TIMEOUT_S = 5.0  # a TCP connection to the head's port
CONNECT_DEADLINE_S = float(os.environ.get("GROKSCOPE_RAY_CONNECT_TIMEOUT", "60"))  # a whole ray.init
_POLL_S = 0.5  # how often the driver reads the progress actor while it waits for tasks
_COUNTER_WAIT_S = 5.0  # the longest a worker waits for the counter at the end of its task


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
        counter = _start_counter()
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
                chunk_id, payload, hooks.callback, hooks.state_every_s, max_models, self.cpus_per_task, counter,
                hooks.keep_weights,
            )  # fmt: skip
            refs[ref] = members
        try:
            outcomes = self._collect(refs, counter, hooks.progress)
        finally:
            try:
                ray.kill(counter)
            except Exception:  # noqa: BLE001 - the counter is gone already: nothing to stop
                pass
        storage = [o for o in outcomes.values() if o.status == "failed" and o.message.startswith(_STORAGE)]
        if storage:  # a full disk on a worker: the sweep stops as it does here (runs finished are kept)
            raise StorageError(storage[0].message[len(_STORAGE) :])
        return outcomes

    def _chunks(self, jobs: list[Job]) -> list[list[Job]]:
        groups: dict[tuple, list[Job]] = {}
        for job in jobs:  # grouped by the device asked for: the workers resolve it, not the driver
            groups.setdefault(group_key(job, job.cfg.device), []).append(job)
        size = self.models_per_task
        return [m[k : k + (size or len(m))] for m in groups.values() for k in range(0, len(m), size or len(m))]

    def _collect(self, refs: dict, counter, progress) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        pending = list(refs)
        bar = _Progress(counter, progress)
        try:
            while pending:
                try:
                    done, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
                except (ray.exceptions.RayError, ConnectionError) as exc:  # the cluster itself is gone
                    for ref in pending:
                        outcomes.update({j.index: self._failed(j, exc, lost_cluster=True) for j in refs[ref]})
                    pending = []
                    break
                bar.poll()
                for ref in done:
                    try:
                        outcomes.update(ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        outcomes.update({j.index: self._failed(j, exc) for j in refs[ref]})
            bar.poll(final=True)
        finally:
            for ref in pending:  # the driver stopped early (Ctrl-C): stop the work it will not collect
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort while stopping
                    pass
        return outcomes

    def _failed(self, job: Job, exc: Exception, lost_cluster: bool = False) -> Outcome:
        """The outcome of a job whose task failed: what its run directory says when that shows it finished
        (its files are the result), else "failed" with the cause and how to continue."""
        finished = outcome_from_run_dir(job)
        if finished is not None:
            return finished
        cause = getattr(exc, "cause", None) or exc
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
        try:
            history = (
                read_run_json(Path(job.run_dir)).get("history", []) if (Path(job.run_dir) / RUN_FILE).exists() else []
            )
        except GrokscopeError:
            history = []
        if isinstance(cause, StorageError):
            return Outcome("failed", history, None, _STORAGE + str(cause))
        what = (
            "the connection to the Ray cluster was lost"
            if lost_cluster
            else f"the Ray task training this run failed ({type(cause).__name__}: {first_line})"
            + (f" after {self.max_retries} retries of a dead worker" if _worker_died(exc) else "")
        )
        return Outcome(
            "failed",
            history,
            None,
            f"{what}. What it saved is kept in {job.run_dir}: run the sweep again with resume=True "
            "(interp-train --resume) to continue from there.",
        )


_STORAGE = "StorageError: "


def _worker_died(exc: Exception) -> bool:
    return isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)) or (
        "died" in type(exc).__name__.lower() or "crash" in type(exc).__name__.lower()
    )


def outcome_from_run_dir(job: Job) -> Outcome | None:
    """A finished job's outcome read from its run directory (None unless run.json says "complete" or
    "diverged" and, for a complete run, the resume state holds the last step)."""
    run_dir = Path(job.run_dir)
    try:
        doc = read_run_json(run_dir)
        if doc.get("status") == "diverged":
            record = doc.get("extra", {}).get("diverged") or {}
            return Outcome(
                "diverged",
                doc.get("history", []),
                None,
                str(record.get("message", "training diverged")),
                diverged_step=record.get("step"),
                last_good_checkpoint=record.get("last_good_checkpoint"),
            )
        if doc.get("status") != "complete":
            return None
        point = read_state(run_dir, model_config=job.model_config, task=job.task, train_config=job.cfg)
    except GrokscopeError:
        return None
    if point.step < job.cfg.steps:
        return None
    return Outcome("complete", point.history, {k: v.detach().cpu() for k, v in point.params.items()})


def _start_counter():
    """The progress actor, on the driver's node (so it goes only with the driver), or None if it cannot start."""
    try:
        here = ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(here, soft=True)
        return ProgressCounter.options(scheduling_strategy=strategy).remote()
    except Exception:  # noqa: BLE001 - progress is best effort: no counter, no bar
        return None


class _Progress:
    """The driver's side of the progress actor: reads it without waiting, and stops (once, with a
    warning) when it is lost. Training does not depend on it."""

    def __init__(self, counter, progress):
        self.counter, self.progress = counter, progress
        self.shown, self.pending, self.lost = 0, None, counter is None and progress is not None

    def poll(self, final: bool = False) -> None:
        if self.progress is None or self.lost:
            return
        try:
            if self.pending is None:
                self.pending = self.counter.total.remote()
            ready, _ = ray.wait([self.pending], timeout=_COUNTER_WAIT_S if final else 0)
            if not ready:
                if final:
                    raise TimeoutError(f"no answer in {_COUNTER_WAIT_S:.0f} s")
                return
            total, self.pending = ray.get(self.pending), None
        except Exception as exc:  # noqa: BLE001 - ActorDiedError, a lost node...: the bar stops, training goes on
            self.lost = True
            warnings.warn(
                f"the progress counter of this Ray sweep was lost ({type(exc).__name__}: "
                f"{(str(exc).strip().splitlines() or [''])[0][:120]}); the progress bar stops here, training goes "
                "on and every result still comes back.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if total != self.shown:
            self.progress(total - self.shown)
            self.shown = total


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
def train_chunk(
    chunk_id, jobs, callback, state_every_s, max_models, n_threads, counter, keep_weights=True
) -> dict[int, Outcome]:
    """One Ray task: train a chunk of one shape group into its run directories, resuming what a
    previous attempt of this task saved; the final weights (on the CPU) and histories come back."""
    torch.set_num_threads(n_threads)
    gpu_ids = ray.get_gpu_ids()
    jobs = [dataclasses.replace(j, cfg=_device_here(j.cfg, bool(gpu_ids))) for j in jobs]
    _tell(counter, "start", chunk_id, sum(saved_step(j.run_dir) for j in jobs))

    def progress(n: int) -> None:
        _tell(counter, "add", chunk_id, n)

    hooks = Hooks(callback=callback, progress=progress, state_every_s=state_every_s, keep_weights=keep_weights)
    # the driver checked these run directories; what is there now is this task's own earlier attempt
    outcomes, todo = prepare_jobs(jobs, resume=True, overwrite=True)
    outcomes.update(run_local(todo, hooks, max_models))
    try:  # runs after this worker's `add`s, so the driver's last read sees them all; never fails the task
        ray.get(counter.total.remote(), timeout=_COUNTER_WAIT_S)
    except Exception:  # noqa: BLE001 - progress is best effort
        pass
    for o in outcomes.values():
        if o.state_dict is not None:
            o.state_dict = {k: v.detach().cpu() for k, v in o.state_dict.items()}
    return outcomes


def _tell(counter, method: str, *args) -> None:
    """Send the progress counter a message and never wait for it or fail on it."""
    if counter is None:
        return
    try:
        getattr(counter, method).remote(*args)
    except Exception:  # noqa: BLE001 - a dead counter costs the progress bar, never the task
        pass


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
    """Connect to the cluster at `address` ("auto", HOST:PORT, ray://HOST:PORT), or with None start a new
    private Ray on this machine; True when this call started the connection (and so should end it).

    Every connection has a deadline (CONNECT_DEADLINE_S) and fails with a SpecError saying what to do."""
    if ray.is_initialized():
        if address is None:
            return False  # the caller's Ray
        raise SpecError(
            "train_many", "address", address, "None while this process is already connected to Ray",
            "Call ray.shutdown() first, or pass address=None to use the Ray this process started.",
        )  # fmt: skip
    if address is None:
        # "local": never a session another program left; loopback only (`_single_node_mode`), no dashboard
        with _single_node_mode():
            _init_with_deadline(
                dict(address="local", include_dashboard=False, _node_ip_address="127.0.0.1"),
                "a new Ray on this machine",
                "Check that /tmp has space and that no firewall blocks local ports; `ray start --head` shows Ray's own "
                "error.",
            )
        return True
    target = resolve_address(address)
    probe_connection(address, target)
    _init_with_deadline(
        dict(address=address),
        f"the Ray cluster at {address}",
        "Check the address (`ray status` on the head prints it).",
    )
    return True


@contextlib.contextmanager
def _single_node_mode():
    """Ray's single-node mode for the block: a new local Ray then binds every server to loopback (127.0.0.1)
    instead of this machine's network address. Ray turns it on by its setting RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    (ray._private.ray_constants.ENABLE_RAY_CLUSTER, read by the driver when it picks the node's address, and
    by the processes Ray starts, which inherit the environment); both are restored afterwards, so a later
    connection to a real cluster from this process is not affected."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    old_env = os.environ.get(_SINGLE_NODE_ENV)
    old_flag = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[_SINGLE_NODE_ENV] = "0"
    if old_flag is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(_SINGLE_NODE_ENV, None)
        else:
            os.environ[_SINGLE_NODE_ENV] = old_env
        if old_flag is not None:
            constants.ENABLE_RAY_CLUSTER = old_flag


_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def resolve_address(address: str) -> str:
    """HOST:PORT that `address` names ("auto": the cluster recorded on this machine), checked for a listener;
    SpecError for a malformed address, no recorded cluster, a stale one, or a port where nothing answers."""
    if address == "auto":
        recorded = _recorded_cluster()
        if recorded is None:
            raise SpecError(
                "train_many", "address", "auto", "the address of a running Ray cluster",
                "No Ray cluster runs on this machine (no RAY_ADDRESS and no session recorded by `ray start`). "
                "Start one with `ray start --head`, pass its HOST:PORT, or pass no address for a private local Ray.",
            )  # fmt: skip
        try:
            _check_reachable(recorded)
        except SpecError:
            raise SpecError(
                "train_many", "address", "auto", "the address of a running Ray cluster",
                f"The Ray session recorded on this machine ({recorded}) does not answer: it is stale, left by a "
                "cluster that stopped. Run `ray stop` to clear it and `ray start --head` to start a new one, or "
                "pass no address for a private local Ray.",
            ) from None  # fmt: skip
        return recorded
    _check_reachable(address)
    m = _ADDRESS.match(address)
    host, port = m["host"].strip("[]"), int(m["port"])
    if _is_loopback(host) and not address.startswith("ray://"):
        # Ray replaces a loopback address with this machine's network address and retries that for minutes
        ours = _machine_address()
        if ours is not None and not _answers(ours, port):
            raise SpecError(
                "train_many", "address", address, "the address of a Ray head that listens on this machine's address",
                f"Something answers at {host}:{port}, but Ray connects through this machine's address ({ours}:{port}) "
                "instead of a loopback one, and nothing answers there: the head listens on loopback only (or this "
                f"is a tunnel to another machine). Start the head with `ray start --head --port={port}` (it listens "
                f"on {ours}), or submit from the head node with --ray auto.",
            )  # fmt: skip
    return f"{host}:{port}"


def _recorded_cluster() -> str | None:
    """The address of the cluster `ray.init(address="auto")` would join: RAY_ADDRESS, or the session file."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:
        from ray._private.services import get_ray_address_from_environment  # the file `ray start` writes

        return get_ray_address_from_environment("auto", None)
    except Exception:  # noqa: BLE001 - another Ray release: let ray.init find it (under the deadline)
        return None


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _machine_address() -> str | None:
    """This machine's outward address, as Ray picks it (the source of a UDP route to a public address)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("8.8.8.8", 80))  # UDP: nothing is sent
            return s.getsockname()[0]
    except OSError:
        return None


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        return True
    except OSError:
        return False


_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, include_dashboard=False)
print("connected", flush=True)
ray.shutdown()
"""


def probe_connection(address: str, target: str, deadline: float | None = None) -> None:
    """Connect to `address` from a throw-away process and kill it if it has not connected within `deadline`
    seconds: ray.init may retry an address it cannot use for many minutes, and cannot be stopped from inside."""
    deadline = CONNECT_DEADLINE_S if deadline is None else deadline
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, address], capture_output=True, text=True, timeout=deadline,
            start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SpecError(
            "train_many", "address", address, "a Ray cluster that accepts this driver",
            f"Ray at {target} did not accept a connection within {deadline:.0f} s (a stale session, a head bound to "
            "another address than the one it advertises, a firewall between the nodes, or a Ray version mismatch). "
            "Check `ray status` on the head, and GROKSCOPE_RAY_CONNECT_TIMEOUT=SECONDS to wait longer.",
        ) from None  # fmt: skip
    if proc.returncode != 0 or "connected" not in proc.stdout:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise SpecError(
            "train_many", "address", address, "a Ray cluster that accepts this driver",
            f"Ray could not connect to {target} ({last}) after {time.monotonic() - t0:.0f} s. Check the address, "
            "that the head runs the same Ray and Python versions, and `ray status` on the head.",
        )  # fmt: skip


def _init_with_deadline(kwargs: dict, what: str, fix: str) -> None:
    """ray.init(**kwargs), its errors as a SpecError naming `what`. Its deadline: an address has passed
    `probe_connection` just before; a new local Ray has Ray's own start-up timeouts (30 s per process)."""
    try:
        ray.init(log_to_driver=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, TimeoutError...
        raise SpecError(
            "train_many", "address", kwargs.get("address"), "the address of a running Ray cluster",
            f"Ray could not start or connect to {what} ({type(exc).__name__}: {exc}). {fix}",
        ) from exc  # fmt: skip


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
