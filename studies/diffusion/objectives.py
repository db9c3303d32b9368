"""What denoisers and consistency models learn, as objectives of grokscope's one training engine.

`interp.train.train` / `train_many` train any model through one loop (interp.train.engine): the
vectorised optimizers, run directories that `interp.checkpoints.load()` reads, resume, progress, a
NaN stop per model. The study brings what its models learn:

- `PointData` is the "task" of a denoiser run: the training points [n, ...] and their DataSpec (what
  run.json records: kind, n, shape of a point, a fingerprint of the values). Its objective is
  `DenoisingObjective`: the EDM loss (Karras et al. 2022) on a batch of the points (docs/papers.md, B.6's recipe: all
  n points repeated round(batch / n) times when n <= batch, else a random batch), fresh noise each step.
- `ConsistencyTargets(teacher, ...)` (a job's 4th element) makes a job a consistency distillation
  (Song et al. 2023): `ConsistencyObjective` pulls the student f(x_hi, sigma_i) towards the EMA target's
  f(x_lo, sigma_{i+1}), x_lo one Heun step of the frozen teacher's PF-ODE below x_hi. The EMA target
  is the objective's extra state: written into the resume file, resumed with the run.

Randomness is drawn per model from generators keyed by (seed, step) (interp.train.objective.step_generators),
so a resumed run draws the same batches and noise as an uninterrupted one. M models of one config
run as one batched computation through interp.models.functional.FunctionalStack (torch.func), the
teacher too. Evaluation records each model's loss on one fixed draw of batch and noise ("loss").
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from interp.data_spec import DataSpec
from interp.errors import ShapeError, SpecError
from interp.models import build_model
from interp.models.functional import FunctionalStack
from interp.train.objective import Objective, step_generators
from interp.train.targets import run_extra
from interp.validation import check_fraction, check_int
from studies.diffusion.data import as_training_data
from studies.diffusion.edm import (
    SIGMA_MAX,
    SIGMA_MIN,
    ConsistencyConfig,
    ConsistencyModel,
    EDMConfig,
    EDMDenoiser,
    edm_loss_of,
    edm_noise,
    karras_sigmas,
)

BATCH_SIZE = 256
_STREAM_TRAIN, _STREAM_EVAL = 0x5EED, 0xE7A1  # independent random streams for training steps and evaluations


def training_batch(data: torch.Tensor, batch_size: int | None, generator: torch.Generator) -> torch.Tensor:
    """A batch of training points: all n repeated round(batch_size / n) times when n <= batch_size
    (every point in every step, fresh noise: B.6's recipe), else batch_size points drawn at random;
    batch_size None: every point once."""
    n = data.shape[0]
    if batch_size is None:
        return data
    if n <= batch_size:
        return data.repeat(max(1, round(batch_size / n)), *([1] * (data.ndim - 1)))  # [reps * n, ...]
    idx = torch.randint(0, n, (batch_size,), generator=generator, device=data.device)  # [batch_size]
    return data[idx]


def _per_point(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Levels sigma [M, B] as [M, B, 1, ...], to scale points x [M, B, ...]."""
    return sigma.view(*sigma.shape, *([1] * (x.ndim - sigma.ndim)))


class PointData:
    """Training points [n, ...] (vectors [n, d] or images [n, C, H, W]) as the task of a denoiser run."""

    def __init__(self, data, *, name: str = "", device=None):
        self.x = as_training_data(data, device=device)  # float32 [n, ...]: checked (finite, >= 2 points)
        self.spec = DataSpec.of(self.x, name=name)

    objective: ClassVar[type]  # DenoisingObjective (set below)

    def __repr__(self) -> str:
        return f"PointData({self.spec!r})"


def _check_points(job, expected) -> None:
    if not isinstance(job.task, PointData):
        raise SpecError(
            "train", "task", type(job.task).__name__, "a studies.diffusion.PointData", "Wrap the points: PointData(x)."
        )
    if not isinstance(job.model_config, expected):
        raise SpecError("train", "model_config", type(job.model_config).__name__, f"a {expected.__name__}")
    shape = tuple(job.task.x.shape[1:])
    if shape != job.model_config.data_shape:
        raise ShapeError(
            f"data points have shape {shape}, but the model config is for points of shape "
            f"{job.model_config.data_shape}. Build the config with the data's shape (or train on the data it was made for)."
        )


class _PointObjective(Objective):
    """What denoising and consistency distillation share: the data, the batches, the generators."""

    loss_metric = "loss"
    metric_names = ("loss",)

    def __init__(self, jobs, device, dtype):
        super().__init__(jobs, device, dtype)
        self.stack = FunctionalStack(jobs[0].model_config, device, dtype)
        self.layout = self.stack
        self.x = torch.stack([j.task.x for j in jobs]).to(device, dtype)  # [M, n, ...]
        self.batch_size = jobs[0].cfg.batch_size
        self.seeds = [j.cfg.seed for j in jobs]
        self.sigma_data = jobs[0].model_config.sigma_data

    @classmethod
    def group_key(cls, job) -> tuple:
        return (repr(job.model_config), len(job.task.x), job.cfg.batch_size)

    @classmethod
    def bytes_per_model(cls, job) -> int:
        model = build_model(job.model_config, seed=None)
        n_params = sum(p.numel() for p in model.parameters())
        batch = len(job.task.x) if job.cfg.batch_size is None else max(job.cfg.batch_size, len(job.task.x))
        width = max((max(p.shape, default=1) for p in model.parameters()), default=1)
        return 32 * n_params + 4 * batch * (math.prod(job.model_config.data_shape) + 16 * width) * 8

    def model_at(self, flat, i: int):
        return self.stack.model_at(flat, i, copy=False)

    def _batches(self, stream: int, step: int):
        """Per model: its generator (keyed by seed, stream, step) and its batch of points; [M, B, ...]."""
        gens = step_generators(self.seeds, stream, step, self.device)
        x0 = torch.stack([training_batch(x, self.batch_size, g) for x, g in zip(self.x, gens)])
        return gens, x0

    def select(self, keep: torch.Tensor) -> None:
        self.x = self.x.index_select(0, keep)
        self.seeds = [self.seeds[i] for i in keep.tolist()]

    def divergence_advice(self, cfg) -> str:
        return f"Fix: lower the learning rate (e.g. lr={cfg.lr / 10:g}; Adam's usual range for these models is 1e-4 to 1e-3)."


class DenoisingObjective(_PointObjective):
    """EDM denoisers trained on their points: lambda(sigma) |D(x0 + sigma n, sigma) - x0|^2 (edm.edm_loss)."""

    @classmethod
    def check_job(cls, job) -> None:
        _check_points(job, EDMConfig)
        if isinstance(job.model_config, ConsistencyConfig):
            raise SpecError(
                "train", "model_config", "ConsistencyConfig", "an EDMConfig",
                "A consistency model trains by distillation: pass ConsistencyTargets(teacher) as the job's 4th element.",
            )  # fmt: skip

    def initial_state(self, job):
        return build_model(job.model_config, seed=job.cfg.seed).state_dict()

    def _loss(self, flat, gens, x0):
        params = self.stack.views(flat)
        noise = [edm_noise(x, g) for x, g in zip(x0, gens)]
        sigma = torch.stack([s for s, _ in noise])  # [M, B]
        n = torch.stack([z for _, z in noise])  # [M, B, ...]
        denoised = self.stack.forward(params, x0 + _per_point(sigma, n) * n, sigma)
        return edm_loss_of(denoised, x0, sigma, self.sigma_data)  # [M]

    def losses(self, flat, step: int) -> torch.Tensor:
        return self._loss(flat, *self._batches(_STREAM_TRAIN, step))

    @torch.no_grad()
    def evaluate(self, flat) -> torch.Tensor:
        return self._loss(flat, *self._batches(_STREAM_EVAL, 0))[:, None]  # one fixed draw: comparable over steps


PointData.objective = DenoisingObjective


@dataclass
class ConsistencyTargets:
    """What a consistency student is fit to: a frozen EDM teacher, the Karras discretisation of
    `n_discretisation` levels, the target network's EMA rate (0: the stop-gradient copy); the student
    starts from the teacher's network unless `from_scratch` (B.6's ablation: the seed's fresh weights)."""

    teacher: EDMDenoiser
    n_discretisation: int = 18
    ema: float = 0.95
    from_scratch: bool = False
    _fingerprint: str = field(default="", init=False, repr=False)

    identity: ClassVar[tuple[str, ...]] = ("teacher", "n_discretisation", "ema", "from_scratch")  # checked on resume
    objective: ClassVar[type]  # ConsistencyObjective (set below)

    def __post_init__(self):
        if not isinstance(self.teacher, EDMDenoiser) or isinstance(self.teacher, ConsistencyModel):
            raise SpecError(
                "consistency_distill", "teacher", type(self.teacher).__name__, "an EDM denoiser from train_denoiser or load"
            )  # fmt: skip
        check_int(
            "consistency_distill", "n_discretisation", self.n_discretisation, min_value=2, fix="Song et al. use 18."
        )
        check_fraction(
            "consistency_distill", "ema", self.ema, inclusive=(True, False), fix="0.95 (EMA) or 0 (stop-gradient)."
        )
        digest = hashlib.sha256()
        for k, v in sorted(self.teacher.state_dict().items()):
            digest.update(k.encode())
            digest.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        self._fingerprint = digest.hexdigest()

    @property
    def provenance(self) -> dict:
        """What run.json records of the targets (extra["targets"])."""
        t = self.teacher
        return {
            "targets": "consistency",
            "teacher": self._fingerprint,
            "teacher_step": int(getattr(t, "step", 0) or 0),
            "teacher_config": t.cfg.to_dict(),
            "n_discretisation": self.n_discretisation,
            "ema": float(self.ema),
            "from_scratch": bool(self.from_scratch),
        }

    @property
    def describe(self) -> dict:
        return {"targets": "consistency"}


def stacked_heun_step(denoise, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One Heun step of the PF-ODE dx/dsigma = (x - D(x, sigma)) / sigma from sigma to sigma_next (as
    sampling.heun_step), for x [M, B, ...] and per-point levels sigma, sigma_next [M, B]."""
    s, sn = _per_point(sigma, x), _per_point(sigma_next, x)  # [M, B, 1, ...]
    slope = (x - denoise(x, sigma)) / s
    x_euler = x + (sn - s) * slope
    slope_next = (x_euler - denoise(x_euler, sigma_next)) / sn
    return x + (sn - s) * (slope + slope_next) / 2


class ConsistencyObjective(_PointObjective):
    """Consistency distillation: |f(x_hi, s_i) - f_target(Heun_teacher(x_hi, s_i -> s_i+1), s_i+1)|^2."""

    def __init__(self, jobs, device, dtype):
        super().__init__(jobs, device, dtype)
        teachers = [j.targets.teacher for j in jobs]
        self.teacher_stack = FunctionalStack(teachers[0].cfg, device, dtype)
        self.teacher_params = self.teacher_stack.views(
            self.teacher_stack.stack([t.state_dict() for t in teachers]).detach().requires_grad_(False)
        )
        n_disc = jobs[0].targets.n_discretisation
        self.sigmas = karras_sigmas(n_disc, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, device=device).to(dtype)  # [N]
        self.ema = torch.tensor([[j.targets.ema] for j in jobs], dtype=torch.float64).to(device, dtype)  # [M, 1]
        self.target: torch.Tensor | None = None  # [M, P]: the EMA target's flat weights

    @classmethod
    def check_job(cls, job) -> None:
        _check_points(job, ConsistencyConfig)
        teacher = job.targets.teacher
        if teacher.data_shape != job.model_config.data_shape:
            raise ShapeError(
                f"data points have shape {job.model_config.data_shape}, but the teacher was trained on "
                f"{teacher.data_shape}. Distil on the teacher's own training data."
            )
        if teacher.config != job.model_config.net:
            raise SpecError(
                "train", "model_config.net", job.model_config.net, f"the teacher's network config {teacher.config}"
            )

    @classmethod
    def group_key(cls, job) -> tuple:
        return super().group_key(job) + (repr(job.targets.teacher.cfg), job.targets.n_discretisation)

    def initial_state(self, job):
        if job.targets.from_scratch:
            return build_model(job.model_config, seed=job.cfg.seed).state_dict()
        return {k: v.detach().clone() for k, v in job.targets.teacher.state_dict().items()}

    def begin(self, flat, saved) -> None:
        rows = [flat[i] if s is None or "target" not in s else s["target"] for i, s in enumerate(saved)]
        self.target = torch.stack([r.to(flat.device, flat.dtype) for r in rows]).clone()

    def after_update(self, flat) -> None:
        self.target.lerp_(flat, 1.0 - self.ema)  # target <- ema target + (1 - ema) student, per model

    def extra_state(self, i: int) -> dict:
        return {"target": self.target[i]}

    def _loss(self, flat, gens, x0):
        params = self.stack.views(flat)
        draws = []
        for x, g in zip(x0, gens):
            i = torch.randint(0, self.sigmas.numel() - 1, (x.shape[0],), generator=g, device=x.device)  # [B]
            draws.append((i, torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)))
        idx = torch.stack([i for i, _ in draws])  # [M, B] level indices
        z = torch.stack([z for _, z in draws])  # [M, B, ...]
        sigma_hi, sigma_lo = self.sigmas[idx], self.sigmas[idx + 1]  # [M, B] each, sigma_hi > sigma_lo
        x_hi = x0 + _per_point(sigma_hi, z) * z
        with torch.no_grad():
            x_lo = stacked_heun_step(
                lambda x, s: self.teacher_stack.forward(self.teacher_params, x, s), x_hi, sigma_hi, sigma_lo
            )
            goal = self.stack.forward(self.stack.views(self.target), x_lo, sigma_lo)
        out = self.stack.forward(params, x_hi, sigma_hi)
        return ((out - goal) ** 2).flatten(2).mean(-1).mean(-1)  # [M]

    def losses(self, flat, step: int) -> torch.Tensor:
        return self._loss(flat, *self._batches(_STREAM_TRAIN, step))

    @torch.no_grad()
    def evaluate(self, flat) -> torch.Tensor:
        return self._loss(flat, *self._batches(_STREAM_EVAL, 0))[:, None]

    def select(self, keep: torch.Tensor) -> None:
        super().select(keep)
        self.target = self.target.index_select(0, keep)
        self.ema = self.ema.index_select(0, keep)
        self.teacher_params = {k: v.index_select(0, keep) for k, v in self.teacher_params.items()}

    def run_extra(self, job) -> dict:
        return run_extra(job.targets)


ConsistencyTargets.objective = ConsistencyObjective
