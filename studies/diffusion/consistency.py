"""Consistency distillation (Song et al. 2023) of an EDM teacher, as docs/papers.md, B.3 specifies.

Each step: training points x0, a level index i of the Karras discretisation (N levels), z ~ N(0, I),
x_hi = x0 + sigma_i z; one Heun step of the teacher's PF-ODE from sigma_i down to sigma_{i+1} gives
x_lo; the loss is |f_theta(x_hi, sigma_i) - f_target(x_lo, sigma_{i+1})|^2 (squared l2, uniform
weights), the target network an EMA of the student (ema = 0 is the stop-gradient copy). The student
starts from the teacher's raw network, in the consistency parametrisation (f(x, sigma_min) = x).
It trains through grokscope's one engine (`studies.diffusion.objectives.ConsistencyObjective`): the
EMA target is saved in the run directory's resume state and resumes with it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from interp.device import model_device, resolve_device
from interp.errors import ShapeError, SpecError
from studies.diffusion.edm import SIGMA_MIN, ConsistencyConfig, ConsistencyModel, EDMDenoiser
from studies.diffusion.objectives import BATCH_SIZE, ConsistencyTargets, PointData
from studies.diffusion.training import adam_config, check_schedule, fit


def student_from_teacher(teacher: EDMDenoiser, *, from_scratch: bool = False, seed: int = 0) -> ConsistencyModel:
    """The consistency student: the teacher's raw network (a copy) in the consistency parametrisation;
    `from_scratch` re-initialises the network instead (the ablation of B.6)."""
    cfg = ConsistencyConfig(teacher.config, teacher.data_shape, teacher.sigma_data, SIGMA_MIN)
    if from_scratch:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            student = ConsistencyModel(cfg)
    else:
        student = ConsistencyModel(cfg, net=copy.deepcopy(teacher.net))
    return student.to(model_device(teacher))


def consistency_distill(
    teacher: EDMDenoiser,
    data,
    *,
    steps: int,
    lr: float,
    n_discretisation: int = 18,
    seed: int,
    device=None,
    ema: float = 0.95,
    batch_size: int = BATCH_SIZE,
    from_scratch: bool = False,
    snapshot_steps: Sequence[int] = (),
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
) -> ConsistencyModel:
    """Distil `teacher` into a consistency model on `data` (the teacher's training points) with Adam.

    Returns the student (eval mode) with `.history` (the loss every 100 steps, on one fixed draw),
    `.step`, and, for each step in `snapshot_steps`, a copy of its weights in `.snapshots` (see
    `training.at_step`). `out`, `resume`, `progress`: as `train_denoiser` (the run directory records
    the teacher's fingerprint, and resuming with another teacher is refused)."""
    if not isinstance(teacher, EDMDenoiser) or isinstance(teacher, ConsistencyModel):
        raise SpecError(
            "consistency_distill", "teacher", type(teacher).__name__, "an EDM denoiser from train_denoiser or load"
        )
    check_schedule("consistency_distill", steps, lr, seed, batch_size)
    dev = resolve_device(device) if device is not None else model_device(teacher)
    frozen = copy.deepcopy(teacher).to(dev).eval().requires_grad_(False)
    targets = ConsistencyTargets(frozen, n_discretisation, ema, from_scratch)  # checks n_discretisation and ema
    points = PointData(data, device=dev)
    if tuple(points.x.shape[1:]) != teacher.data_shape:
        raise ShapeError(
            f"data points have shape {tuple(points.x.shape[1:])}, but the teacher was trained on {teacher.data_shape}. "
            "Distil on the teacher's own training data."
        )
    student_config = ConsistencyConfig(teacher.config, teacher.data_shape, teacher.sigma_data, SIGMA_MIN)
    cfg = adam_config(steps=steps, lr=lr, seed=seed, batch_size=batch_size, device=dev)
    return fit(student_config, points, cfg, targets=targets, out=out, resume=resume, overwrite=overwrite,
               progress=progress, snapshot_steps=snapshot_steps, desc="distil")  # fmt: skip
