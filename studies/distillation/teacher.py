"""Knowledge distillation on the arithmetic tasks: what a student is fit to when a teacher labels its data.

Soft targets are the teacher's softmax at temperature T, matched with T^2 * CE(q, softmax(z / T))
(Hinton et al. 2015; equal to T^2 * KL up to the teacher's entropy, a constant); hard targets are the
teacher's argmax. Either on the task's training inputs or on every input pair of the table. The metrics
of a distilled run stay those of its task (clean and noisy training examples against the given and the
true labels, test), so a student's fit to the noisy labels its teacher memorised reads as for any run.

`distillation_job` turns a teacher into a job that `interp.train.train_many` trains beside ordinary
ones (as `Targets`, the engine's way to fit given targets), so a sweep over T, student width and seed
(and the control students on the raw labels) is one batched run; `distill` trains one. run.json
records the teacher (its path, a SHA-256 of its weights, its specs), T, targets and inputs under
`extra["targets"]`; `teacher_record(run_dir)` reads it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from interp.checkpoints import load
from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode
from interp.errors import ShapeError, SpecError
from interp.metrics import all_logits
from interp.tasks import Task, TaskSpec
from interp.train import TrainConfig, TrainResult, raise_if_diverged, train_many
from interp.train.targets import Targets, targets_record

TARGETS = ("soft", "hard")  # the teacher's softmax at temperature T | its argmax
INPUTS = ("train", "all")  # the task's training inputs | every input pair of the table
IDENTITY_KEYS = ("teacher_sha256", "temperature", "targets", "inputs", "n_examples")  # what resume checks


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes and bytes, in name order): the teacher's identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_options(temperature, targets: str, inputs: str) -> float:
    """Validate the distillation options; returns the temperature as a float."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise SpecError(
            "distill", "temperature", temperature, "a positive number", "T = 1 is the plain softmax; T > 1 softens it."
        )
    if not float(temperature) < float("inf"):
        raise SpecError("distill", "temperature", temperature, "a finite positive number")
    if targets not in TARGETS:
        raise SpecError(
            "distill",
            "targets",
            targets,
            f"one of {list(TARGETS)}",
            "'soft': the teacher's softmax at T; 'hard': its argmax.",
        )
    if inputs not in INPUTS:
        raise SpecError(
            "distill",
            "inputs",
            inputs,
            f"one of {list(INPUTS)}",
            "'train': the task's training inputs; 'all': every pair.",
        )
    return float(temperature)


def student_task(teacher_model, teacher_task, task) -> Task:
    """The task the student trains on (`task`, else the teacher's), refused when it is another task than the teacher's."""
    if isinstance(task, TaskSpec):
        task = Task(task)
    if task is None:
        if teacher_task is None:
            raise SpecError(
                "distill",
                "task",
                None,
                "the Task to distil on",
                "The teacher is a bare model with no task: pass task=.",
            )
        return teacher_task
    if not isinstance(task, Task):
        raise SpecError("distill", "task", type(task).__name__, "a Task, a TaskSpec or None (the teacher's task)")
    if teacher_model.p != task.p:
        raise ShapeError(
            f"distill: the teacher was built for p={teacher_model.p} but the student's task has p={task.p} "
            f"({task.spec.op}). Distil on the task the teacher was trained on (or pass task=None to use it)."
        )
    if teacher_task is not None and teacher_task.spec.op != task.spec.op:
        raise SpecError(
            "distill",
            "task",
            f"a task of op {task.spec.op!r}",
            f"the teacher's op {teacher_task.spec.op!r}",
            "A teacher of another operation labels every pair wrongly for this task; pass task=None to use the teacher's.",
        )
    return task


