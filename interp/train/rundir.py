"""What training writes into a run directory, and how an interrupted run is picked up again.

A run directory (see interp.checkpoints) gets, as training goes:
- `checkpoints/step_XXXXXXX.safetensors` at the train config's checkpoint steps (weights + specs),
- `run.json`, rewritten atomically at every evaluation (metrics history, status "running",
  "complete" or "diverged"),
- `state/resume.safetensors`: the weights, the optimizer state and the history up to one step, written
  atomically at checkpoint steps, at the last step and at evaluations (at most once every
  `state_every_s` seconds). `train(..., resume=True)` restarts from it. Minibatch order is a pure
  function of (seed, step), so no random-generator state is needed to continue bit for bit.

Write order at a step: weight file, then run.json, then the resume state. A crash between two of
them leaves a resume state older than the newest files; resuming recomputes those files identically.

Training longer: a finished (or interrupted) run resumes with a larger `steps` and, if wanted, a new
`eval_every` / `checkpoint_every` / `checkpoint_log` (the cadence). Nothing an update depends on
changes with these, so on CPU the weights, optimizer state and history entries at the steps both runs
evaluate equal a run asked for the larger `steps` from the start, bit for bit. Two things cannot:
the cosine schedule's learning rates depend on `steps` (such a run is refused), and the new cadence
applies from the resume step on: weight files and evaluations already written keep the old cadence
(log-spaced steps of the longer run that lie before the resume step are not made up).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from interp.checkpoints import CHECKPOINT_DIR, RUN_FILE, load_tensors, run_steps, save_tensors
from interp.checkpoints.format import check_history, meta_int, meta_json
from interp.errors import CheckpointError
from interp.files import check_run_folder
from interp.models import build_model
from interp.train.optim import model_state_shapes

STATE_DIR = "state"
STATE_FILE = "resume.safetensors"
STATE_FORMAT = "grokscope-train-state"
STATE_VERSION = 1


def state_path(run_dir) -> Path:
    return Path(run_dir) / STATE_DIR / STATE_FILE


def task_identity(task) -> dict:
    """What identifies a task on disk: its spec, plus the split when it was given explicitly."""
    d = {"task_spec": task.spec.to_dict()}
    if getattr(task, "custom_split", False):
        d["train_idx"] = task.train_idx.tolist()
    return d


# Settings a run may change when it resumes: how long it trains and how often it evaluates and saves.
CADENCE = ("steps", "eval_every", "checkpoint_every", "checkpoint_log")


def _train_identity(train_config) -> dict:
    d = train_config.to_dict()
    d.pop("device", None)  # a run may move between machines
    return d


@dataclass
class TrainState:
    """Where a model's training stands: its weights, optimizer state, history and extra state (an EMA
    target, ...) at `step`. A resume file holds one; `train(..., init=state)` starts from one in memory
    (`TrainResult.state` is the state a run ended in, when asked for with keep_state=True)."""

    step: int
    params: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    status: str = "running"
    last_checkpoint: int | None = None  # the newest weight file at or before `step`
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # the objective's own state (interp.train.objective)


ResumePoint = TrainState  # the saved state of an interrupted run (the name the engine used first)


def write_state(
    run_dir,
    *,
    step: int,
    params: dict,
    optimizer: dict,
    history: list,
    model_config,
    task,
    train_config,
    status: str,
    extra: dict | None = None,
) -> None:
    """Atomically write run_dir/state/resume.safetensors (weights + optimizer state + the objective's
    extra state + history)."""
    tensors = {f"param.{k}": v for k, v in params.items()}
    tensors.update({f"optim.{k}": v for k, v in optimizer.items()})
    tensors.update({f"extra.{k}": v for k, v in (extra or {}).items()})
    meta = {
        "format": STATE_FORMAT,
        "format_version": str(STATE_VERSION),
        "step": str(int(step)),
        "status": status,
        "history": json.dumps(history),  # NaN kept as NaN, so a resumed history equals an uninterrupted one
        "model_config": json.dumps(model_config.to_dict()),
        "task": json.dumps(task_identity(task)),
        "train_config": json.dumps(_train_identity(train_config)),
    }
    save_tensors(state_path(run_dir), tensors, meta)


def _differences(stored: dict, given: dict) -> list[str]:
    keys = sorted(set(stored) | set(given))
    return [f"{k}: stored {stored.get(k)!r}, passed {given.get(k)!r}" for k in keys if stored.get(k) != given.get(k)]


def read_state(run_dir, *, model_config, task, train_config) -> TrainState:
    """Load the resume state and check that it belongs to the configs passed; CheckpointError if not.

    The train configs may differ in `CADENCE` (train longer, evaluate or save at another rate)."""
    path = state_path(run_dir)
    tensors, meta = load_tensors(path)
    if meta.get("format") != STATE_FORMAT or meta_int(meta, "format_version", path, default=0) > STATE_VERSION:
        raise CheckpointError(f"{path} is not a resume state this grokscope can read. Start over with overwrite=True.")
    try:
        stored_train = meta_json(meta, "train_config", path, dict)
        stored_model, stored_task = meta_json(meta, "model_config", path, dict), meta_json(meta, "task", path, dict)
        step, history = meta_int(meta, "step", path), meta_json(meta, "history", path, list)
        check_history(history, f"{path} (metadata field 'history')")
        status = meta.get("status", "running")
    except CheckpointError as exc:
        raise CheckpointError(
            f"{exc} Resume from it is impossible: start over with overwrite=True (interp-train --overwrite), or "
            "load the run's checkpoints with load_run."
        ) from None
    mismatches = []
    for what, stored, given in (
        ("model_config", stored_model, model_config.to_dict()),
        ("task", stored_task, task_identity(task)),
        ("train_config", _without_cadence(stored_train), _without_cadence(_train_identity(train_config))),
    ):
        given = json.loads(json.dumps(given))  # tuples -> lists, as stored
        mismatches += [f"{what}.{d}" for d in _differences(stored, given)]
    if mismatches:
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained with other settings than the ones passed ("
            + "; ".join(mismatches[:6])
            + ("; ..." if len(mismatches) > 6 else "")
            + "). Only steps, eval_every, checkpoint_every and checkpoint_log may change. Resume with the "
            "stored configs (interp.checkpoints.load_run(run_dir) has them), or train into a new directory "
            "(or pass overwrite=True to discard this run)."
        )
    _check_new_length(run_dir, stored_train, train_config, step)
    params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
    optim = {k[len("optim.") :]: v for k, v in tensors.items() if k.startswith("optim.")}
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    _check_params(path, params, model_config)
    _check_optimizer(path, optim, train_config.optimizer, {n: tuple(t.shape) for n, t in params.items()})
    last_ckpt = max((s for s in run_steps(run_dir) if s <= step), default=None)
    return TrainState(step, params, optim, history, status, last_ckpt, extra)


def _check_optimizer(path, optim: dict, kind: str, shapes: dict) -> None:
    """CheckpointError unless the saved optimizer state has every tensor `kind` keeps, with the weights' shapes."""
    expected = model_state_shapes(kind, shapes.items())
    for key, shape in expected.items():
        if key not in optim or tuple(optim[key].shape) != shape:
            got = "is missing" if key not in optim else f"has shape {tuple(optim[key].shape)}"
            raise CheckpointError(
                f"{path}: the optimizer state {key!r} {got}; expected shape {shape} for {kind}. The file is damaged: "
                "start over with overwrite=True (interp-train --overwrite), or load the run's checkpoints with load_run."
            )


