"""`state_evolution`: the high-dimensional (d -> infinity) errors of a RAF learner, from its fixed point.

Linear, kernel and random-feature learners with square or hinge loss, and the Bayes-optimal
benchmark (E_gen only). Non-convergence is not an exception: the result says converged=False, its
message says why, and every error and order parameter is None, so a sweep keeps going and nothing
downstream can mistake a failed point for a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interp.errors import SpecError
from interp.results import Result
from studies.raf.activations import activation as check_activation
from studies.raf.activations import gaussian_coefficients, rbf_coefficients
from studies.raf.channels import generalisation_error, memorisation_error, rule_training_error
from studies.raf.priors import (
    bayes_optimal_overlap,
    iterate,
    kernel_prior,
    linear_prior,
    random_features_prior,
    ridge_closed_form,
)
from studies.raf.spec import (
    THEORY,
    check_alpha,
    check_epsilon,
    check_kappa,
    check_kernel,
    check_lam,
    check_learner,
    check_loss,
    check_rbf_eta,
)


@dataclass(frozen=True)
class TheoryResult(Result):
    """Errors and order parameters at the state-evolution fixed point (None where undefined or not converged)."""

    learner: str
    loss: str | None
    alpha: float
    epsilon: float
    lam: float | None
    kappa: float | None
    activation: str | None
    kernel: str | None
    mu1: float | None  # Gaussian coefficients of the kernel / features (None for linear and Bayes-optimal)
    mu_star: float | None
    e_gen: float | None
    e_mem: float | None  # None without facts (epsilon = 0) and for the Bayes-optimal benchmark
    e_rule_train: float | None
    m: float | None  # overlap with the teacher field
    q: float | None  # variance of the test pre-activation
    V: float | None  # response parameter of the training pre-activation (inf: every label interpolated)
    converged: bool
    iterations: int
    message: str


def _coefficients(learner: str, kernel: str | None, activation: str, rbf_eta: float):
    if learner == "kernel" and kernel == "rbf":
        return rbf_coefficients(rbf_eta)
    return gaussian_coefficients(activation)


def _fixed_point(learner, loss, alpha, epsilon, lam, kappa, coef):
    """((m, q, V), converged, iterations, message) of one learner."""
    if learner == "linear" and loss == "square":
        return ridge_closed_form(alpha, epsilon, lam), True, 0, "closed form"
    if learner == "kernel" and loss == "square" and lam == 0:
        # min-norm kernel interpolation: on fresh inputs linear ridge at lam_eff; every training label fitted
        if coef.mu1 == 0:
            return (0.0, 0.0, math.inf), True, 0, "closed form (mu1 = 0: the kernel has no linear part)"
        m, q, V = ridge_closed_form(alpha, epsilon, coef.mu_star**2 / coef.mu1**2)
        return (
            (m, q, math.inf if coef.mu_star > 0 else V),
            True,
            0,
            "closed form (lam = 0: lam_eff = mu_star^2 / mu1^2)",
        )
    if learner == "linear":
        return iterate(loss, alpha, epsilon, linear_prior(lam))
    if learner == "kernel":
        return iterate(loss, alpha, epsilon, kernel_prior(lam, coef.mu1, coef.mu_star))
    prior = random_features_prior(lam, kappa, coef.mu1, coef.mu_star)
    return iterate(loss, alpha / kappa, epsilon, prior)


def state_evolution(
    learner: str,
    *,
    alpha: float,
    epsilon: float,
    lam: float | None,
    loss: str = "square",
    kappa: float | None = None,
    activation: str = "relu",
    kernel: str | None = None,
    rbf_eta: float = 1.0,
) -> TheoryResult:
    """E_gen, E_mem and E_rule_train of `learner` in the proportional limit (n = alpha d, d -> infinity).

    learner: "linear", "kernel", "random_features" (kappa = p / d) or "bayes_optimal" (E_gen only; lam
    and loss are ignored, pass lam=None). kernel and rbf_eta as in `simulate`: the kernel enters through
    its Gaussian coefficients (mu1, mu_star), e.g. ReLU (0.5, 0.3014).
    """
    where = "state_evolution"
    learner = check_learner(learner, THEORY, where)
    alpha, epsilon = check_alpha(alpha, where), check_epsilon(epsilon, where)
    if learner == "bayes_optimal":
        return _bayes_optimal(alpha, epsilon)
    loss = check_loss(loss, where)
    check_activation(activation, f"{where}.activation")
    if lam is None:
        raise SpecError(where, "lam", lam, "a non-negative number for learner=" + repr(learner), "Use e.g. lam=1e-3.")
    lam = check_lam(lam, where, loss, learner)
    kappa = check_kappa(kappa, where, learner)
    kernel = check_kernel(kernel, activation, where, learner)
    coef = _coefficients(learner, kernel, activation, check_rbf_eta(rbf_eta, where)) if learner != "linear" else None
    state, converged, iterations, message = _fixed_point(learner, loss, alpha, epsilon, lam, kappa, coef)
    errors = dict(e_gen=None, e_mem=None, e_rule_train=None)
    if converged:
        m, q, V = state
        errors = dict(
            e_gen=generalisation_error(m, q),
            e_mem=memorisation_error(q, V) if epsilon > 0 else None,
            e_rule_train=rule_training_error(m, q, V) if epsilon < 1 else None,
        )
    m, q, V = state if converged else (None, None, None)
    return TheoryResult(
        learner, loss, alpha, epsilon, lam, kappa, activation if coef else None, kernel,
        coef.mu1 if coef else None, coef.mu_star if coef else None,
        **errors, m=m, q=q, V=V, converged=converged, iterations=iterations, message=message,
    )  # fmt: skip


def _bayes_optimal(alpha: float, epsilon: float) -> TheoryResult:
    q, converged, iterations, message = bayes_optimal_overlap(alpha, epsilon)
    e_gen = math.acos(math.sqrt(q)) / math.pi if converged else None
    return TheoryResult(
        "bayes_optimal", None, alpha, epsilon, None, None, None, None, None, None,
        e_gen, None, None, q, q, None, converged, iterations, message,
    )  # fmt: skip