def teacher_targets(
    teacher, task=None, *, temperature: float = 1.0, targets: str = "soft", inputs: str = "train", device=None
) -> tuple[Task, Targets]:
    """(student task, Targets): the teacher's outputs on the chosen inputs, with their provenance.

    teacher: any subject (a model, Checkpoint, TrainResult, run directory, checkpoint file or "zoo:NAME").
    """
    t = check_options(temperature, targets, inputs)
    if isinstance(teacher, (str, os.PathLike)):
        path, teacher = teacher, load(teacher)  # a Checkpoint: its step is recorded too
    else:
        path = getattr(teacher, "path", None) or getattr(teacher, "out", None)
    history = getattr(teacher, "history", None) or [{}]
    step = getattr(teacher, "step", None) if hasattr(teacher, "step") else history[-1].get("step")
    model, own_task = resolve_subject(teacher, None, where="distill", need_task=False, device=device)
    task = student_task(model, own_task, task)
    idx = task.train_idx if inputs == "train" else torch.arange(len(task.inputs))  # [n]
    with eval_mode(model):
        logits = all_logits(model, task).double().cpu()[idx]  # [n, p]
    probs = (logits / t).softmax(-1) if targets == "soft" else None  # [n, p]
    provenance = {
        "teacher_path": str(path) if path is not None else None,
        "teacher_sha256": weights_sha256(model),
        "teacher_model_config": model.cfg.to_dict(),
        "teacher_task_spec": own_task.spec.to_dict() if own_task is not None else None,
        "teacher_step": step,
        "temperature": t if targets == "soft" else None,
        "targets": targets,
        "inputs": inputs,
        "n_examples": len(idx),
    }
    describe = {"targets": targets, "temperature": provenance["temperature"], "inputs": inputs}
    return task, Targets(task.inputs[idx].clone(), logits.argmax(-1), probs, t, provenance, IDENTITY_KEYS, describe)


def distillation_job(
    teacher,
    student_config,
    task=None,
    *,
    temperature: float = 1.0,
    targets: str = "soft",
    inputs: str = "train",
    train_config: TrainConfig | None = None,
    device=None,
) -> tuple:
    """A job for `train_many`: (student_config, task, train_config, Targets from the teacher).

    Soft targets are matched by cross-entropy, so they need train_config.loss="ce"; hard targets take
    either loss. The teacher runs on `device` (default: where it is) to label the inputs once.
    """
    cfg = train_config if train_config is not None else TrainConfig(loss="ce")
    if not isinstance(cfg, TrainConfig):
        raise SpecError("distill", "train_config", type(cfg).__name__, "a TrainConfig or None")
    if targets == "soft" and cfg.loss != "ce":
        raise SpecError(
            "distill", "train_config.loss", cfg.loss, "'ce' for soft targets (T^2 * cross-entropy on logits / T)",
            "Pass TrainConfig(loss='ce', ...), or targets='hard' to fit the teacher's argmax with MSE.",
        )  # fmt: skip
    task, fit = teacher_targets(teacher, task, temperature=temperature, targets=targets, inputs=inputs, device=device)
    return student_config, task, cfg, fit


def teacher_record(run_dir) -> dict | None:
    """The distillation record of a run directory (teacher path and SHA-256, T, targets, inputs), or None."""
    record = targets_record(run_dir)
    return record if record is not None and "teacher_sha256" in record else None


def distill(
    teacher,
    student_config,
    task=None,
    *,
    temperature: float = 1.0,
    targets: str = "soft",
    inputs: str = "train",
    train_config: TrainConfig | None = None,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    device=None,
    callback=None,
    progress=None,
    state_every_s: float = 60.0,
    break_lock: bool = False,
) -> TrainResult:
    """Train a student on a trained teacher's outputs (knowledge distillation); returns its `TrainResult`.

    teacher: a model, Checkpoint, TrainResult, run directory, checkpoint file or "zoo:NAME"; task: the
    student's task (default the teacher's; another operation or p is refused). targets="soft": the
    teacher's softmax at `temperature`, loss T^2 * CE (train_config.loss must be "ce"); "hard": its
    argmax, with the train config's loss. inputs="train": the task's training inputs; "all": every
    pair. Metrics are the task's, as for `train`; run.json records the teacher (path, SHA-256 of its
    weights), T, targets and inputs (`teacher_record(out)`). For a sweep, pass `distillation_job`s to
    `train_many`. `device` is where the teacher labels the inputs; the other arguments are `train`'s
    (`break_lock`: interp.locks).
    """
    job = distillation_job(
        teacher, student_config, task, temperature=temperature, targets=targets, inputs=inputs,
        train_config=train_config, device=device,
    )  # fmt: skip
    (result,) = train_many(
        [job], out=[out], resume=resume, overwrite=overwrite, callback=callback, progress=progress,
        state_every_s=state_every_s, break_lock=break_lock,
    )  # fmt: skip
    return raise_if_diverged(result)


