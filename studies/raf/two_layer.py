"""Two-layer networks with a trainable first layer on RAF data, trained as one batched computation.

h(x) = a . sigma(W x / sqrt(d)) / sqrt(p), W [p, d] and a [p] both trained (the paper's open case).
M networks (seeds, sample ratios) train as one group of grokscope's one training engine
(interp.train.engine.GroupTrainer, with `TwoLayerObjective` below): one flat weight tensor [M, P],
one vectorised optimizer step (interp.train.optim) with the learning rate of `TrainConfig.lr_at`,
full batch, a network whose objective stops being finite stopped with a clear error. A sweep batches
every network of one shape (seeds, and jobs of equal size); with pad=True data sets of different
sizes are padded to the largest and masked out of the loss.

Objective of each network (the convex learners' one, divided by n): (1/n) [sum_mu loss(y_mu, h(x_mu))
+ lam/2 (|W|^2 + |a|^2)], square loss 1/2 (y - h)^2 or hinge max(0, 1 - y h). Init: W i.i.d. N(0, 1)
(seeded per data seed), a = 0, so every network starts at h = 0 like the convex learners.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.errors import TrainingDiverged
from interp.models.functional import FlatLayout
from interp.train.engine import GroupTrainer, Hooks, Job
from interp.train.objective import Objective
from interp.train_config import TrainConfig
from studies.raf.activations import activation as activation_fn
from studies.raf.data import RAFData, make_data
from studies.raf.learners import Fit

INIT_SEED_OFFSET = 2_000_003  # the first layer of data seed s is drawn from seed s + this


def default_config() -> TrainConfig:
    """Full-batch Adam, lr 1e-3, 2000 steps, no weight decay beyond lam (docs/papers.md, A.5: the exploratory setting, shorter)."""
    return TrainConfig(steps=2000, lr=1e-3, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0)


@dataclass(frozen=True)
class TwoLayerNets:
    """M trained networks h(x) = a . sigma(W x / sqrt(d)) / sqrt(p) and the data each was trained on."""

    W: Tensor  # [M, p, d] first layer (rows are neurons)
    a: Tensor  # [M, p] second layer
    activation: str
    data: RAFData  # stacked over the same M (model m trained on data set m)
    lam: float
    loss: str
    history: list[dict] = field(default_factory=list)  # {"step", "loss": [M], ...} at evaluation steps

    def predict(self, x: Tensor, W: Tensor | None = None, a: Tensor | None = None, chunk: int = 4096) -> Tensor:
        """h(x) for x [M, N, d] -> [M, N] (float64); W [M, p, d] and a [M, p] replace the trained weights
        (filtered networks); a [M, p, K] gives K networks per model at once -> [M, N, K] (ablations)."""
        W = self.W if W is None else W
        a = self.a if a is None else a
        A = a[..., None] if a.dim() == 2 else a  # [M, p, K]
        sigma, p, d = activation_fn(self.activation), W.shape[-2], W.shape[-1]
        x = x.to(W.dtype)
        parts = [sigma(part @ W.mT / math.sqrt(d)) @ A for part in x.split(chunk, dim=-2)]  # [M, c, K] each
        h = torch.cat(parts, dim=-2).double() / math.sqrt(p)  # [M, N, K]
        return h[..., 0] if a.dim() == 2 else h

    def fit(self, W: Tensor | None = None, a: Tensor | None = None) -> Fit:
        """Predictions on the training and test inputs (of the trained or of a filtered network)."""
        return Fit(self.predict(self.data.x_train, W, a), self.predict(self.data.x_test, W, a))


def _objective(flat: Tensor, x: Tensor, y: Tensor, mask: Tensor, p: int, sigma, lam: float, loss: str) -> Tensor:
    """Per-network objective [M] of flat weights [M, P] on padded data x [M, n, d], y and mask [M, n]."""
    M, _, d = x.shape
    W, a = flat[:, : p * d].view(M, p, d), flat[:, p * d :]  # [M, p, d], [M, p]
    h = (sigma(x @ W.mT / math.sqrt(d)) @ a[..., None])[..., 0] / math.sqrt(p)  # [M, n]
    per_sample = 0.5 * (y - h) ** 2 if loss == "square" else torch.relu(1 - y * h)
    n = mask.sum(-1)  # [M]
    return ((per_sample * mask).sum(-1) + 0.5 * lam * flat.pow(2).sum(-1)) / n


@dataclass(frozen=True)
class TwoLayerShape:
    """The shape of the networks of one group: input dimension, width, activation, objective."""

    d: int
    p: int
    activation: str
    lam: float
    loss: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Rows:
    """One network's (padded) training data: x [n, d], y [n], mask [n]."""

    x: Tensor
    y: Tensor
    mask: Tensor


