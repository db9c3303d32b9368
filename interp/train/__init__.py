"""Training: `TrainConfig`, `train` (one model) and `train_many` (a sweep as one batched computation).

Full batch by default, as in the papers. Both run the same loop (interp.train.engine) over flat
stacked weights with vectorised optimizers (interp.train.optim); `train` is a batch of one. What a
kind of problem brings (its data, loss, metrics, initial weights) is an objective
(interp.train.objective): the arithmetic tasks' (interp.train.pairs), fitting given targets
(interp.train.targets), or a study's. Run directories are written as training goes and can be
resumed, or trained longer (interp.train.rundir). The groups train in this process (interp.train.local)
or, with `backend="ray"`, as tasks on a Ray cluster (interp.train.ray_backend, docs/ray.md).
`TrainConfig` itself lives in interp.train_config, below storage, and is re-exported here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from interp.checkpoints import atomic_write_json
from interp.data_spec import DataSpec
from interp.device import resolve_device
from interp.errors import SpecError, TrainingDiverged
from interp.locks import lock_folders
from interp.models import ModelConfig, build_model, get_family
from interp.results import Result, to_jsonable
from interp.tasks import Task, TaskSpec
from interp.train.engine import Hooks, Job, Outcome
from interp.train.estimate import SweepEstimate, check_fits, estimate_prepared
from interp.train.local import prepare_jobs, run_local
from interp.train.objective import Objective
from interp.train.pairs import PairObjective
from interp.train.rundir import TrainState
from interp.train.targets import Targets
from interp.train_config import DTYPES, LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig, torch_dtype

__all__ = [
    "DTYPES",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Objective",
    "SweepEstimate",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "Targets",
    "estimate_sweep",
    "loss_fn",
    "make_optimizer",
    "raise_if_diverged",
    "sweep_names",
    "torch_dtype",
    "train",
    "train_many",
    "weight_norm",
]


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss over the batch: cross-entropy, or MSE against one-hot targets (sum over classes,
    mean over examples, as Doshi et al.)."""
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return (logits - onehot).pow(2).sum(-1).mean()


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The torch.optim optimizer matching `cfg` (for hand-written loops; `train` uses the batched
    implementation in interp.train.optim, which follows the same maths)."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if not hasattr(torch.optim, "Muon"):
        raise SpecError("TrainConfig", "optimizer", "muon", "an optimizer this torch has", "torch>=2.9 ships Muon.")
    return torch.optim.Muon(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


@dataclass(frozen=True, repr=False, eq=False)
class TrainResult(Result):
    """What `train` returns: the trained model, the task, the configs, the metrics history and the
    run's status ("complete", or "diverged" from `train_many`, with `message` saying why).

    `to_dict()` is strict JSON without the model; `state` (with keep_state=True) is the state the run
    ended in, to continue it in memory (`train(..., init=result.state)`), and `snapshots` the weights
    at the `snapshot_steps` asked for."""

    model: torch.nn.Module | None = field(repr=False)
    task: object  # a Task, or the DataSpec-carrying data of another objective
    model_config: object
    train_config: TrainConfig
    history: list[dict]  # [{"step": int, "test_acc": ..., ..., "weight_norm": ...}, ...]
    out: Path | None = None
    status: str = "complete"
    message: str = ""
    diverged_step: int | None = None
    last_good_checkpoint: int | None = None
    snapshots: dict = field(default_factory=dict, repr=False)  # {step: state dict}
    state: TrainState | None = field(default=None, repr=False)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def to_dict(self) -> dict:
        """Everything but the model (and the in-memory state), as strict JSON values (NaN as None)."""
        return to_jsonable(
            {
                "status": self.status,
                "message": self.message,
                "out": str(self.out) if self.out is not None else None,
                "model_config": self.model_config.to_dict(),
                **task_record(self.task),
                "train_config": self.train_config.to_dict(),
                "history": self.history,
                "diverged_step": self.diverged_step,
                "last_good_checkpoint": self.last_good_checkpoint,
            }
        )

    def __repr__(self):
        f, out = self.final, str(self.out) if self.out else None
        if "train_acc" not in f and f:  # another objective's metrics (a denoiser's "loss", ...)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in f.items() if k not in ("step", "weight_norm"))
            return f"TrainResult(status={self.status!r}, step={f.get('step')}, {shown}, out={out!r})"
        return (
            f"TrainResult(status={self.status!r}, step={f.get('step')}, train_acc={f.get('train_acc', float('nan')):.3f}, "
            f"test_acc={f.get('test_acc', float('nan')):.3f}, out={out!r})"
        )


def task_record(task) -> dict:
    """{"task_spec": ...} of a task, or {"task_spec": None, "data": ...} of other training data."""
    spec = getattr(task, "spec", task)
    if isinstance(spec, DataSpec):
        return {"task_spec": None, "data": spec.to_dict()}
    return {"task_spec": spec.to_dict()}


def weight_norm(model) -> float:
    """Total L2 norm of all parameters, sqrt(sum of squared weights)."""
    return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()) ** 0.5)


