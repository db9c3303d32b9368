"""`simulate`: fit a RAF learner on S seeds of a data set and measure E_gen, E_mem and E_rule_train.

E_gen = P[sign h(x) != teacher label] on the fresh test set; E_mem = training error on the facts;
E_rule_train = training error on the rule samples (docs/papers.md, A.3). A prediction of exactly 0 counts as an
error, and so does a NaN (a diverged network is never "right"). Means over seeds with their standard
errors (std / sqrt(S), None for one seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.errors import SpecError
from interp.results import Result
from studies.raf.activations import activation as check_activation
from studies.raf.data import RAFData, make_data
from studies.raf.kernels import make_kernel
from studies.raf.learners import Fit, RandomFeatures, fit_features, fit_kernel, linear_features
from studies.raf.spec import (
    SIMULATED,
    RAFSpec,
    check_kappa,
    check_kernel,
    check_lam,
    check_learner,
    check_loss,
    check_rbf_eta,
)
from studies.raf.two_layer import train_two_layer


@dataclass(frozen=True)
class SimulationResult(Result):
    """Errors of one learner on S seeds of one RAF data set: means, standard errors, per seed."""

    learner: str
    loss: str
    alpha: float
    epsilon: float
    d: int
    n: int
    n_facts: int
    n_test: int
    lam: float
    kappa: float | None
    activation: str | None
    kernel: str | None
    seeds: list[int]
    e_gen: float
    e_mem: float | None  # None when there are no facts (epsilon n < 1/2)
    e_rule_train: float | None  # None when every sample is a fact
    e_gen_se: float | None  # standard errors over seeds (None for one seed)
    e_mem_se: float | None
    e_rule_train_se: float | None
    per_seed: dict = field(default_factory=dict)  # {"e_gen": [...], "e_mem": [...], "e_rule_train": [...]}
    device: str = "cpu"


def errors(h_train: Tensor, h_test: Tensor, data: RAFData) -> dict[str, list[float | None]]:
    """Per-seed E_gen, E_mem, E_rule_train of predictions h_train [S, n], h_test [S, n_test]."""
    wrong_test = (~(h_test * data.y_test > 0)).double()  # [S, n_test]; NaN (a diverged net) counts as wrong
    wrong_train = (~(h_train * data.y_train > 0)).double()  # [S, n]
    fact, rule = data.is_fact, ~data.is_fact

    def rate(mask):
        if not bool(mask.any()):
            return [None] * wrong_train.shape[0]
        return wrong_train[:, mask].mean(-1).tolist()

    return {"e_gen": wrong_test.mean(-1).tolist(), "e_mem": rate(fact), "e_rule_train": rate(rule)}


def mean_and_se(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and standard error (std with ddof 1 / sqrt(S)) of per-seed values; None where undefined."""
    if not values or values[0] is None:
        return None, None
    t = torch.tensor(values, dtype=torch.float64)
    se = float(t.std() / math.sqrt(len(values))) if len(values) > 1 else None
    return float(t.mean()), se


BATCHED_ELEMENTS = 2**28  # seeds are solved together while their n x max(n, p) matrices fit in 2 GiB (float64)


def fit(data: RAFData, learner: str, *, lam: float, loss: str, kappa, activation: str, kernel: str, rbf_eta: float):
    """Fit `learner` on every seed of `data` (closed form / SVC): all seeds in one batch while their
    matrices fit in BATCHED_ELEMENTS, else one seed after the other (n = 32k kernels on a GPU)."""
    n, S = data.spec.n, len(data.seeds)
    p = max(1, int(round(kappa * data.spec.d))) if learner == "random_features" else data.spec.d
    if S > 1 and S * n * max(n if learner != "linear" else 0, p) > BATCHED_ELEMENTS:
        fits = [fit(data.select(s), learner, lam=lam, loss=loss, kappa=kappa, activation=activation,
                    kernel=kernel, rbf_eta=rbf_eta) for s in range(S)]  # fmt: skip
        return Fit(*[None if getattr(fits[0], f) is None else torch.cat([getattr(x, f) for x in fits])
                     for f in ("h_train", "h_test", "dual", "weights", "bias")])  # fmt: skip
    if learner == "linear":
        return fit_features(data, linear_features, lam, loss)
    if learner == "kernel":
        return fit_kernel(data, make_kernel(kernel, activation, rbf_eta), lam, loss)
    return fit_features(data, RandomFeatures(data, p, activation), lam, loss)


def simulate(
    spec: RAFSpec,
    learner: str,
    *,
    lam: float,
    loss: str = "square",
    kappa: float | None = None,
    activation: str = "relu",
    seeds: int = 1,
    device=None,
    kernel: str | None = None,
    rbf_eta: float = 1.0,
    train_config=None,
) -> SimulationResult:
    """Fit `learner` on `seeds` data sets of `spec` and measure E_gen, E_mem and E_rule_train.

    learner: "linear", "kernel", "random_features" (kappa = p / d) or "two_layer" (kappa = width / d,
    trained by the batched engine with `train_config`, see studies.raf.two_layer). kernel (learner
    "kernel" only): "arccos" (ReLU's exact kernel), "gaussian_equivalent" or "rbf" (bandwidth
    `rbf_eta`); None picks "arccos" for ReLU, else "gaussian_equivalent". device: default CPU.
    """
    where = "simulate"
    if not isinstance(spec, RAFSpec):
        raise SpecError(where, "spec", spec, "a RAFSpec", "Use studies.raf.RAFSpec(alpha, epsilon, d, n_test, seed).")
    learner = check_learner(learner, SIMULATED, where)
    loss = check_loss(loss, where)
    check_activation(activation, f"{where}.activation")
    lam = check_lam(lam, where, loss, learner)
    kappa = check_kappa(kappa, where, learner)
    kernel = check_kernel(kernel, activation, where, learner)
    rbf_eta = check_rbf_eta(rbf_eta, where)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise SpecError(where, "seeds", seeds, "a positive int (number of data sets)", "Use e.g. seeds=3.")
    if train_config is not None and learner != "two_layer":
        raise SpecError(
            where, "train_config", train_config, f"None for learner={learner!r}", "Only 'two_layer' trains."
        )
    data = make_data(spec, seeds, device)
    if learner == "two_layer":
        net = train_two_layer(data, kappa, lam=lam, loss=loss, activation=activation, config=train_config)
        result: Fit = net.fit()
    else:
        result = fit(
            data, learner, lam=lam, loss=loss, kappa=kappa, activation=activation, kernel=kernel, rbf_eta=rbf_eta
        )
    per_seed = errors(result.h_train, result.h_test, data)
    stats = {k: mean_and_se(v) for k, v in per_seed.items()}
    return SimulationResult(
        learner=learner, loss=loss, alpha=spec.alpha, epsilon=spec.epsilon, d=spec.d, n=spec.n,
        n_facts=spec.n_facts, n_test=spec.n_test, lam=lam, kappa=kappa,
        activation=activation if learner != "linear" else None, kernel=kernel, seeds=list(data.seeds),
        e_gen=stats["e_gen"][0], e_mem=stats["e_mem"][0], e_rule_train=stats["e_rule_train"][0],
        e_gen_se=stats["e_gen"][1], e_mem_se=stats["e_mem"][1], e_rule_train_se=stats["e_rule_train"][1],
        per_seed=per_seed, device=str(data.device),
    )  # fmt: skip
