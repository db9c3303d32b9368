"""Bonnaire, Urfin, Biroli, Mezard 2025: the random-feature score model (docs/papers.md, B.4).

Data x ~ N(0, I_d); at a fixed diffusion time t, x_t = e^-t x + sqrt(Delta) xi with Delta = 1 - e^-2t.
The score model s_A(x) = A tanh(W x / sqrt(d)), W [p, d] Gaussian and frozen, A [d, p] trained from 0
by full-batch gradient descent on (d n)^-1 sum_mu |sqrt(Delta) s_A(x_t^mu) + xi_mu|^2 with a fresh xi
each step, lr = 1e-2 d / Delta; training time tau = step * lr.

Gradient descent on this quadratic loss relaxes along the eigenvectors of the feature covariance
U = E[phi(x_t) phi(x_t)^T] over the training points and the noise. With n < p its spectrum has two
bulks: n large eigenvalues spanned by the training points' features (learnt on tau_gen, which does not
depend on n) and p - n small ones, of order Delta, made of the features' response to the noise around
each training point: fitting them is fitting the empirical score (memorising), on tau_mem, which grows
with n. The distillation test of B.4 lives in `studies.diffusion.rf_distillation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from interp.device import resolve_device
from interp.errors import SpecError, TrainingDiverged
from interp.models.functional import FlatLayout
from interp.results import Result
from interp.train.engine import GroupTrainer, Hooks, Job
from interp.train.objective import Objective
from interp.train_config import TrainConfig
from probes.samples import as_points
from studies.diffusion.checks import check_count, check_real, check_seed


def rf_weights(d: int, p: int, *, seed: int = 0, device=None) -> torch.Tensor:
    """The frozen Gaussian projection W [p, d]."""
    check_count("rf_weights", "d", d), check_count("rf_weights", "p", p)
    g = torch.Generator().manual_seed(check_seed("rf_weights", seed))
    return torch.randn(p, d, generator=g).to(resolve_device(device) if device is not None else "cpu")


def rf_features(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """phi(x) = tanh(W x / sqrt(d)): [B, d] -> [B, p]."""
    return torch.tanh(x @ W.T / math.sqrt(W.shape[1]))


def rf_score(A: torch.Tensor, W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """s_A(x) = A phi(x): [B, d] -> [B, d]."""
    return rf_features(x, W) @ A.T


def noise_variance(t: float) -> float:
    """Delta_t = 1 - e^-2t."""
    return 1.0 - math.exp(-2.0 * t)


def diffuse(x: torch.Tensor, t: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, xi): x_t = e^-t x + sqrt(Delta_t) xi with xi ~ N(0, I), both shaped like x."""
    xi = torch.randn(x.shape, generator=generator, device=x.device)
    return math.exp(-t) * x + math.sqrt(noise_variance(t)) * xi, xi


def rf_loss(
    A: torch.Tensor, W: torch.Tensor, x: torch.Tensor, t: float, generator: torch.Generator, draws: int = 8
) -> float:
    """The denoising loss (d n)^-1 sum |sqrt(Delta) s_A(x_t) + xi|^2 averaged over `draws` noise draws per point."""
    xt, xi = diffuse(x.expand(draws, *x.shape), t, generator)  # [draws, n, d]
    residual = math.sqrt(noise_variance(t)) * rf_score(A, W, xt) + xi
    return float((residual**2).mean())  # mean over draws, points and coordinates = (d n)^-1 sum


def score_error(A: torch.Tensor, W: torch.Tensor, x_test: torch.Tensor, t: float, generator: torch.Generator) -> float:
    """E |s_A(x_t) + x_t|^2 / d on fresh data: the distance to the true score (x_t ~ N(0, I) when x ~ N(0, I))."""
    xt, _ = diffuse(x_test, t, generator)
    return float(((rf_score(A, W, xt) + xt) ** 2).mean())


