"""Where are the facts? The rule / lookup split of a kernel predictor, and filtration and ablation of
trained two-layer networks.

Kernel (docs/papers.md, A.4, the derived reading). In the proportional regime K = mu0^2 11^T + mu1^2 X X^T / d + mu_star^2 I
+ (a remainder the Gaussian equivalence neglects). A fitted kernel predictor h = K beta (+ b) splits into
  rule part    (mu0^2 11^T + mu1^2 X X^T / d) beta (+ b): a function of x that extends to fresh inputs;
               for kernel ridge it is linear ridge with lam_eff = (lam + mu_star^2) / mu1^2, and that
               ridge predictor (fitted on the same data) is what is reported as the rule part,
  lookup part  mu_star^2 beta: a per-sample table, zero on any fresh input,
  remainder    h - rule - lookup (zero for the Gaussian-equivalent kernel; for an exact kernel, what the
               Gaussian equivalence misses at this d).
For each training sample, y * part is how much of its +-1 label that part carries.

Two-layer network (the analogue of frequency filtration): keep only the component of every neuron's
first-layer weight along the teacher w* (or along the top singular directions of W, the span the
network learned), measure E_gen and E_mem of the filtered network and of the residual; and ablate
(zero the output weight of) the neurons least aligned with the teacher, against random neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interp.results import Result
from studies.raf.data import make_data
from studies.raf.kernels import make_kernel
from studies.raf.learners import fit_kernel, ridge_weights
from studies.raf.simulation import errors
from studies.raf.spec import RAFSpec, check_kernel, check_lam, check_loss
from studies.raf.two_layer import TwoLayerNets

ABLATION_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class KernelFactSplit(Result):
    """How much of each training label the rule part and the lookup part of a kernel predictor carry."""

    kernel: str
    loss: str
    lam: float
    lam_eff: float  # (lam + mu_star^2) / mu1^2: the rule part's ridge penalty (square loss)
    mu1: float
    mu_star: float
    e_gen: float  # full predictor on fresh inputs
    e_mem: float | None  # full predictor on the facts
    e_gen_rule_part: float  # the rule part alone on fresh inputs
    e_mem_rule_part: float | None  # the rule part alone on the facts (~1/2: it cannot know them)
    test_sign_agreement: float  # fraction of fresh inputs where the predictor and its rule part agree
    fact_rule_share: float | None  # mean over facts of y * rule part
    fact_lookup_share: float | None  # mean over facts of y * lookup part
    fact_remainder_share: float | None
    rule_sample_rule_share: float | None  # the same over the rule samples
    rule_sample_lookup_share: float | None
    facts_stored_by_lookup: float | None  # fraction of facts the full predictor fits but its rule part does not
    per_fact: dict  # {"rule": [...], "lookup": [...], "remainder": [...]}: y * part for each fact


def _mean(t: Tensor) -> float | None:
    return float(t.mean()) if t.numel() else None


def rule_part(data, fit, c, lam: float, loss: str) -> tuple[Tensor, Tensor]:
    """The rule part of a fitted kernel predictor on the training and test inputs ([S, n], [S, n_test]).

    Square loss: linear ridge on the features (mu0, mu1 x / sqrt(d)) with penalty lam + mu_star^2, fitted
    on the same data (the issue's definition; exactly (mu0^2 11^T + mu1^2 X X^T / d) beta for the
    Gaussian-equivalent kernel). Hinge loss: (mu0^2 11^T + mu1^2 X X^T / d) beta + b from the SVM's dual."""
    d = data.spec.d

    def features(x):  # [S, N, d] -> [S, N, d + 1]
        return torch.cat([torch.full_like(x[..., :1], c.mu0), c.mu1 * x / d**0.5], dim=-1)

    if loss == "square":
        w = ridge_weights(features(data.x_train), data.y_train, lam + c.mu_star**2)  # [S, d + 1]
        return (features(data.x_train) @ w[..., None])[..., 0], (features(data.x_test) @ w[..., None])[..., 0]
    w = (features(data.x_train).mT @ fit.dual[..., None])[..., 0]  # [S, d + 1]: the dual's weights on the features
    bias = fit.bias[:, None]
    return (features(data.x_train) @ w[..., None])[..., 0] + bias, (features(data.x_test) @ w[..., None])[..., 0] + bias


