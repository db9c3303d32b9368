"""One memorisation-and-distillation experiment on one training set (docs/papers.md, B.8): a teacher trained
until it copies, its consistency-distilled student, the continued-training control, and the B.2 measures.

    result = distillation_experiment(train_images, reference_images, UNetConfig(channels=64), seed=0)
    result.measures["teacher"].copy.fraction, result.measures["student_1"].frechet.distance

The teacher trains in rounds of `check_every` steps; after each round its copy fraction is measured on
Heun samples, and training stops once it reaches `target_f_mem` (or at `max_teacher_steps`). The
student's copy fraction is measured at every `distill_check_every` steps of consistency distillation.
The Frechet distance is `probes.samples.frechet_distance`: Gaussian fits in data (pixel) space, not FID.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from interp.device import resolve_device
from interp.errors import ShapeError, SpecError
from interp.results import Result
from probes.samples import SampleMemorization, copy_fraction, memorization_summary
from studies.diffusion.consistency import consistency_distill
from studies.diffusion.data import as_training_data
from studies.diffusion.edm import ConsistencyModel, EDMDenoiser
from studies.diffusion.sampling import sample
from studies.diffusion.training import at_step, continue_training, train_denoiser


@dataclass(frozen=True)
class DistillationSchedule:
    """How the teacher, the student and the control of one experiment train, and how much is sampled.
    The defaults are B.8's GPU recipe."""

    teacher_lr: float = 2e-4  # Adam
    teacher_batch: int = 256
    target_f_mem: float = 0.5  # train the teacher until its copy fraction reaches this ...
    check_every: int = 5000  # ... measured after every round of this many steps ...
    max_teacher_steps: int = 200_000  # ... or until this many steps (B.8: budget steps in proportion to n)
    n_check: int = 2000  # samples behind each copy fraction of the curves (teacher rounds, CD checkpoints)
    distill_steps: int = 50_000  # consistency distillation; the control trains the teacher as many steps more
    distill_lr: float = 4e-4
    distill_batch: int = 512
    distill_check_every: int = 5000  # the student's copy fraction against CD steps, every this many steps
    n_discretisation: int = 18
    ema: float = 0.0  # target network: 0 is the stop-gradient copy (openai's CIFAR-10 CD), 0.95 B.6's EMA
    n_samples: int = 10_000  # samples per model for the final measures

    def __post_init__(self):
        for name in ("teacher_batch", "check_every", "max_teacher_steps", "n_check", "distill_steps",
                     "distill_batch", "distill_check_every", "n_discretisation", "n_samples"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError("DistillationSchedule", name, v, "a positive int")
        for name in ("teacher_lr", "distill_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError("DistillationSchedule", name, v, "a positive number", "B.8 uses 2e-4 and 4e-4.")
        if not 0 < self.target_f_mem <= 1:
            raise SpecError("DistillationSchedule", "target_f_mem", self.target_f_mem, "a fraction in (0, 1]")
        if not 0 <= self.ema < 1:
            raise SpecError("DistillationSchedule", "ema", self.ema, "a number in [0, 1)", "0 or 0.95.")

    def distill_checkpoints(self) -> tuple[int, ...]:
        """The CD steps at which the student's copy fraction is measured (the last step always)."""
        return tuple(sorted({*range(self.distill_check_every, self.distill_steps + 1, self.distill_check_every),
                             self.distill_steps}))  # fmt: skip


@dataclass(frozen=True)
class DistillationExperiment(Result):
    """Teacher, student and control on one training set: their copy fractions and Frechet distances."""

    n_train: int
    teacher_steps: int  # where the teacher stopped
    reached_target: bool  # its copy fraction reached target_f_mem within max_teacher_steps
    teacher_curve: list[dict]  # {"step", "f_mem", "stderr"} after every round (n_check Heun samples)
    distill_curve: list[dict]  # {"step", "f_mem", "stderr"} of the one-step student at each checkpoint
    measures: dict[str, SampleMemorization]  # "held_out" (when given), "teacher", "control", "student_1", "student_2"
    schedule: DistillationSchedule
    teacher: EDMDenoiser = field(repr=False)
    student: ConsistencyModel = field(repr=False)
    control: EDMDenoiser = field(repr=False)


def copy_point(model, train_data: torch.Tensor, *, n: int, steps: int | None, seed: int, step: int) -> dict:
    """{"step", "f_mem", "stderr"}: the copy fraction of n samples of `model` (one z per seed)."""
    res = copy_fraction(sample(model, n, steps=steps, seed=seed), train_data)
    return {"step": step, "f_mem": res.fraction, "stderr": res.stderr}


def train_until_copying(
    data, config, schedule: DistillationSchedule, *, seed: int, device=None, log: Callable[[str], None] | None = None
) -> tuple[EDMDenoiser, list[dict]]:
    """An EDM teacher trained in rounds until its copy fraction reaches `schedule.target_f_mem` (or the step
    budget runs out), and its copy fraction after every round."""
    s, log = schedule, log or (lambda msg: None)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    x = as_training_data(data, device=dev)
    first = min(s.check_every, s.max_teacher_steps)
    teacher = train_denoiser(x, config, steps=first, lr=s.teacher_lr, seed=seed, device=dev, batch_size=s.teacher_batch)
    curve = [copy_point(teacher, x, n=s.n_check, steps=None, seed=seed + 1, step=teacher.step)]
    log(f"n = {x.shape[0]}: teacher step {teacher.step}, f_mem {curve[-1]['f_mem']:.3f}")
    while curve[-1]["f_mem"] < s.target_f_mem and teacher.step < s.max_teacher_steps:
        more = min(s.check_every, s.max_teacher_steps - teacher.step)
        teacher = continue_training(teacher, x, steps=more, lr=s.teacher_lr, seed=seed, batch_size=s.teacher_batch)
        curve.append(copy_point(teacher, x, n=s.n_check, steps=None, seed=seed + 1, step=teacher.step))
        log(f"n = {x.shape[0]}: teacher step {teacher.step}, f_mem {curve[-1]['f_mem']:.3f}")
    return teacher, curve


def measure_samplers(
    samplers: dict, train_data: torch.Tensor, reference: torch.Tensor, *, held_out=None, n_samples: int, seed: int
) -> dict[str, SampleMemorization]:
    """The B.2 measures of {name: (model, sampling steps or None)}, all sampled from one z (`seed`), and of
    `held_out` data (under "held_out") when given."""
    dev = train_data.device
    measures = (
        {} if held_out is None else {"held_out": memorization_summary(held_out, train_data, reference, device=dev)}
    )
    for name, (model, steps) in samplers.items():
        samples = sample(model, n_samples, steps=steps, seed=seed)  # [n_samples, ...]
        measures[name] = memorization_summary(samples, train_data, reference, device=dev)
    return measures


def distillation_experiment(
    data,
    reference,
    config,
    schedule: DistillationSchedule = DistillationSchedule(),
    *,
    seed: int,
    device=None,
    held_out=None,
    log: Callable[[str], None] | None = None,
) -> DistillationExperiment:
    """Teacher (trained until it copies), consistency student (1 and 2 steps) and control on `data` [n, ...],
    measured against `reference` (held-out data of the same distribution, for the Frechet distance).

    `held_out` (more held-out data, optional) is measured like samples: what generalisation looks like."""
    log = log or (lambda msg: None)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    x = as_training_data(data, device=dev)
    ref = as_training_data(reference, name="reference", device=dev)
    if ref.shape[1:] != x.shape[1:]:
        raise ShapeError(
            f"reference points have shape {tuple(ref.shape[1:])} but the training points {tuple(x.shape[1:])}. "
            "Pass held-out data of the same kind (the same image size and channels)."
        )
    teacher, teacher_curve = train_until_copying(x, config, schedule, seed=seed, device=dev, log=log)
    s, checkpoints = schedule, schedule.distill_checkpoints()
    log(f"n = {x.shape[0]}: consistency distillation, {s.distill_steps} steps, and the control")
    student = consistency_distill(
        teacher, x, steps=s.distill_steps, lr=s.distill_lr, n_discretisation=s.n_discretisation, seed=seed,
        ema=s.ema, batch_size=s.distill_batch, snapshot_steps=checkpoints,
    )  # fmt: skip
    distill_curve = [
        copy_point(at_step(student, k), x, n=s.n_check, steps=1, seed=seed + 1, step=k) for k in checkpoints
    ]
    student.snapshots = {}  # measured; the weights of every checkpoint need not outlive this call
    control = continue_training(
        teacher, x, steps=s.distill_steps, lr=s.teacher_lr, seed=seed, batch_size=s.teacher_batch
    )
    samplers = {
        "teacher": (teacher, None),
        "control": (control, None),
        "student_1": (student, 1),
        "student_2": (student, 2),
    }
    measures = measure_samplers(samplers, x, ref, held_out=held_out, n_samples=s.n_samples, seed=seed + 1)
    return DistillationExperiment(
        n_train=x.shape[0], teacher_steps=teacher.step, reached_target=teacher_curve[-1]["f_mem"] >= s.target_f_mem,
        teacher_curve=teacher_curve, distill_curve=distill_curve, measures=measures, schedule=s,
        teacher=teacher, student=student, control=control,
    )  # fmt: skip
