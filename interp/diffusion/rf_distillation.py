"""The distillation claim of Paper B tested inside Bonnaire et al.'s random-feature model (PAPERS-WAVE2 B.4).

B.4's proxy: train the random-feature teacher past tau_mem, distil a student with the same features by
the consistency loss, and project the change A_student - A_teacher onto the two bulks of the feature
covariance; the prediction is that the small-eigenvalue (memorising) component shrinks while the
large-eigenvalue (generalising) one is kept.

The random-feature model has one diffusion time, so the consistency loss is taken between two nearby
times, t_hi = factor * t and t (an approximation that uses the time-t score at both, as the fixed-time
theory does): the student's denoiser f_B(x, s) = e^s (x + Delta_s s_B(x)) (Tweedie) at x_hi = e^-t_hi x0
+ sqrt(Delta_hi) xi (x0 a training point) is pulled towards the EMA target's denoiser at the point one
Heun step of the teacher's probability-flow ODE dx/ds = -x - s_A(x) brings x_hi down to t. The
student starts from the teacher (B = A). This construction is ours: Paper B's own formula is not known
(B.1, B.4: [not found]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from interp.diffusion.checks import check_count, check_real
from interp.diffusion.random_features import (
    FeatureSpectrum,
    RFTraining,
    diffuse,
    feature_spectrum,
    noise_variance,
    rf_score,
    rf_weights,
    train_rf_score,
)
from interp.errors import ShapeError, SpecError
from interp.results import Result


def tweedie_denoiser(B: torch.Tensor, W: torch.Tensor, x: torch.Tensor, s: float) -> torch.Tensor:
    """E[x0 | x_s] under the score model: e^s (x + Delta_s s_B(x)); x [n, d]."""
    return math.exp(s) * (x + noise_variance(s) * rf_score(B, W, x))


def rf_heun_step(A: torch.Tensor, W: torch.Tensor, x: torch.Tensor, s_from: float, s_to: float) -> torch.Tensor:
    """One Heun step of the VP probability-flow ODE dx/ds = -x - s_A(x) from time s_from to s_to."""
    h = s_to - s_from
    slope = -x - rf_score(A, W, x)  # [n, d]
    x_euler = x + h * slope
    return x + h * (slope + (-x_euler - rf_score(A, W, x_euler))) / 2


def rf_consistency_distill(
    A_teacher: torch.Tensor,
    W: torch.Tensor,
    train_x: torch.Tensor,
    *,
    t: float = 0.01,
    factor: float = 2.0,
    steps: int = 2000,
    lr: float = 1e-3,
    ema: float = 0.95,
    seed: int = 0,
) -> torch.Tensor:
    """The student's readout B [d, p] after `steps` Adam steps of the two-time consistency loss (see the module doc)."""
    if A_teacher.shape != (W.shape[1], W.shape[0]):
        raise ShapeError(f"A_teacher has shape {tuple(A_teacher.shape)}, expected [d, p] = {[W.shape[1], W.shape[0]]}.")
    t_hi = factor * t
    B = A_teacher.clone().requires_grad_(True)
    target = A_teacher.clone()
    opt = torch.optim.Adam([B], lr=lr)
    gen = torch.Generator(device=train_x.device).manual_seed(seed)
    for _ in range(steps):
        x_hi, _ = diffuse(train_x, t_hi, gen)  # [n, d]
        with torch.no_grad():
            goal = tweedie_denoiser(target, W, rf_heun_step(A_teacher, W, x_hi, t_hi, t), t)
        loss = ((tweedie_denoiser(B, W, x_hi, t_hi) - goal) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            target.lerp_(B, 1.0 - ema)
    return B.detach()


@dataclass(frozen=True)
class BulkProjection(Result):
    """The teacher's and the student's readouts and their difference, projected on the two bulks of U."""

    teacher_large: float  # |A_teacher P_large|_F
    teacher_small: float
    student_large: float
    student_small: float
    change_large: float  # |(B - A) P_large|_F
    change_small: float
    kept_large: float  # student_large / teacher_large (prediction: about 1)
    kept_small: float  # student_small / teacher_small (prediction: below 1, below kept_large)
    change_share_small: float  # change_small^2 / |B - A|_F^2
    small_bulk_damped_more: bool  # kept_small < kept_large: the prediction's direction


def bulk_projection(A_teacher: torch.Tensor, B_student: torch.Tensor, spectrum: FeatureSpectrum) -> BulkProjection:
    """Project A, B and B - A ([d, p]) on the large and small bulks' eigenvectors of the feature covariance."""
    vecs = spectrum.eigenvectors.to(A_teacher.device)  # [p, p]
    large, small = vecs[:, : spectrum.split], vecs[:, spectrum.split :]

    def norms(M: torch.Tensor) -> tuple[float, float]:
        return float((M @ large).norm()), float((M @ small).norm())  # |M P|_F = |M V_bulk|_F (orthonormal V)

    (tl, ts), (sl, ss), (cl, cs) = norms(A_teacher), norms(B_student), norms(B_student - A_teacher)
    kept_large = sl / tl if tl > 0 else float("nan")
    kept_small = ss / ts if ts > 0 else float("nan")
    return BulkProjection(
        teacher_large=tl, teacher_small=ts, student_large=sl, student_small=ss, change_large=cl, change_small=cs,
        kept_large=kept_large, kept_small=kept_small,
        change_share_small=cs**2 / (cl**2 + cs**2) if cl + cs > 0 else float("nan"),
        small_bulk_damped_more=bool(kept_small < kept_large),
    )  # fmt: skip


@dataclass(frozen=True)
class RFDistillation(Result):
    """B.4's test: a memorising random-feature teacher, its consistency-distilled student, their bulk projection."""

    teacher: RFTraining
    spectrum: FeatureSpectrum
    projection: BulkProjection
    teacher_steps: int
    distill_steps: int
    B: torch.Tensor = field(repr=False)


def rf_distillation(
    *, d: int = 50, p: int = 200, n: int = 50, t: float = 0.01, teacher_steps: int = 6000, distill_steps: int = 2000,
    lr: float = 1e-3, ema: float = 0.95, factor: float = 2.0, seed: int = 0, device=None,
) -> RFDistillation:  # fmt: skip
    """Train the teacher (past tau_mem at the defaults), take the spectrum, distil, project."""
    for name, v in (("n", n), ("teacher_steps", teacher_steps), ("distill_steps", distill_steps)):
        check_count("rf_distillation", name, v)
    for name, v in (("t", t), ("lr", lr), ("factor", factor)):
        check_real("rf_distillation", name, v, positive=True)
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
        raise SpecError("rf_distillation", "ema", ema, "a number in [0, 1)")
    W = rf_weights(d, p, seed=seed, device=device)
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed * 100_003 + n)).to(W.device)
    teacher = train_rf_score(x, W, steps=teacher_steps, t=t, seed=seed + 1)
    spectrum = feature_spectrum(x, W, t=t, seed=seed + 2)
    B = rf_consistency_distill(teacher.A, W, x, t=t, factor=factor, steps=distill_steps, lr=lr, ema=ema, seed=seed + 3)
    return RFDistillation(
        teacher=teacher,
        spectrum=spectrum,
        projection=bulk_projection(teacher.A, B, spectrum),
        teacher_steps=teacher_steps,
        distill_steps=distill_steps,
        B=B,
    )
