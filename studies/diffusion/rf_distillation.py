"""The distillation claim of Paper B tested inside Bonnaire et al.'s random-feature model (docs/papers.md, B.4).

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

from interp.errors import ShapeError, SpecError, TrainingDiverged
from interp.models.functional import FlatLayout
from interp.results import Result
from interp.train.engine import GroupTrainer, Hooks, Job
from interp.train.objective import Objective, step_generators
from interp.train_config import TrainConfig
from probes.samples import as_points
from studies.diffusion.checks import check_count, check_real
from studies.diffusion.random_features import (
    FeatureSpectrum,
    RFShape,
    RFTraining,
    diffuse,
    feature_spectrum,
    noise_variance,
    rf_score,
    rf_weights,
    train_rf_score,
)

_STREAM_EVAL = 0xE7A1  # the evaluations' noise, apart from training's


def tweedie_denoiser(B: torch.Tensor, W: torch.Tensor, x: torch.Tensor, s: float) -> torch.Tensor:
    """E[x0 | x_s] under the score model: e^s (x + Delta_s s_B(x)); x [n, d]."""
    return math.exp(s) * (x + noise_variance(s) * rf_score(B, W, x))


def rf_heun_step(A: torch.Tensor, W: torch.Tensor, x: torch.Tensor, s_from: float, s_to: float) -> torch.Tensor:
    """One Heun step of the VP probability-flow ODE dx/ds = -x - s_A(x) from time s_from to s_to."""
    h = s_to - s_from
    slope = -x - rf_score(A, W, x)  # [n, d]
    x_euler = x + h * slope
    return x + h * (slope + (-x_euler - rf_score(A, W, x_euler))) / 2


@dataclass(frozen=True)
class RFDistillProblem:
    """What the random-feature student is distilled on: the teacher's readout A [d, p], the features W
    [p, d], the training points [n, d], the time t and the factor of the upper time, the EMA rate."""

    A_teacher: torch.Tensor
    W: torch.Tensor
    x: torch.Tensor
    t: float
    factor: float
    ema: float


class RFConsistencyObjective(Objective):
    """The two-time consistency loss of the random-feature student B (see the module doc) as an objective
    of the training engine: B starts at the teacher's A, the EMA target (extra state) too; each model
    draws its noise from one generator seeded by its seed, in a plain loop's order. Evaluations: the loss
    on one fixed draw ("loss")."""

    metric_names = ("loss",)
    loss_metric = "loss"

    def __init__(self, jobs, device, dtype):
        super().__init__(jobs, device, dtype)
        d, p = jobs[0].task.A_teacher.shape
        self.layout = FlatLayout([("B", (d, p))])
        self.problems = [j.task for j in jobs]
        self.gens = [torch.Generator(device=device).manual_seed(j.cfg.seed) for j in jobs]
        self.seeds = [j.cfg.seed for j in jobs]
        self.ema = torch.tensor([[j.task.ema] for j in jobs], dtype=torch.float64).to(device, dtype)  # [M, 1]
        self.target: torch.Tensor | None = None  # [M, d p]

    def initial_state(self, job) -> dict:
        return {"B": job.task.A_teacher}

    def begin(self, flat, saved) -> None:
        rows = [flat[i] if s is None or "target" not in s else s["target"] for i, s in enumerate(saved)]
        self.target = torch.stack([r.to(flat.device, flat.dtype) for r in rows]).clone()

    def after_update(self, flat) -> None:
        self.target.lerp_(flat, 1.0 - self.ema)

    def extra_state(self, i: int) -> dict:
        return {"target": self.target[i]}

    def _loss(self, flat, gens) -> torch.Tensor:
        B = self.layout.views(flat)["B"]  # [M, d, p]
        target = self.layout.views(self.target)["B"]
        out = []
        for m, (prob, gen) in enumerate(zip(self.problems, gens)):
            t_hi = prob.factor * prob.t
            x_hi, _ = diffuse(prob.x, t_hi, gen)  # [n, d]
            with torch.no_grad():
                goal = tweedie_denoiser(
                    target[m], prob.W, rf_heun_step(prob.A_teacher, prob.W, x_hi, t_hi, prob.t), prob.t
                )
            out.append(((tweedie_denoiser(B[m], prob.W, x_hi, t_hi) - goal) ** 2).sum(dim=1).mean())
        return torch.stack(out)  # [M]

    def losses(self, flat, step: int) -> torch.Tensor:
        return self._loss(flat, self.gens)

    @torch.no_grad()
    def evaluate(self, flat) -> torch.Tensor:
        fixed = step_generators(self.seeds, _STREAM_EVAL, 0, flat.device)  # one fixed draw, apart from training's
        return self._loss(flat, fixed)[:, None]

    def select(self, keep) -> None:
        idx = keep.tolist()
        self.problems, self.gens, self.seeds = ([v[i] for i in idx] for v in (self.problems, self.gens, self.seeds))
        self.target, self.ema = self.target.index_select(0, keep), self.ema.index_select(0, keep)


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
    """The student's readout B [d, p] after `steps` Adam steps of the two-time consistency loss (see the
    module doc), trained by the engine (`RFConsistencyObjective`; Adam with torch.optim's defaults)."""
    if A_teacher.shape != (W.shape[1], W.shape[0]):
        raise ShapeError(f"A_teacher has shape {tuple(A_teacher.shape)}, expected [d, p] = {[W.shape[1], W.shape[0]]}.")
    x = as_points(train_x, "train_x", device=train_x.device if isinstance(train_x, torch.Tensor) else None)
    if x.shape[1] != W.shape[1]:
        raise ShapeError(f"train_x has d = {x.shape[1]}, the features W [p, d] d = {W.shape[1]}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpecError("rf_consistency_distill", "steps", steps, "a positive int")
    if not 0.0 <= ema < 1.0:
        raise SpecError("rf_consistency_distill", "ema", ema, "a number in [0, 1)", "0.95 (EMA) or 0 (stop-gradient).")
    if not (isinstance(factor, (int, float)) and factor > 1):
        raise SpecError("rf_consistency_distill", "factor", factor, "a number > 1 (t_hi = factor t)")
    cfg = TrainConfig(
        steps=steps, lr=lr, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0,
        eval_every=steps, seed=seed, device=str(x.device),
    )  # fmt: skip
    problem = RFDistillProblem(A_teacher.detach().to(x.device), W.to(x.device), x, float(t), float(factor), float(ema))
    job = Job(0, RFShape(W.shape[1], W.shape[0]), problem, cfg, objective=RFConsistencyObjective)
    outcome = GroupTrainer([job], x.device, Hooks()).run()[0]
    if outcome.status != "complete":
        raise TrainingDiverged("random-feature consistency distillation: " + outcome.message)
    return outcome.state_dict["B"]


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
