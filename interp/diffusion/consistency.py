"""Consistency distillation (Song et al. 2023) of an EDM teacher, as PAPERS-WAVE2 B.3 specifies.

Each step: training points x0, a level index i of the Karras discretisation (N levels), z ~ N(0, I),
x_hi = x0 + sigma_i z; one Heun step of the teacher's PF-ODE from sigma_i down to sigma_{i+1} gives
x_lo; the loss is |f_theta(x_hi, sigma_i) - f_target(x_lo, sigma_{i+1})|^2 (squared l2, uniform
weights), the target network an EMA of the student (ema = 0 is the stop-gradient copy). The student
starts from the teacher's raw network, in the consistency parametrisation (f(x, sigma_min) = x).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from interp.device import model_device, resolve_device
from interp.diffusion.data import as_training_data
from interp.diffusion.edm import SIGMA_MAX, SIGMA_MIN, ConsistencyModel, EDMDenoiser, karras_sigmas
from interp.diffusion.sampling import heun_step
from interp.diffusion.training import BATCH_SIZE, LOG_EVERY, check_schedule, seeded_build, training_batch
from interp.errors import ShapeError, SpecError, TrainingDiverged


def student_from_teacher(teacher: EDMDenoiser, *, from_scratch: bool = False, seed: int = 0) -> ConsistencyModel:
    """The consistency student: the teacher's raw network (a copy) in the consistency parametrisation;
    `from_scratch` re-initialises the network instead (the ablation of B.6)."""
    net = seeded_build(teacher.config, teacher.data_shape, seed) if from_scratch else copy.deepcopy(teacher.net)
    student = ConsistencyModel(net, teacher.config, teacher.data_shape, teacher.sigma_data, SIGMA_MIN)
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
) -> ConsistencyModel:
    """Distil `teacher` into a consistency model on `data` (the teacher's training points) with Adam.

    Returns the student (eval mode) with `.history` (loss every 100 steps), `.step`, and, for each step
    in `snapshot_steps`, a copy of its weights in `.snapshots` (see `training.at_step`)."""
    _check_arguments(teacher, steps, lr, n_discretisation, ema)
    check_schedule("consistency_distill", steps, lr, seed, batch_size)
    dev = resolve_device(device) if device is not None else model_device(teacher)
    student = student_from_teacher(teacher, from_scratch=from_scratch, seed=seed).to(dev).train().requires_grad_(True)
    teacher = copy.deepcopy(teacher).to(dev).eval().requires_grad_(False)
    x = as_training_data(data, device=dev)
    if tuple(x.shape[1:]) != teacher.data_shape:
        raise ShapeError(
            f"data points have shape {tuple(x.shape[1:])}, but the teacher was trained on {teacher.data_shape}. "
            "Distil on the teacher's own training data."
        )
    target = copy.deepcopy(student).eval().requires_grad_(False)
    sigmas = karras_sigmas(n_discretisation, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, device=dev)  # [N], descending
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator(device=dev).manual_seed(seed)
    student.snapshots, wanted = {}, {int(s) for s in snapshot_steps}
    for k in range(1, steps + 1):
        loss = consistency_loss(student, target, teacher, training_batch(x, batch_size, gen), sigmas, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ema_update(target, student, ema)
        if k % LOG_EVERY == 0 or k == steps:
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"the consistency loss became {value} at step {k} (lr={lr}). Lower lr.")
            student.history.append({"step": k, "loss": value})
        if k in wanted:
            student.snapshots[k] = {name: v.detach().clone() for name, v in student.state_dict().items()}
    student.step = steps
    return student.eval()


def consistency_loss(
    student, target, teacher, x0: torch.Tensor, sigmas: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """The CD loss on a batch x0 [B, ...]: |f(x0 + s_i z, s_i) - f_target(Heun_teacher(s_i -> s_i+1), s_i+1)|^2."""
    b = x0.shape[0]
    i = torch.randint(0, sigmas.numel() - 1, (b,), generator=gen, device=x0.device)  # [B] level indices
    sigma_hi, sigma_lo = sigmas[i], sigmas[i + 1]  # [B] each, sigma_hi > sigma_lo
    z = torch.randn(x0.shape, generator=gen, device=x0.device)
    x_hi = x0 + sigma_hi.reshape(-1, *([1] * (x0.ndim - 1))) * z  # [B, ...]
    with torch.no_grad():
        x_lo = heun_step(teacher, x_hi, sigma_hi, sigma_lo)
        goal = target(x_lo, sigma_lo)
    return ((student(x_hi, sigma_hi) - goal) ** 2).reshape(b, -1).mean(dim=1).mean()


@torch.no_grad()
def _ema_update(target: torch.nn.Module, student: torch.nn.Module, ema: float) -> None:
    for t, s in zip(target.parameters(), student.parameters()):
        t.lerp_(s, 1.0 - ema)  # t <- ema t + (1 - ema) s


def _check_arguments(teacher, steps, lr, n_discretisation, ema) -> None:
    if not isinstance(teacher, EDMDenoiser) or isinstance(teacher, ConsistencyModel):
        raise SpecError(
            "consistency_distill", "teacher", type(teacher).__name__, "an EDM denoiser from train_denoiser or load"
        )
    check_schedule("consistency_distill", steps, lr)
    if not isinstance(n_discretisation, int) or isinstance(n_discretisation, bool) or n_discretisation < 2:
        raise SpecError(
            "consistency_distill", "n_discretisation", n_discretisation, "an int >= 2", "Song et al. use 18."
        )
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
        raise SpecError("consistency_distill", "ema", ema, "a number in [0, 1)", "0.95 (EMA) or 0 (stop-gradient).")