def train(
    model_config: ModelConfig,
    task,
    train_config: TrainConfig | None = None,
    out=None,
    resume: bool = False,
    *,
    overwrite: bool = False,
    callback=None,
    progress=None,
    state_every_s: float = 60.0,
    init=None,
    keep_state: bool = False,
    snapshot_steps: Sequence[int] = (),
    break_lock: bool = False,
) -> TrainResult:
    """Train one model on `task` (a Task or TaskSpec, or the data of another objective) and return a
    `TrainResult`.

    Metrics at every `eval_every` steps, at the checkpoint steps and at the last step: loss and
    accuracy on the clean and the noisy training examples (against the given and the true labels),
    on the test set, and the total weight norm. With `out`, the run directory is written as training
    goes (run.json, checkpoints/, state/); `resume=True` continues an interrupted run from its last
    saved state and finishes bit-identical (on CPU) to an uninterrupted run, and with a larger
    `steps` (and any eval / checkpoint cadence) trains a finished run longer, bit-identical to a run
    asked for that many steps from the start (interp.train.rundir says what may change); `overwrite=True`
    replaces a run already in `out`. `callback(0, entry)` is called after each evaluation;
    `progress(n)` with the number of steps done since its last call. A loss that becomes NaN or
    infinite raises `TrainingDiverged` (its `.result` holds the history; run.json says "diverged").

    `init` starts from given weights instead of the seed's: a model of the same config (its weights, a
    fresh optimizer, step 0) or a `TrainState` (weights, optimizer state and step: `result.state` of
    a run trained with keep_state=True continues it in memory, bit for bit as a resumed run). A run
    directory's own saved state wins over `init` when resuming. `snapshot_steps`: steps whose weights
    are kept in `result.snapshots` (and written as checkpoints when `out` is given).

    `out` is locked while training writes there (interp.locks): another process writing it is refused
    (`RunLockedError`, naming it); `break_lock=True` takes over a lock held on another host by a process
    known to be gone. A full disk raises `StorageError`; what was saved is kept and `resume=True` continues.
    """
    result = train_many(
        [(model_config, task, train_config)],
        out=[out],
        resume=resume,
        overwrite=overwrite,
        callback=callback,
        progress=progress,
        state_every_s=state_every_s,
        init=[init],
        keep_state=keep_state,
        snapshot_steps=snapshot_steps,
        break_lock=break_lock,
    )[0]
    return raise_if_diverged(result)


def raise_if_diverged(result: TrainResult) -> TrainResult:
    """The result, or a TrainingDiverged (carrying it as `.result`) when its model diverged."""
    if result.status == "diverged":
        exc = TrainingDiverged(result.message)
        exc.result, exc.step = result, result.diverged_step
        raise exc
    return result


