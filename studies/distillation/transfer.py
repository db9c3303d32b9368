"""Knowledge distillation on the arithmetic tasks: does a student inherit its teacher's memorised noise?

A teacher trained on noisy labels (it memorised them) labels the data for a student (`studies.distillation.teacher`:
soft targets at temperature T or hard labels, on the training inputs or on every pair). What is transferred
is measured on each student against the control, a student of the same config and seed trained on the raw
noisy labels: its fit to the noisy labels (against the labels given and the true ones), its test accuracy,
its agreement with the teacher, frequency filtration (circuits.filtration) and the partitions
(circuits.partition). `teacher_soft_labels` asks the prior question: do the teacher's soft outputs on the
noisy examples still carry the true class (its probability, its rank among the p classes), which bounds
what a student of soft targets can inherit beyond the memorised labels.

    sweep = distillation_sweep(teacher, student_configs=[MLPConfig(p=23, width=128)], temperatures=(1.0, 4.0))
    report = distillation_transfer(teacher, students=sweep.students, controls=sweep.controls, temperatures=(1.0, 4.0))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from circuits.filtration import frequency_filtration
from circuits.partition import partition
from interp.checkpoints import RUN_FILE
from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.metrics import all_logits, evaluate
from interp.results import Result
from probes.scores import DEFAULT_SCORE
from studies.distillation.teacher import check_options, teacher_record

__all__ = [
    "DEFAULT_SCORES",
    "DistillationTransfer",
    "ModelTransfer",
    "SoftLabels",
    "distillation_transfer",
    "model_transfer",
    "teacher_agreement",
    "teacher_soft_labels",
]

DEFAULT_SCORES = ("strength", DEFAULT_SCORE)  # the partitions measured on every model


@dataclass(frozen=True, eq=False)
class SoftLabels(Result):
    """How much of the true class the teacher's soft outputs carry on its noisy training examples.

    Probabilities are softmax(logits / T); ranks come from the logits (1 = the argmax; ties share the
    better rank), so they do not depend on T. Chance: a class drawn at random has probability 1/p and
    mean rank (p + 1) / 2.
    """

    temperature: float
    p: int
    n_noisy: int
    true_prob: float  # mean probability of the true class
    given_prob: float  # mean probability of the wrong label given (the one the teacher memorised)
    true_rank: float  # mean rank of the true class among the p classes
    true_top1: float  # fraction of noisy examples whose true class is the teacher's argmax
    true_top2: float  # ... among its two largest outputs
    true_runner_up: float  # ... the largest output other than the given label
    chance_prob: float
    chance_rank: float
    clean_true_prob: float  # for reference: mean probability of the label on the clean training examples
    rank_counts: tuple[int, ...]  # [p]: how many noisy examples have the true class at rank r + 1


@dataclass(frozen=True, eq=False)
class ModelTransfer(Result):
    """What one model (the teacher, a distilled student or a control) learned, measured on the task."""

    name: str
    role: str  # "teacher" | "student" | "control"
    settings: dict  # width, seed, targets, temperature, inputs, and a student's control
    metrics: dict  # interp.evaluate: train_noisy_acc (given labels), train_noisy_true_acc, test_acc, ...
    agreement: dict  # fraction of pairs where the model's argmax is the teacher's: train_clean, train_noisy, test, all
    filtration: dict | None  # circuits.filtration.frequency_filtration metrics {"raw", "g", "r"}, or None
    filtration_note: str
    partitions: dict  # score -> {"g": metrics of G alone, "r": metrics of R alone} (circuits.partition)


@dataclass(frozen=True, eq=False)
class DistillationTransfer(Result):
    """The teacher, its students and their controls side by side, and the teacher's soft labels."""

    task_spec: dict
    teacher: ModelTransfer
    students: tuple[ModelTransfer, ...]
    controls: tuple[ModelTransfer, ...]
    soft_labels: tuple[SoftLabels, ...]  # one per temperature


def teacher_soft_labels(subject, task=None, *, temperature: float = 1.0, device=None) -> SoftLabels:
    """Whether the teacher's soft outputs on the noisy training examples carry the true class."""
    t = check_options(temperature, "soft", "train")
    model, task = resolve_subject(subject, task, device=device)
    noisy = task.noisy_mask  # [n_train]
    if not bool(noisy.any()):
        raise SpecError(
            "teacher_soft_labels", "task", repr(task), "a task with noisy training labels (label_noise > 0)",
            "The question is what the teacher keeps of the true class where it was given a wrong one.",
        )  # fmt: skip
    logits = all_logits(model, task).double().cpu()  # [N, p]
    z = logits[task.train_idx[noisy]]  # [n_noisy, p]
    true = task.labels[task.train_idx[noisy]]  # [n_noisy]
    given = task.train_labels[noisy]  # [n_noisy]
    q = (z / t).softmax(-1)  # [n_noisy, p]
    z_true = z.gather(1, true[:, None])  # [n_noisy, 1]
    rank = (z > z_true).sum(1) + 1  # [n_noisy], 1 = argmax
    others = z.scatter(1, given[:, None], float("-inf"))  # the given label removed
    clean = (logits[task.train_idx[~noisy]] / t).softmax(-1).gather(1, task.train_labels[~noisy][:, None])
    p = task.p
    return SoftLabels(
        temperature=t,
        p=p,
        n_noisy=int(noisy.sum()),
        true_prob=float(q.gather(1, true[:, None]).mean()),
        given_prob=float(q.gather(1, given[:, None]).mean()),
        true_rank=float(rank.double().mean()),
        true_top1=float((rank == 1).double().mean()),
        true_top2=float((rank <= 2).double().mean()),
        true_runner_up=float((others.argmax(-1) == true).double().mean()),
        chance_prob=1.0 / p,
        chance_rank=(p + 1) / 2,
        clean_true_prob=float(clean.mean()) if len(clean) else float("nan"),
        rank_counts=tuple(int(c) for c in torch.bincount(rank - 1, minlength=p)),
    )