def kernel_fact_split(
    spec: RAFSpec, *, lam: float, loss: str = "square", kernel: str | None = None, activation: str = "relu",
    rbf_eta: float = 1.0, device=None,
) -> KernelFactSplit:  # fmt: skip
    """Fit a kernel learner on the data set of spec.seed and split its predictor into rule and lookup parts."""
    where = "kernel_fact_split"
    loss = check_loss(loss, where)
    lam = check_lam(lam, where, loss, "kernel")
    k = make_kernel(check_kernel(kernel, activation, where), activation, rbf_eta)
    c = k.coefficients
    data = make_data(spec, 1, device)
    fit = fit_kernel(data, k, lam, loss)
    rule_train, rule_test = rule_part(data, fit, c, lam, loss)  # [1, n], [1, n_test]
    beta = fit.dual
    lookup = c.mu_star**2 * beta  # [1, n]
    remainder = fit.h_train - rule_train - lookup
    y, fact = data.y_train, data.is_fact
    full_err, rule_err = errors(fit.h_train, fit.h_test, data), errors(rule_train, rule_test, data)
    fits_fact = (fit.h_train * y > 0)[:, fact]
    rule_misses = (rule_train * y <= 0)[:, fact]

    def shares(part: Tensor, rows: Tensor) -> float | None:  # mean of y * part over some samples
        return _mean((y * part)[:, rows])

    return KernelFactSplit(
        kernel=k.name, loss=loss, lam=lam, lam_eff=(lam + c.mu_star**2) / c.mu1**2 if c.mu1 else float("inf"),
        mu1=c.mu1, mu_star=c.mu_star,
        e_gen=full_err["e_gen"][0], e_mem=full_err["e_mem"][0],
        e_gen_rule_part=rule_err["e_gen"][0], e_mem_rule_part=rule_err["e_mem"][0],
        test_sign_agreement=float(((fit.h_test > 0) == (rule_test > 0)).double().mean()),
        fact_rule_share=shares(rule_train, fact), fact_lookup_share=shares(lookup, fact),
        fact_remainder_share=shares(remainder, fact),
        rule_sample_rule_share=shares(rule_train, ~fact), rule_sample_lookup_share=shares(lookup, ~fact),
        facts_stored_by_lookup=_mean((fits_fact & rule_misses).double()) if fact.any() else None,
        per_fact={name: (y * part)[0, fact].tolist() for name, part in (("rule", rule_train), ("lookup", lookup), ("remainder", remainder))},
    )  # fmt: skip


@dataclass(frozen=True)
class TwoLayerFactLocation(Result):
    """Where M trained two-layer networks keep the rule and the facts (lists have one entry per network,
    ablation curves one row per network and one column per fraction)."""

    e_gen: list[float]
    e_mem: list[float | None]
    teacher_weight_share: list[float]  # |W t|^2 / |W|^2: share of first-layer weight along the teacher t
    teacher_filtered: dict  # {"e_gen": [...], "e_mem": [...]}: every neuron's weight projected on t
    teacher_residual: dict  # the same with the teacher component removed
    learned_span: dict  # {rank: {"e_gen", "e_mem", "teacher_alignment"}}: W projected on its top singular directions
    ablation_fractions: list[float]
    ablation_least_aligned: dict  # {"e_gen": [[...]], "e_mem": [[...]]}: least teacher-aligned neurons removed first
    ablation_random: dict  # the same, neurons removed in a random order
    facts_off_teacher_direction: bool  # the teacher-filtered network keeps the rule and loses the facts
    facts_in_separable_neurons: bool  # some ablation of least-aligned neurons loses the facts, keeps the rule
    verdict: str


def _output_errors(nets: TwoLayerNets, A: Tensor) -> tuple[Tensor, Tensor]:
    """E_gen and E_mem [M, K] of the networks with K alternative output weights A [M, p, K]."""
    data = nets.data
    wrong_test = ~(nets.predict(data.x_test, a=A) * data.y_test[..., None] > 0)  # [M, n_test, K]
    fact = data.is_fact
    wrong_facts = ~(nets.predict(data.x_train[:, fact], a=A) * data.y_train[:, fact, None] > 0)  # [M, n_facts, K]
    return wrong_test.double().mean(1), wrong_facts.double().mean(1)  # [M, K], [M, K]