def train_many(
    jobs,
    out=None,
    *,
    names: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callback=None,
    progress=None,
    state_every_s: float = 60.0,
    max_models: int | None = None,
    backend: str = "local",
    address: str | None = None,
    models_per_task: int | None = None,
    gpus_per_task: float = 1.0,
    cpus_per_task: int = 1,
    max_retries: int = 3,
    init: Sequence | None = None,
    keep_state: bool = False,
    snapshot_steps: Sequence[int] = (),
    break_lock: bool = False,
    size_check: bool = True,
    keep_models: bool = True,
) -> list[TrainResult]:
    """Train many models as one batched computation per shape; returns one `TrainResult` per job.

    jobs: [(model_config, task_or_spec, train_config), ...], or 4-tuples whose last element is the
    `Targets` to fit instead of the task's labels (interp.train.targets; the knowledge-distillation
    study's `distillation_job` builds them from a teacher). The model config may be of any registered
    family (interp.models.family); the task may also be the data of another objective (an object whose
    `objective` attribute names its interp.train.objective.Objective, as the diffusion study's
    denoisers have; a 4th element with an `objective` attribute names it instead). Jobs whose models
    have the same shapes, tasks of the same size and the same steps / optimizer / loss / batch size / dtype are stacked
    ([M, ...] weights, batched matmuls) and trained together, each with its own seed, learning rate,
    weight decay, betas, schedule and task; the rest are grouped automatically. Every model gets its
    own run directory, the same (within float tolerance) as `train` would write for it alone:
    `out` is a folder (run directories `out/<names[i]>`, named after the settings that vary when
    `names` is None, plus `out/sweep.json`) or a list of run directories (or None: write nothing).
    A model whose loss becomes NaN or infinite stops alone: its result has status "diverged" and a
    message; the others go on. `max_models` caps a batch (default: what fits in memory).

    backend="ray" spreads the shape groups over a Ray cluster (`pip install grokscope[ray]`; docs/ray.md):
    each group, or each chunk of `models_per_task` models of one, is one Ray task asking for
    `gpus_per_task` GPUs (a fraction lets small groups share one) when its device is CUDA, or
    `cpus_per_task` CPUs. `address` is the cluster's ("auto", "HOST:PORT", "ray://HOST:PORT"; None: Ray's
    default, a local instance when no cluster is running). Workers write the run directories, so `out`
    must be a path every node can write (checked first). A task whose worker dies is retried
    (`max_retries`) and resumes from its runs' saved states; `callback` runs on the workers; the
    models of the results are on the CPU; a task that still fails gives its runs status "failed", unless
    their run directories show them finished (results come from the tasks and the run directories).

    init: one starting point per job (None, a model or a TrainState; see `train`); keep_state and
    snapshot_steps apply to every job (see `train`).

    Every run directory (and the sweep folder) is locked for the whole call (interp.locks): one held by
    another process is refused before anything is trained (`RunLockedError` naming the holder's PID, host
    and start time); `break_lock=True` takes over locks whose holders are known to be gone (on another
    host, where their PIDs cannot be checked). A full disk raises `StorageError` (an OSError) naming the
    file and the space needed and free: runs finished are kept, and `resume=True` finishes the rest.

    Before anything is written, the sweep's memory and disk are estimated (interp.train.estimate): one
    that cannot fit on this machine is refused (a SpecError saying what does not fit) unless
    `size_check=False`. `keep_models=False` returns results without models (`TrainResult.model` None;
    the run directories hold the weights), so a driver of a big sweep does not hold every model.
    """
    if backend not in BACKENDS:
        raise SpecError("train_many", "backend", backend, f"one of {list(BACKENDS)}")
    jobs = list(jobs)
    inits = [None] * len(jobs) if init is None else list(init)
    if len(inits) != len(jobs):
        raise SpecError("train_many", "init", f"{len(inits)} starting points", f"one per job ({len(jobs)}), or None")
    snaps = _snapshot_steps(snapshot_steps)
    prepared = [
        _normalise_job(i, job, check_device=backend == "local", init=start, keep_state=keep_state, snapshots=snaps)
        for i, (job, start) in enumerate(zip(jobs, inits))
    ]
    run_dirs, sweep_dir = _run_dirs(prepared, out, names)
    if size_check:
        where = sweep_dir or next((d.parent for d in run_dirs if d is not None), None)
        check_fits(
            estimate_prepared(prepared, where, keep_models=keep_models, max_models=max_models, here=backend == "local")
        )
    hooks = Hooks(callback=callback, progress=progress, state_every_s=state_every_s, keep_weights=keep_models)
    with contextlib.ExitStack() as held:
        if sweep_dir is not None:
            held.enter_context(lock_folders([sweep_dir], break_lock=break_lock, what="sweep folder"))
        tokens = held.enter_context(lock_folders(run_dirs, break_lock=break_lock))
        for job, run_dir in zip(prepared, run_dirs):
            job.run_dir, job.lock_token = run_dir, tokens.get(str(run_dir))
        if backend == "local":
            return _train_prepared(prepared, sweep_dir, resume, overwrite, run_local, hooks, max_models)
        # connects, and checks that every node can write `out`, before anything is written
        cluster = _ray_backend().RayCluster(
            address,
            run_dirs,
            models_per_task=models_per_task,
            gpus_per_task=gpus_per_task,
            cpus_per_task=cpus_per_task,
            max_retries=max_retries,
        )
        try:
            return _train_prepared(prepared, sweep_dir, resume, overwrite, cluster.run, hooks, max_models)
        finally:
            cluster.close()


BACKENDS = ("local", "ray")