def teacher_agreement(subject, task=None, *, teacher, device=None) -> dict:
    """Fraction of pairs where the subject's argmax equals the teacher's, on the task's subsets
    (train_clean, train_noisy, test, all)."""
    model, task = resolve_subject(subject, task, device=device)
    teacher, _ = resolve_subject(teacher, task, device=device)
    same = all_logits(model, task).argmax(-1).cpu() == all_logits(teacher, task).argmax(-1).cpu()  # [N]
    noisy = task.noisy_mask
    subsets = {
        "train_clean": task.train_idx[~noisy],
        "train_noisy": task.train_idx[noisy],
        "test": task.test_idx,
        "all": torch.arange(len(same)),
    }
    return {k: float(same[idx].double().mean()) if len(idx) else float("nan") for k, idx in subsets.items()}


def model_transfer(
    subject,
    task=None,
    *,
    teacher,
    name: str,
    role: str,
    settings: dict | None = None,
    scores=DEFAULT_SCORES,
    device=None,
) -> ModelTransfer:
    """One model's metrics, agreement with the teacher, frequency filtration and partitions (one per score)."""
    model, task = resolve_subject(subject, task, device=device)
    teacher_model, _ = resolve_subject(teacher, task, device=device)
    try:
        filt = frequency_filtration(model, task)
        filtration, note = filt.metrics, filt.method
    except SpecError as exc:  # e.g. a learned-embedding MLP
        filtration, note = None, f"frequency filtration does not apply: {exc}"
    partitions = {}
    for score in scores:
        split = partition(model, task, scores=score, filtration=False)
        partitions[split.score_name] = {"g": split.metrics["g"], "r": split.metrics["r"]}
    return ModelTransfer(
        name=name,
        role=role,
        settings=dict(settings or {}),
        metrics=evaluate(model, task),
        agreement=teacher_agreement(model, task, teacher=teacher_model),
        filtration=filtration,
        filtration_note=note,
        partitions=partitions,
    )


def _recorded_settings(subject) -> dict:
    """A distilled run directory's record (teacher, T, targets, inputs), for a model passed without settings."""
    where = subject if isinstance(subject, (str, os.PathLike)) else getattr(subject, "out", None)
    if where is None or not (Path(where) / RUN_FILE).is_file():
        return {}
    return teacher_record(where) or {}


def _named(models, prefix: str) -> dict:
    if isinstance(models, Mapping):
        return dict(models)
    return {f"{prefix} {i}": m for i, m in enumerate(models)}


def distillation_transfer(
    subject,
    task=None,
    *,
    students,
    controls=(),
    temperatures: Sequence[float] = (1.0,),
    settings: Mapping[str, dict] | None = None,
    scores=DEFAULT_SCORES,
    device=None,
) -> DistillationTransfer:
    """What the students inherited from the teacher (the subject: any model, run or checkpoint), against the controls trained on the
    raw noisy labels.

    students, controls: {name: subject} or a sequence of subjects (any subject: TrainResult, run
    directory, Checkpoint, model with task=). settings: {name: dict} shown beside each model (a
    `DistillationSweep` has them; a distilled run directory passed without settings shows its run.json
    record). temperatures: where the teacher's soft labels are read.
    """
    teacher_model, task = resolve_subject(subject, task, device=device)
    settings = settings or {}

    def measure(models, role):
        return tuple(
            model_transfer(
                m, task, teacher=teacher_model, name=n, role=role, settings=settings.get(n, _recorded_settings(m)),
                scores=scores, device=device,
            )
            for n, m in _named(models, role).items()
        )  # fmt: skip

    return DistillationTransfer(
        task_spec=task.spec.to_dict(),
        teacher=model_transfer(
            teacher_model,
            task,
            teacher=teacher_model,
            name="teacher",
            role="teacher",
            settings=settings.get("teacher"),
            scores=scores,
            device=device,
        ),
        students=measure(students, "student"),
        controls=measure(controls, "control"),
        soft_labels=tuple(teacher_soft_labels(teacher_model, task, temperature=t) for t in temperatures),
    )