@dataclass(frozen=True)
class RFTraining(Result):
    """Training curves of a random-feature score model and its two timescales."""

    n: int
    d: int
    p: int
    t: float
    lr: float
    steps: list[int]
    tau: list[float]  # step * lr
    train_loss: list[float]
    test_loss: list[float]  # same loss on fresh data
    score_error: list[float]  # E |s_A(x) + x|^2 / d on fresh data
    tau_gen: float  # first tau where the score error is within 10% of its best (of the drop from the start)
    tau_mem: float  # first tau where test - train loss exceeds `gap`; inf if never
    gap: float
    A: torch.Tensor = field(repr=False)  # [d, p] at the end


@dataclass(frozen=True)
class RFShape:
    """The random-feature score model's shape: data dimension d, p features (W frozen, A [d, p] trained)."""

    d: int
    p: int

    def to_dict(self) -> dict:
        return {"d": self.d, "p": self.p}


@dataclass(frozen=True)
class RFProblem:
    """What one random-feature score model is trained on: points x [n, d], the frozen features W [p, d],
    the diffusion time t, and when its curves are measured (`n_checks` log-spaced steps, `n_test` fresh points)."""

    x: torch.Tensor
    W: torch.Tensor
    t: float
    n_checks: int
    n_test: int

    def checks(self, steps: int) -> set[int]:
        """The log-spaced steps 1..steps at which the curves are measured."""
        return {int(round(v)) for v in torch.logspace(0, math.log10(max(steps, 1)), self.n_checks).tolist()}


class RFScoreObjective(Objective):
    """Bonnaire et al.'s denoising loss (d n)^-1 sum_mu |sqrt(Delta) s_A(x_t^mu) + xi_mu|^2, fresh xi every
    step, as an objective of the training engine (with SGD without momentum it is their full-batch GD).

    Each model draws from one generator seeded by its seed, in the order the study's recipe fixes: the
    fresh test points first, then each step's noise, and the curves' noise at each check (so the
    draws interleave as in a plain loop). The evaluations at the checks are the curves: train_loss,
    test_loss (fresh data) and score_error."""

    metric_names = ("train_loss", "test_loss", "score_error")
    loss_metric = "train_loss"

    def __init__(self, jobs, device, dtype):
        super().__init__(jobs, device, dtype)
        shape = jobs[0].model_config
        self.layout = FlatLayout([("A", (shape.d, shape.p))])
        self.problems = [j.task for j in jobs]
        self.gens = [torch.Generator(device=device).manual_seed(j.cfg.seed) for j in jobs]
        self.x_test = [torch.randn(j.task.n_test, shape.d, generator=g, device=device) for j, g in zip(jobs, self.gens)]
        self.delta = noise_variance(jobs[0].task.t)

    @classmethod
    def eval_steps(cls, job) -> set[int]:
        return job.task.checks(job.cfg.steps)

    def initial_state(self, job) -> dict:
        return {"A": torch.zeros(job.model_config.d, job.model_config.p)}

    def loss_and_grad(self, flat, step: int):
        """The loss and its closed-form gradient (2 sqrt(Delta) / (d n)) R^T phi, R the residual [n, d]."""
        A = self.layout.views(flat.detach())["A"]  # [M, d, p]
        losses, grads = [], []
        for m, (prob, gen) in enumerate(zip(self.problems, self.gens)):
            xt, xi = diffuse(prob.x, prob.t, gen)
            phi = rf_features(xt, prob.W)  # [n, p]
            residual = math.sqrt(self.delta) * phi @ A[m].T + xi  # [n, d]
            n, d = residual.shape
            losses.append((residual**2).mean())
            grads.append(((2 * math.sqrt(self.delta) / (d * n)) * residual.T @ phi).reshape(-1))
        return torch.stack(losses), torch.stack(grads)  # [M], [M, d p]

    @torch.no_grad()
    def evaluate(self, flat):
        A = self.layout.views(flat)["A"]
        rows = []
        for m, (prob, gen, x_test) in enumerate(zip(self.problems, self.gens, self.x_test)):
            rows.append([
                rf_loss(A[m], prob.W, prob.x, prob.t, gen),
                rf_loss(A[m], prob.W, x_test[:500], prob.t, gen, draws=2),
                score_error(A[m], prob.W, x_test, prob.t, gen),
            ])  # fmt: skip
        return torch.tensor(rows, dtype=torch.float64, device=flat.device)

    def select(self, keep) -> None:
        idx = keep.tolist()
        self.problems, self.gens, self.x_test = ([v[i] for i in idx] for v in (self.problems, self.gens, self.x_test))