def estimate_sweep(
    jobs,
    out=None,
    *,
    names: list[str] | None = None,
    keep_models: bool = True,
    measure: bool = True,
    max_models: int | None = None,
    backend: str = "local",
) -> SweepEstimate:
    """What `train_many(jobs, out, ...)` would take, before it starts: models, batch groups, parameters,
    model-steps, memory (training peak + results held), disk, and (measure=True) seconds per model-step
    timed here on a few steps of each group, with the total. `.summary()` says it in one paragraph,
    `.problems()` what does not fit. Nothing is written."""
    prepared = [_normalise_job(i, job, check_device=backend == "local") for i, job in enumerate(jobs)]
    run_dirs, sweep_dir = _run_dirs(prepared, out, names)
    where = sweep_dir or next((d.parent for d in run_dirs if d is not None), None)
    return estimate_prepared(
        prepared, where, keep_models=keep_models, measure=measure, max_models=max_models, here=backend == "local"
    )


def _ray_backend():
    """The Ray backend module, or a SpecError that says how to install Ray."""
    try:
        from interp.train import ray_backend  # ray is an optional heavy dependency (grokscope[ray])
    except ImportError as exc:
        if exc.name != "ray":
            raise
        raise SpecError(
            "train_many",
            "backend",
            "ray",
            "a backend whose package is installed (ray is not)",
            "Install it with: pip install grokscope[ray]",
        ) from exc
    return ray_backend


def _train_prepared(prepared, sweep_dir, resume, overwrite, run, hooks, max_models) -> list[TrainResult]:
    """Check each run directory, train what is not finished with `run` (`run_local` or a Ray cluster's
    `run`: (jobs, hooks, max_models) -> {index: Outcome}), index a sweep."""
    on_cpu = run is not run_local  # results of remote training come back to the driver's CPU
    outcomes, todo = prepare_jobs(prepared, resume=resume, overwrite=overwrite)
    if not hooks.keep_weights:
        for o in outcomes.values():
            o.state_dict = None
    outcomes.update(run(todo, hooks, max_models))
    if not hooks.keep_weights:  # runs read back from their directories (Ray) carry weights too
        for o in outcomes.values():
            o.state_dict = None
    ordered = [_result(job, outcomes[job.index], on_cpu) for job in prepared]  # prepared is in job order
    if sweep_dir is not None:
        _write_sweep_index(sweep_dir, ordered)
    return ordered


# ----- helpers of train_many ---------------------------------------------------------------------
def _normalise_job(i: int, job, check_device: bool = True, init=None, keep_state=False, snapshots=()) -> Job:
    try:
        model_config, task, cfg, *targets = job
    except (TypeError, ValueError) as exc:
        raise SpecError("train_many", "jobs", type(job).__name__, "tuples (model_config, task, train_config)") from exc
    if len(targets) > 1:
        raise SpecError("train_many", "jobs", f"a tuple of {len(job)}", "(model_config, task, train_config[, targets])")
    targets = targets[0] if targets else None
    if not hasattr(model_config, "family") or not hasattr(model_config, "to_dict"):
        raise SpecError(
            "train", "model_config", type(model_config).__name__, "an MLPConfig, a TransformerConfig or a registered family's config"
        )  # fmt: skip
    get_family(model_config.family)  # a SpecError naming the known families
    if isinstance(task, TaskSpec):
        task = _task_for(task)
    cfg = cfg if cfg is not None else TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise SpecError("train", "train_config", type(cfg).__name__, "a TrainConfig")
    if cfg.optimizer == "muon" and cfg.momentum >= 1:
        raise SpecError("TrainConfig", "momentum", cfg.momentum, "a number in [0, 1) for muon")
    objective = getattr(targets, "objective", None) or getattr(task, "objective", None) or PairObjective
    if not (isinstance(objective, type) and issubclass(objective, Objective)):
        raise SpecError("train", "objective", objective, "an interp.train.objective.Objective subclass")
    start = _initial_state(init, model_config, cfg)
    job = Job(i, model_config, task, cfg, targets=targets, objective=objective, init=start)
    job.keep_state, job.snapshot_steps = bool(keep_state), tuple(s for s in snapshots if s <= cfg.steps)
    objective.check_job(job)
    if check_device:  # on Ray, the workers' devices count, not the driver's
        resolve_device(cfg.device)  # a clear DeviceError before anything is written
    return job


def _initial_state(init, model_config, cfg) -> TrainState | None:
    """`init` as a TrainState: a model's weights at step 0, or a TrainState checked against the run."""
    if init is None:
        return None
    if isinstance(init, torch.nn.Module):
        if getattr(init, "cfg", None) != model_config:
            raise SpecError(
                "train", "init", type(init).__name__, "a model of the job's model config, or a TrainState",
                "Start from a model built with the same config (its weights are copied).",
            )  # fmt: skip
        return TrainState(0, {k: v.detach().clone() for k, v in init.state_dict().items()})
    if not isinstance(init, TrainState):
        raise SpecError("train", "init", type(init).__name__, "None, a model or an interp.train.TrainState")
    if isinstance(init.step, bool) or not isinstance(init.step, int) or init.step < 0:
        raise SpecError("TrainState", "step", init.step, "a non-negative int")
    if init.step > 0 and not init.optimizer:
        raise SpecError(
            "TrainState", "optimizer", "{}", f"the optimizer state at step {init.step}",
            "A state past step 0 continues its optimizer; pass TrainState(0, params) to start from weights alone.",
        )  # fmt: skip
    return init