def _errors_of(nets: TwoLayerNets, W: Tensor) -> dict:
    fit = nets.fit(W=W)
    err = errors(fit.h_train, fit.h_test, nets.data)
    return {"e_gen": err["e_gen"], "e_mem": err["e_mem"]}


def _ablation(nets: TwoLayerNets, order: Tensor, fractions) -> dict:
    """Errors after zeroing the output weight of the first fraction f of neurons in `order` [M, p]."""
    p = order.shape[-1]
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(p, device=order.device).expand_as(order))  # [M, p]
    keep = torch.stack([(rank >= round(f * p)) for f in fractions], dim=-1).to(nets.a.dtype)  # [M, p, F]
    e_gen, e_mem = _output_errors(nets, nets.a[..., None] * keep)
    return {"e_gen": e_gen.tolist(), "e_mem": e_mem.tolist()}


def two_layer_fact_location(
    nets: TwoLayerNets, *, ranks=(1, 2, 4), fractions=ABLATION_FRACTIONS, seed: int = 0
) -> TwoLayerFactLocation:
    """Filtration and ablation of trained two-layer networks: is the rule in the teacher direction and
    are the facts in a separable set of neurons, or spread through all of them?"""
    W, data = nets.W, nets.data
    t = (data.teacher / data.teacher.norm(dim=-1, keepdim=True)).to(W.dtype)  # [M, d] unit teacher
    along = W @ t[..., None]  # [M, p, 1]: each neuron's component along t
    W_teacher = along * t[:, None, :]  # [M, p, d]
    full = _errors_of(nets, W)
    _, _, Vh = torch.linalg.svd(W, full_matrices=False)  # Vh [M, min(p, d), d]: learned input directions
    span = {}
    for r in ranks:
        basis = Vh[:, :r]  # [M, r, d]
        W_r = W @ basis.mT @ basis  # [M, p, d]
        span[r] = {**_errors_of(nets, W_r), "teacher_alignment": (basis @ t[..., None]).norm(dim=1)[:, 0].tolist()}
    alignment = along[..., 0].abs() / W.norm(dim=-1).clamp(min=1e-30)  # [M, p] |cos(w_j, t)|
    g = torch.Generator().manual_seed(seed)
    random_order = torch.stack([torch.randperm(W.shape[1], generator=g) for _ in range(W.shape[0])]).to(W.device)
    least_aligned = _ablation(nets, alignment.argsort(dim=-1), fractions)
    filtered = _errors_of(nets, W_teacher)
    by_direction = _rule_kept_facts_lost(full, [filtered["e_gen"]], [filtered["e_mem"]])
    by_neurons = _rule_kept_facts_lost(full, least_aligned["e_gen"], least_aligned["e_mem"], transpose=False)
    return TwoLayerFactLocation(
        full["e_gen"], full["e_mem"],
        (along.pow(2).sum((1, 2)) / W.pow(2).sum((1, 2))).tolist(),
        filtered, _errors_of(nets, W - W_teacher), span, list(fractions),
        least_aligned, _ablation(nets, random_order, fractions), by_direction, by_neurons,
        _verdict(by_direction, by_neurons),
    )  # fmt: skip


def _verdict(by_direction: bool, by_neurons: bool) -> str:
    where = (
        "the rule sits in the first-layer weights' teacher component and the facts in its orthogonal complement"
        if by_direction else "projecting the first layer on the teacher does not separate the rule from the facts"
    )  # fmt: skip
    who = (
        "the facts sit in a separable set of neurons (dropping the least teacher-aligned ones removes them and keeps the rule)"
        if by_neurons else "the facts are spread through the neurons (no ablation of least-aligned neurons removes them without costing the rule)"
    )  # fmt: skip
    return f"{where}; {who}."


def _rule_kept_facts_lost(
    full: dict, gens, mems, *, transpose: bool = True, mem_threshold: float = 0.3, gen_slack: float = 0.02
) -> bool:
    """True when, for every network, some variant has E_mem >= mem_threshold (facts lost) and
    E_gen <= full + gen_slack (rule kept). gens, mems: [variant][network] (transpose) or [network][variant]."""
    if full["e_mem"][0] is None:
        return False
    if transpose:
        gens, mems = list(zip(*gens)), list(zip(*mems))
    return all(
        any(m >= mem_threshold and g <= e0 + gen_slack for g, m in zip(gs, ms))
        for e0, gs, ms in zip(full["e_gen"], gens, mems)
    )
