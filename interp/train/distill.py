"""Knowledge distillation on the arithmetic tasks: what a student is fit to when a teacher labels its data.

Soft targets are the teacher's softmax at temperature T, matched with T^2 * CE(q, softmax(z / T))
(Hinton et al. 2015; equal to T^2 * KL up to the teacher's entropy, a constant); hard targets are the
teacher's argmax. Either on the task's training inputs or on every input pair of the table. The metrics
of a distilled run stay those of its task (clean and noisy training examples against the given and the
true labels, test), so a student's fit to the noisy labels its teacher memorised reads as for any run.

`distillation_job` turns a teacher into a job that `train_many` trains beside ordinary ones, so a sweep
over T, student width and seed (and the control students on the raw labels) is one batched run;
`interp.train.distill` trains one. run.json records the teacher (its path, a SHA-256 of its weights, its
specs), T, targets and inputs under `extra["distillation"]`; `teacher_record(run_dir)` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.checkpoints.format import RUN_FILE, read_run_json
from interp.checkpoints.loading import load
from interp.checkpoints.subject import resolve_subject
from interp.errors import CheckpointError, ShapeError, SpecError
from interp.metrics import all_logits
from interp.results import to_jsonable
from interp.tasks import Task, TaskSpec
from interp.train_config import TrainConfig

TARGETS = ("soft", "hard")  # the teacher's softmax at temperature T | its argmax
INPUTS = ("train", "all")  # the task's training inputs | every input pair of the table
IDENTITY_KEYS = ("teacher_sha256", "temperature", "targets", "inputs", "n_examples")  # what resume checks


@dataclass
class Targets:
    """What a model is fit to instead of its task's training split and labels (knowledge distillation).

    The engine trains on `inputs` with `labels` (loss of the train config) or, when `probs` is set, with
    T^2 * CE(probs, softmax(logits / T)); evaluation stays that of the task.
    """

    inputs: torch.Tensor  # [n, 2] the pairs trained on
    labels: torch.Tensor  # [n] hard targets (the teacher's argmax)
    probs: torch.Tensor | None = None  # [n, p] soft targets: the teacher's softmax at `temperature`
    temperature: float = 1.0
    provenance: dict = field(default_factory=dict)  # written to run.json["extra"]["distillation"]


def run_extra(targets: Targets | None) -> dict:
    """What run.json records beside the specs: the teacher's provenance for a distilled model."""
    return {} if targets is None else {"distillation": to_jsonable(targets.provenance)}


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
    was_training = model.training
    model.eval()
    try:
        logits = all_logits(model, task).double().cpu()[idx]  # [n, p]
    finally:
        model.train(was_training)
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
    return task, Targets(task.inputs[idx].clone(), logits.argmax(-1), probs, t, provenance)


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


def check_targets(targets, task) -> None:
    """A job's Targets must match its task: pairs [n, 2] and labels [n] in range(p), probs [n, p] summing to 1."""
    if not isinstance(targets, Targets):
        raise SpecError(
            "train_many", "jobs", f"a 4th element of type {type(targets).__name__}", "a Targets (interp.train.distill) or None"
        )  # fmt: skip
    x, y, q, n, p = targets.inputs, targets.labels, targets.probs, len(targets.inputs), task.p
    if n == 0 or x.shape != (n, 2) or y.shape != (n,) or (q is not None and q.shape != (n, p)):
        raise ShapeError(
            f"Targets have inputs {list(x.shape)}, labels {list(y.shape)} and probs "
            f"{None if q is None else list(q.shape)}; expected [n, 2] pairs, [n] labels and None or [n, {p}] "
            "(one distribution over the task's p classes per pair), n > 0. Build them with teacher_targets."
        )
    for name, v in (("inputs", x), ("labels", y)):
        if v.dtype != torch.long or int(v.min()) < 0 or int(v.max()) >= p:
            raise SpecError(
                "Targets",
                name,
                f"{v.dtype} values in [{int(v.min())}, {int(v.max())}]",
                f"int64 values in [0, {p - 1}]",
            )
    if q is not None and not torch.allclose(q.double().sum(-1), torch.ones(n, dtype=torch.float64), atol=1e-4):
        raise SpecError(
            "Targets", "probs", "rows that do not sum to 1", "one distribution per pair", "Pass softmax(z / T)."
        )
    check_options(targets.temperature, "soft" if q is not None else "hard", "train")


def teacher_record(run_dir) -> dict | None:
    """The distillation record of a run directory (teacher path and SHA-256, T, targets, inputs), or None."""
    record = read_run_json(Path(run_dir)).get("extra", {}).get("distillation")
    if record is not None and not isinstance(record, dict):
        raise CheckpointError(
            f"{Path(run_dir) / RUN_FILE}: field 'extra.distillation' is a {type(record).__name__}; expected an object "
            "(the teacher and settings). The file is damaged: restore it, or retrain the run."
        )
    return record


def check_resume(run_dir, targets: Targets | None) -> None:
    """Refuse to resume a run with another teacher or other distillation settings than it was started with."""
    run_dir = Path(run_dir)
    stored = teacher_record(run_dir) if (run_dir / RUN_FILE).exists() else None
    passed = run_extra(targets).get("distillation")

    def identity(record):
        return None if record is None else {k: record.get(k) for k in IDENTITY_KEYS}

    if identity(stored) != identity(passed):
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained with other targets than the ones passed (stored "
            f"{json.dumps(identity(stored))}, passed {json.dumps(identity(passed))}). Resume with the same teacher "
            "and settings (interp.train.distill.teacher_record(run_dir) has them), train into a new directory, "
            "or pass overwrite=True."
        )