def _snapshot_steps(steps) -> tuple[int, ...]:
    steps = tuple(steps)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
        raise SpecError("train", "snapshot_steps", steps, "non-negative int steps")
    return tuple(sorted(set(steps)))


_TASKS: dict = {}


def _task_for(spec: TaskSpec) -> Task:
    if spec not in _TASKS:
        if len(_TASKS) > 64:
            _TASKS.clear()
        _TASKS[spec] = Task(spec)
    return _TASKS[spec]


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).replace("/", "÷").replace(" ", "")


TARGET_SETTINGS = ("targets", "temperature", "inputs")  # what names a run fit to given targets (Targets.describe)


def sweep_names(jobs) -> list[str]:
    """Run-directory names from the settings that vary across jobs, e.g. "seed=1,weight_decay=0.5"."""
    flat = []
    for j in jobs:
        d = {}
        for prefix, cfg in (("task_", j.task.spec.to_dict()), ("", j.model_config.to_dict()), ("", j.cfg.to_dict())):
            for k, v in cfg.items():
                key = k if k not in d and not (prefix and k in ("seed", "p")) else prefix + k
                d[key] = tuple(v) if isinstance(v, list) else v
        d.pop("device", None)
        record = j.targets.describe if j.targets is not None else {}
        for k in TARGET_SETTINGS:  # constant (and so unnamed) in a sweep fit to labels only
            d[k if k not in d else "kd_" + k] = record.get(k, "labels" if k == "targets" else None)
        flat.append(d)
    keys = [k for k in flat[0] if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
    names = [",".join(f"{k}={_fmt(f.get(k))}" for k in keys) or "run" for f in flat]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n},rep={seen[n] - 1}" if n != "run" else f"run_{seen[n] - 1:03d}")
    return out


def _run_dirs(jobs: list[Job], out, names) -> tuple[list[Path | None], Path | None]:
    if out is None:
        return [None] * len(jobs), None
    if isinstance(out, (list, tuple)):
        if len(out) != len(jobs):
            raise SpecError("train_many", "out", f"{len(out)} directories", f"one per job ({len(jobs)})")
        dirs = [Path(o) if o is not None else None for o in out]
        seen = [str(d.resolve()) for d in dirs if d is not None]
        twice = next((d for d in seen if seen.count(d) > 1), None)
        if twice is not None:  # two models writing one run directory would mix their files
            raise SpecError(
                "train_many", "out", twice, "a different run directory for each job (this one is given twice)"
            )
        return dirs, None
    names = list(names) if names is not None else sweep_names(jobs)
    if len(names) != len(jobs) or len(set(names)) != len(names):
        raise SpecError("train_many", "names", names, f"{len(jobs)} distinct run-directory names")
    return [Path(out) / n for n in names], Path(out)


def _write_sweep_index(sweep_dir: Path, results: list[TrainResult]) -> None:
    rows = [
        {
            "dir": str(Path(r.out).relative_to(sweep_dir)) if r.out is not None else None,
            "status": r.status,
            "message": r.message,
            "final": r.final,
            "model_config": r.model_config.to_dict(),
            **task_record(r.task),
            "train_config": r.train_config.to_dict(),
        }
        for r in results
    ]
    atomic_write_json(sweep_dir / "sweep.json", {"format": "grokscope-sweep", "runs": rows})


def _result(job: Job, outcome: Outcome, on_cpu: bool = False) -> TrainResult:
    model = None
    if outcome.state_dict is not None:
        device = torch.device("cpu") if on_cpu else resolve_device(job.cfg.device)
        model = build_model(job.model_config, seed=None).to(device=device, dtype=torch_dtype(job.cfg.dtype))
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(outcome.state_dict[n])
    return TrainResult(
        model,
        job.task,
        job.model_config,
        job.cfg,
        outcome.history,
        job.run_dir,
        outcome.status,
        outcome.message,
        diverged_step=outcome.diverged_step,
        last_good_checkpoint=outcome.last_good_checkpoint,
        snapshots=outcome.snapshots,
        state=outcome.state,
    )