def _check_params(path, params: dict, model_config) -> None:
    """CheckpointError unless the saved weights have the names and shapes of the model config's weights."""
    expected = {n: tuple(p.shape) for n, p in build_model(model_config, seed=None).state_dict().items()}
    got = {n: tuple(t.shape) for n, t in params.items()}
    if got != expected:
        wrong = sorted(set(got) ^ set(expected)) or [n for n in expected if got[n] != expected[n]]
        raise CheckpointError(
            f"{path} holds weights that do not fit the run's model (first difference: {wrong[0]}); the file is "
            "damaged. Start over with overwrite=True, or load the run's checkpoints with load_run."
        )


def _without_cadence(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in CADENCE}


def _check_new_length(run_dir, stored: dict, train_config, step: int) -> None:
    """Refuse a new `steps` that a run asked for it from the start would not have matched."""
    if train_config.steps == stored["steps"]:
        return
    if train_config.steps < step:
        raise CheckpointError(
            f"cannot resume {run_dir} with steps={train_config.steps}: its saved state is already at step "
            f"{step}. Pass steps >= {step} to train it longer, or load an earlier checkpoint with load_run."
        )
    if train_config.schedule == "cosine":
        raise CheckpointError(
            f"cannot change steps from {stored['steps']} to {train_config.steps} when resuming {run_dir}: its "
            "cosine learning-rate schedule depends on steps, so every update after warm-up would differ from "
            "a run asked for the new length from the start. Train a new run with the longer schedule, or "
            "resume with the stored steps."
        )


def saved_step(run_dir) -> int:
    """The step of run_dir's resume state, read from the file's header alone (0 without a readable one)."""
    try:
        with safe_open(str(state_path(run_dir)), framework="pt") as f:
            return int((f.metadata() or {}).get("step", 0))
    except Exception:  # no state yet, or a damaged one (safetensors' own error types): resuming says which
        return 0


def has_run_files(run_dir) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / RUN_FILE).exists() or bool(run_steps(run_dir)) or state_path(run_dir).exists()


def clear_run(run_dir) -> None:
    """Remove what a previous run wrote (run.json, weight files, resume state); nothing else."""
    run_dir = Path(run_dir)
    for f in run_steps(run_dir).values():
        f.unlink()
    (run_dir / RUN_FILE).unlink(missing_ok=True)
    shutil.rmtree(run_dir / STATE_DIR, ignore_errors=True)
    ck = run_dir / CHECKPOINT_DIR
    if ck.is_dir() and not any(ck.iterdir()):
        ck.rmdir()


def prepare_run_dir(run_dir, *, model_config, task, train_config, resume: bool, overwrite: bool) -> TrainState | None:
    """Check `run_dir` before training: a resume point to continue from, or None to start fresh."""
    run_dir = check_run_folder(run_dir)
    if not has_run_files(run_dir):
        return None
    if resume:
        if state_path(run_dir).exists():
            return read_state(run_dir, model_config=model_config, task=task, train_config=train_config)
        if overwrite:
            clear_run(run_dir)
            return None
        raise CheckpointError(
            f"cannot resume {run_dir}: it holds a run but no resume state ({STATE_DIR}/{STATE_FILE}), so the "
            "optimizer state is lost. Load its checkpoints with interp.checkpoints.load_run, or start over "
            "with overwrite=True (interp-train --overwrite)."
        )
    if overwrite:
        clear_run(run_dir)
        return None
    raise CheckpointError(
        f"{run_dir} already holds a run. Pass resume=True (interp-train --resume) to continue it, "
        "overwrite=True (--overwrite) to replace it, or choose another directory."
    )