def train_rf_score(
    train_x,
    W: torch.Tensor,
    *,
    steps: int,
    t: float = 0.01,
    lr_scale: float = 1e-2,
    seed: int = 0,
    n_checks: int = 30,
    n_test: int = 1000,
    gap: float = 0.1,
    device=None,
) -> RFTraining:
    """Full-batch GD of the random-feature score model on `train_x` [n, d] (Bonnaire et al.'s recipe), with
    curves; trained by the engine (`RFScoreObjective`, SGD without momentum, lr = lr_scale d / Delta)."""
    for name, v in (("steps", steps), ("n_checks", n_checks), ("n_test", n_test)):
        check_count("train_rf_score", name, v)
    (
        check_real("train_rf_score", "t", t, positive=True),
        check_real("train_rf_score", "lr_scale", lr_scale, positive=True),
    )
    check_real("train_rf_score", "gap", gap, minimum=0.0), check_seed("train_rf_score", seed)
    dev = resolve_device(device) if device is not None else W.device
    x = as_points(train_x, "train_x", device=dev, min_rows=1)
    W = W.to(dev)
    n, d, p = x.shape[0], x.shape[1], W.shape[0]
    if W.shape[1] != d:
        raise SpecError("train_rf_score", "W", tuple(W.shape), f"[p, {d}] to match the data's d = {d}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpecError("train_rf_score", "steps", steps, "a positive int")
    if not (isinstance(t, (int, float)) and 0 < t < math.inf):
        raise SpecError("train_rf_score", "t", t, "a positive diffusion time", "Bonnaire et al. use t = 0.01.")
    if not (isinstance(lr_scale, (int, float)) and 0 < lr_scale < math.inf):
        raise SpecError("train_rf_score", "lr_scale", lr_scale, "a positive number", "The recipe's is 1e-2.")
    lr = lr_scale * d / noise_variance(t)
    cfg = TrainConfig(
        steps=steps, lr=lr, weight_decay=0.0, optimizer="sgd", momentum=0.0, warmup_steps=0, seed=seed, device=str(dev)
    )
    job = Job(0, RFShape(d, p), RFProblem(x, W, float(t), n_checks, n_test), cfg, objective=RFScoreObjective)
    outcome = GroupTrainer([job], dev, Hooks()).run()[0]
    if outcome.status != "complete":
        raise TrainingDiverged("random-feature score model: " + outcome.message)
    curve = {k: [h[k] for h in outcome.history] for k in ("train_loss", "test_loss", "score_error")}
    steps_done = [h["step"] for h in outcome.history]
    tau = [s * lr for s in steps_done]
    return RFTraining(
        n=n, d=d, p=p, t=t, lr=lr, tau=tau, gap=gap, A=outcome.state_dict["A"], steps=steps_done,
        tau_gen=generalization_tau(tau, curve["score_error"]),
        tau_mem=memorization_tau(tau, curve["train_loss"], curve["test_loss"], gap),
        **curve,
    )  # fmt: skip


def generalization_tau(tau: list[float], score_err: list[float], within: float = 0.1) -> float:
    """First tau at which the score error has come within `within` of its whole drop (start -> best)."""
    best, start = min(score_err), score_err[0]
    level = best + within * (start - best)
    return next(tt for tt, e in zip(tau, score_err) if e <= level)


def memorization_tau(tau: list[float], train: list[float], test: list[float], gap: float) -> float:
    """First tau at which the test loss exceeds the training loss by `gap` (the model fits the empirical score)."""
    return next((tt for tt, a, b in zip(tau, train, test) if b - a >= gap), float("inf"))


@dataclass(frozen=True)
class FeatureSpectrum(Result):
    """Eigenvalues of the feature covariance U at time t, split into the large (data) and small (noise) bulks."""

    eigenvalues: list[float]  # descending, [p]
    split: int  # eigenvalues[:split] is the large bulk, the rest the small bulk (split = min(n, p))
    large_bulk: tuple[float, float]  # (smallest, largest) eigenvalue of the large bulk
    small_bulk: tuple[float, float] | None  # None when n >= p: no small bulk, no memorisation possible
    gap_ratio: float  # smallest large-bulk eigenvalue / largest small-bulk eigenvalue
    eigenvectors: torch.Tensor = field(repr=False)  # [p, p], columns in the order of eigenvalues


def feature_spectrum(
    train_x, W: torch.Tensor, *, t: float = 0.01, n_noise: int = 200, seed: int = 0, device=None
) -> FeatureSpectrum:
    """The spectrum of U = mean over training points and `n_noise` noise draws of phi(x_t) phi(x_t)^T (float64)."""
    check_real("feature_spectrum", "t", t, positive=True), check_count("feature_spectrum", "n_noise", n_noise)
    check_seed("feature_spectrum", seed)
    dev = resolve_device(device) if device is not None else W.device
    x = as_points(train_x, "train_x", device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    cov = torch.zeros(W.shape[0], W.shape[0], dtype=torch.float64, device=dev)
    for _ in range(n_noise):  # one [n, p] block per draw keeps memory at n p
        phi = rf_features(diffuse(x, t, gen)[0], W.to(dev)).double()
        cov += phi.T @ phi
    vals, vecs = torch.linalg.eigh(cov / (n_noise * x.shape[0]))
    vals, vecs = vals.flip(0), vecs.flip(1)  # descending
    split = min(x.shape[0], W.shape[0])
    small = (float(vals[-1]), float(vals[split])) if split < W.shape[0] else None
    return FeatureSpectrum(
        eigenvalues=vals.tolist(),
        split=split,
        large_bulk=(float(vals[split - 1]), float(vals[0])),
        small_bulk=small,
        gap_ratio=float(vals[split - 1] / vals[split]) if small else float("inf"),
        eigenvectors=vecs.float(),
    )


@dataclass(frozen=True)
class RFTimescales(Result):
    """tau_gen and tau_mem across training-set sizes n (Bonnaire et al.: tau_mem grows with n, tau_gen does not)."""

    n: list[int]
    tau_gen: list[float]
    tau_mem: list[float]
    runs: list[RFTraining]


def rf_timescales(
    ns, *, d: int = 50, p: int = 200, steps: int = 4000, t: float = 0.01, seed: int = 0, gap: float = 0.1, device=None
) -> RFTimescales:
    """Train the random-feature score model for each n in `ns` (same W, data seeded by n) and collect the timescales."""
    if isinstance(ns, (str, bytes)) or not hasattr(ns, "__iter__") or not list(ns):
        raise SpecError("rf_timescales", "ns", ns, "a non-empty list of training-set sizes")
    for n in ns:
        check_count("rf_timescales", "ns", n, fix="Each is a number of training points.")
    W = rf_weights(d, p, seed=seed, device=device)
    runs = []
    for n in ns:
        x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed * 100_003 + n))
        runs.append(train_rf_score(x, W, steps=steps, t=t, seed=seed + 1, gap=gap, device=device))
    return RFTimescales(n=list(ns), tau_gen=[r.tau_gen for r in runs], tau_mem=[r.tau_mem for r in runs], runs=runs)
