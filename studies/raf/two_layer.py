"""Two-layer networks with a trainable first layer on RAF data, trained as one batched computation.

h(x) = a . sigma(W x / sqrt(d)) / sqrt(p), W [p, d] and a [p] both trained (the paper's open case).
M networks (seeds, sample ratios) share one flat weight tensor [M, P] and one `BatchedOptimizer`
step (interp.train.optim, the training engine's vectorised optimizer) with the learning rate of
`TrainConfig.lr_at`. The engine's `GroupTrainer` trains on modular-arithmetic `Task`s (token pairs),
not on Gaussian vectors, so this module runs its own short full-batch loop around those two pieces.
A sweep batches every network of one shape (seeds, and jobs of equal size); with pad=True data
sets of different sizes are padded to the largest and masked out of the loss.

Objective of each network (the convex learners' one, divided by n): (1/n) [sum_mu loss(y_mu, h(x_mu))
+ lam/2 (|W|^2 + |a|^2)], square loss 1/2 (y - h)^2 or hinge max(0, 1 - y h). Init: W i.i.d. N(0, 1)
(seeded per data seed), a = 0, so every network starts at h = 0 like the convex learners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.train.optim import BatchedOptimizer
from interp.train_config import TrainConfig, torch_dtype
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


def train_padded(x, y, mask, init_seeds, p: int, *, lam: float, loss: str, activation: str, config: TrainConfig):
    """Train M networks of width p on padded data x [M, n, d], y, mask [M, n]; returns (W, a, history)."""
    M, _, d = x.shape
    dtype = torch_dtype(config.dtype)
    W0 = torch.stack([torch.randn(p, d, generator=torch.Generator().manual_seed(s)) for s in init_seeds])
    flat = torch.cat([W0.reshape(M, p * d), torch.zeros(M, p)], dim=1).to(x.device, dtype)  # [M, P]
    x, y, mask = x.to(dtype), y.to(dtype), mask.to(dtype)
    opt = BatchedOptimizer(
        config.optimizer, flat, [("W", (p, d)), ("a", (p,))],
        weight_decay=[config.weight_decay] * M, betas=[list(config.betas)] * M, momentum=[config.momentum] * M,
    )  # fmt: skip
    sigma, history = activation_fn(activation), []
    lr_table = torch.tensor([config.lr_at(t) for t in range(config.steps)], dtype=torch.float64, device=flat.device)
    flat.requires_grad_(True)
    for step in range(config.steps):
        objective = _objective(flat, x, y, mask, p, sigma, lam, loss)  # [M]
        (grad,) = torch.autograd.grad(objective.sum(), flat)  # networks are independent: one backward for all
        if step % config.eval_every == 0 or step == config.steps - 1:
            history.append({"step": step, "objective": objective.detach().double().cpu().tolist()})
        opt.step(flat, grad, lr_table[step].expand(M))
    flat = flat.detach()
    return flat[:, : p * d].view(M, p, d), flat[:, p * d :], history


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