def _short_name(cfg) -> str:
    """A student config in a run name: its family and size (`cfg.short_name()`)."""
    return cfg.short_name()


@dataclass(eq=False)
class DistillationSweep:
    """The students and controls of `distillation_sweep`, by name, with each one's settings."""

    students: dict[str, TrainResult]
    controls: dict[str, TrainResult]
    settings: dict[str, dict] = field(default_factory=dict)


def distillation_sweep(
    teacher,
    task=None,
    *,
    student_configs,
    temperatures: Sequence[float] = (1.0,),
    targets: Sequence[str] = ("soft",),
    inputs: Sequence[str] = ("train",),
    seeds: Sequence[int] = (0,),
    train_config: TrainConfig | None = None,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    device=None,
) -> DistillationSweep:
    """Students over (config x targets x T x inputs x seed) and one control per (config, seed) trained
    on the task's raw labels, all in one `train_many` call (jobs of equal shapes are batched); hard
    targets ignore T. Names (and run directories under `out`, resumable) read
    "targets=soft,T=2,inputs=all,mlp,width=128,seed=0". `device`: where the teacher labels the inputs
    (training runs where `train_config.device` says)."""
    if isinstance(teacher, (str, os.PathLike)):
        teacher = load(teacher)  # once, not once per job
    teacher_model, own_task = resolve_subject(teacher, None, need_task=False)
    task = student_task(teacher_model, own_task, task)
    grid = [
        (kind, t, where) for kind in targets for where in inputs for t in (temperatures if kind == "soft" else (None,))
    ]
    base = train_config if train_config is not None else TrainConfig(loss="ce")
    configs = list(student_configs)
    if len({_short_name(c) for c in configs}) < len(configs):
        raise SpecError(
            "distillation_sweep", "student_configs", [_short_name(c) for c in configs], "configs of distinct widths"
        )
    jobs, names, settings, roles = [], [], {}, []
    for cfg, seed in ((c, s) for c in configs for s in seeds):
        tc = dataclasses.replace(base, seed=seed)
        control = f"targets=labels,{_short_name(cfg)},seed={seed}"
        jobs.append((cfg, task, tc))
        names.append(control)
        roles.append("control")
        settings[control] = {"model": _short_name(cfg), "n_params": cfg.n_params, "seed": seed, "targets": "labels"}
        for kind, t, where in grid:
            jobs.append(
                distillation_job(
                    teacher, cfg, task, temperature=t or 1.0, targets=kind, inputs=where, train_config=tc, device=device
                )
            )
            name = f"targets={kind},{'' if t is None else f'T={t:g},'}inputs={where},{_short_name(cfg)},seed={seed}"
            names.append(name)
            roles.append("student")
            settings[name] = {
                **settings[control], "targets": kind, "temperature": t, "inputs": where, "control": control,
            }  # fmt: skip
    if len(set(names)) < len(names):
        raise SpecError(
            "distillation_sweep", "temperatures / seeds", (tuple(temperatures), tuple(seeds)), "distinct values"
        )
    runs = train_many(jobs, out=out, names=names if out is not None else None, resume=resume, overwrite=overwrite)
    by_role: dict[str, dict] = {"student": {}, "control": {}}
    for name, role, run in zip(names, roles, runs):
        by_role[role][name] = run
    return DistillationSweep(by_role["student"], by_role["control"], settings)