class TwoLayerObjective(Objective):
    """The engine's objective for a group of two-layer networks on RAF data: `_objective` per network
    ("objective" at evaluations); fresh weights W ~ N(0, 1) seeded by the job's seed, a = 0."""

    metric_names = ("objective",)
    loss_metric = "objective"

    def __init__(self, jobs, device, dtype):
        super().__init__(jobs, device, dtype)
        shape = jobs[0].model_config
        self.p, self.lam, self.loss = shape.p, shape.lam, shape.loss
        self.sigma = activation_fn(shape.activation)
        self.layout = FlatLayout([("W", (shape.p, shape.d)), ("a", (shape.p,))])
        self.x, self.y, self.mask = (
            torch.stack([getattr(j.task, k) for j in jobs]).to(device, dtype) for k in "x y mask".split()
        )

    def initial_state(self, job) -> dict:
        shape = job.model_config
        W = torch.randn(shape.p, shape.d, generator=torch.Generator().manual_seed(job.cfg.seed))
        return {"W": W, "a": torch.zeros(shape.p)}

    def losses(self, flat: Tensor, step: int) -> Tensor:
        return _objective(flat, self.x, self.y, self.mask, self.p, self.sigma, self.lam, self.loss)  # [M]

    def evaluate(self, flat: Tensor) -> Tensor:
        return self.losses(flat, -1)[:, None]

    def select(self, keep: Tensor) -> None:
        self.x, self.y, self.mask = (t.index_select(0, keep) for t in (self.x, self.y, self.mask))


def train_padded(x, y, mask, init_seeds, p: int, *, lam: float, loss: str, activation: str, config: TrainConfig):
    """Train M networks of width p on padded data x [M, n, d], y, mask [M, n] as one group of the
    training engine; returns (W [M, p, d], a [M, p], history)."""
    M, _, d = x.shape
    shape = TwoLayerShape(d, p, activation, float(lam), loss)
    jobs = [
        Job(m, shape, _Rows(x[m], y[m], mask[m]), dataclasses.replace(config, seed=int(s)), objective=TwoLayerObjective)
        for m, s in enumerate(init_seeds)
    ]
    outcomes = GroupTrainer(jobs, x.device, Hooks()).run()
    bad = [m for m in range(M) if outcomes[m].status != "complete"]
    if bad:
        raise TrainingDiverged(f"two-layer network {bad[0]} (of {M}): " + outcomes[bad[0]].message)
    W = torch.stack([outcomes[m].state_dict["W"] for m in range(M)])
    a = torch.stack([outcomes[m].state_dict["a"] for m in range(M)])
    steps = [h["step"] for h in outcomes[0].history]
    history = [
        {"step": s, "objective": [outcomes[m].history[k]["objective"] for m in range(M)]} for k, s in enumerate(steps)
    ]
    return W, a, history


def train_two_layer(
    data: RAFData, kappa: float, *, lam: float, loss: str = "square", activation: str = "relu", config=None
) -> TwoLayerNets:
    """Train one two-layer network of width p = round(kappa d) per seed of `data`, all in one batch."""
    config = default_config() if config is None else config
    p = max(1, int(round(kappa * data.spec.d)))
    mask = torch.ones_like(data.y_train)
    seeds = [s + INIT_SEED_OFFSET for s in data.seeds]
    W, a, history = train_padded(
        data.x_train, data.y_train, mask, seeds, p, lam=lam, loss=loss, activation=activation, config=config
    )
    return TwoLayerNets(W, a, activation, data, lam, loss, history)


def train_two_layer_sweep(
    jobs: list[tuple], *, seeds: int = 1, lam: float, loss: str = "square", activation: str = "relu", config=None,
    device=None, pad: bool = False,
) -> list[TwoLayerNets]:  # fmt: skip
    """Train `seeds` networks for each (RAFSpec, kappa) of `jobs`, one batched run per shape.

    Jobs with the same input dimension, width and sample count share one flat weight tensor (seeds
    always do). pad=True also puts jobs that differ only in sample count into one run, padding the
    smaller data sets and masking them out of the loss: fewer, larger kernels (a GPU's preference),
    at the price of computing on the padding (on a CPU, where arithmetic dominates, keep pad=False)."""
    config = default_config() if config is None else config
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, (spec, kappa) in enumerate(jobs):
        key = (spec.d, max(1, int(round(kappa * spec.d)))) + (() if pad else (spec.n,))
        groups.setdefault(key, []).append(j)
    out: list[TwoLayerNets | None] = [None] * len(jobs)
    for (d, p, *_), members in groups.items():
        datas = [make_data(jobs[j][0], seeds, device) for j in members]
        n_max = max(dt.spec.n for dt in datas)
        M = len(datas) * seeds
        x = torch.zeros(M, n_max, d, dtype=torch.float64, device=datas[0].device)  # [M, n_max, d] padded
        y, mask = torch.zeros(M, n_max, dtype=torch.float64, device=x.device), torch.zeros(M, n_max, device=x.device)
        for g, dt in enumerate(datas):
            rows = slice(g * seeds, (g + 1) * seeds)
            x[rows, : dt.spec.n], y[rows, : dt.spec.n], mask[rows, : dt.spec.n] = dt.x_train, dt.y_train, 1.0
        init = [s + INIT_SEED_OFFSET for dt in datas for s in dt.seeds]
        W, a, history = train_padded(x, y, mask, init, p, lam=lam, loss=loss, activation=activation, config=config)
        for g, (j, dt) in enumerate(zip(members, datas)):
            rows = slice(g * seeds, (g + 1) * seeds)
            hist = [{"step": h["step"], "objective": h["objective"][rows]} for h in history]
            out[j] = TwoLayerNets(W[rows], a[rows], activation, dt, lam, loss, hist)
    return out
