"""The RAF state evolution reproduces the reference numbers of docs/papers.md, A.5 and the paper's claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import studies.raf.priors as priors
from studies.raf import gaussian_coefficients, state_evolution
from studies.raf.priors import iterate, linear_prior, marchenko_pastur, ridge_closed_form

EPS = 0.2


def se(learner, **kw):
    kw.setdefault("epsilon", EPS)
    r = state_evolution(learner, **kw)
    assert r.converged, r.message
    return r


def test_gaussian_coefficients_of_relu_and_tanh_match_the_paper():
    relu, tanh = gaussian_coefficients("relu"), gaussian_coefficients("tanh")
    assert (relu.mu0, relu.mu1, relu.mu_star) == pytest.approx((0.3989, 0.5, 0.3014), abs=1e-4)
    assert (tanh.mu0, tanh.mu1, tanh.mu_star) == pytest.approx((0.0, 0.6057, 0.1655), abs=1e-4)


@pytest.mark.parametrize(
    "alpha, e_gen, e_mem, e_rule",
    [(1, 0.339, 0.003, 0.000), (2, 0.268, 0.168, 0.036), (4, 0.192, 0.335, 0.066), (8, 0.136, 0.419, 0.069)],
)
def test_linear_ridge_matches_reference_table(alpha, e_gen, e_mem, e_rule):
    r = se("linear", alpha=alpha, lam=0.1)
    assert (r.e_gen, r.e_mem, r.e_rule_train) == pytest.approx((e_gen, e_mem, e_rule), abs=1e-3)


def test_linear_ridge_at_the_optimal_lam_matches_reference():
    r = se("linear", alpha=2, lam=1.45)
    assert (r.e_gen, r.e_mem) == pytest.approx((0.2479, 0.228), abs=1e-3)


@pytest.mark.parametrize(
    "alpha, e_gen, e_mem", [(2, 0.307, 0.0), (3, 0.272, 0.083), (4, 0.209, 0.253), (8, 0.120, 0.410)]
)
def test_linear_svm_matches_reference_table(alpha, e_gen, e_mem):
    r = se("linear", alpha=alpha, lam=1e-3, loss="hinge")
    assert (r.e_gen, r.e_mem) == pytest.approx((e_gen, e_mem), abs=1e-3)


@pytest.mark.parametrize(
    "alpha, lam, e_gen, e_mem",
    [(2, 1e-3, 0.2555, 0.0), (2, 0.1, 0.250, 0.001), (2, 0.3, 0.248, 0.049), (2, 1, 0.252, 0.146), (2, 10, 0.263, 0.225), (4, 0.1, 0.187, 0.012)],
)  # fmt: skip
def test_kernel_ridge_matches_reference_table(alpha, lam, e_gen, e_mem):
    # mu_star of ReLU to 4 digits (0.3014) moves these by < 1e-3
    r = se("kernel", alpha=alpha, lam=lam)
    assert (r.e_gen, r.e_mem) == pytest.approx((e_gen, e_mem), abs=1.5e-3)


def test_random_features_kappa_scan_matches_reference_and_peaks_at_kappa_equal_alpha():
    kappas = (0.5, 1, 1.5, 2, 4, 8, 16, 64)
    ref_gen = (0.396, 0.385, 0.404, 0.426, 0.348, 0.304, 0.280, 0.262)
    ref_mem = (0.304, 0.159, 0.028, 0, 0, 0, 0, 0)
    runs = [se("random_features", alpha=2, lam=1e-3, kappa=k) for k in kappas]
    assert [r.e_gen for r in runs] == pytest.approx(ref_gen, abs=1e-3)
    assert [r.e_mem for r in runs] == pytest.approx(ref_mem, abs=1e-3)
    assert max(runs, key=lambda r: r.e_gen).kappa == 2  # the double-descent peak sits at kappa = alpha


def test_random_features_memorise_every_fact_iff_kappa_at_least_alpha():
    for alpha in (1.0, 2.0, 4.0):
        below = se("random_features", alpha=alpha, lam=1e-5, kappa=0.75 * alpha)
        at_or_above = [se("random_features", alpha=alpha, lam=1e-5, kappa=f * alpha) for f in (1.0, 2.0, 8.0)]
        assert below.e_mem > 0.01
        assert all(r.e_mem < 1e-3 for r in at_or_above)


def test_random_features_approach_the_kernel_as_kappa_grows():
    kernel = se("kernel", alpha=2, lam=1e-3)
    wide = se("random_features", alpha=2, lam=1e-3, kappa=512)
    assert wide.e_gen == pytest.approx(kernel.e_gen, abs=2e-3)


def test_kernels_memorise_every_fact_as_lam_goes_to_zero():
    for alpha in (0.5, 1, 2, 4, 8, 16):
        assert se("kernel", alpha=alpha, lam=1e-4).e_mem < 1e-3
        assert se("kernel", alpha=alpha, lam=0).e_mem == 0.0


def test_linear_tradeoff_facts_are_lost_past_the_threshold_while_the_rule_improves():
    # square loss, lam -> 0: every label is fitted iff alpha <= 1
    ridge = [se("linear", alpha=a, lam=1e-6) for a in (0.5, 0.9, 1.5, 3, 8)]
    assert ridge[0].e_mem < 1e-3 and ridge[1].e_mem < 1e-3
    assert ridge[2].e_mem > 0.05 and ridge[3].e_mem > ridge[2].e_mem and ridge[4].e_mem > ridge[3].e_mem
    # max-margin: separable up to alpha_c(0.2) ~ 2.9, then E_mem climbs toward 1/2 as E_gen falls
    svm = [se("linear", alpha=a, lam=1e-3, loss="hinge") for a in (2, 2.5, 3.5, 8)]
    assert svm[0].e_mem < 1e-3 and svm[1].e_mem < 1e-3 and svm[2].e_mem > 0.05 and svm[3].e_mem > 0.4
    assert all(a.e_gen > b.e_gen for a, b in zip(svm, svm[1:]))


@pytest.mark.parametrize("epsilon", [0.1, 0.2, 0.5])
def test_optimal_linear_lam_is_one_minus_c2_over_c2(epsilon):
    c = (1 - epsilon) * math.sqrt(2 / math.pi)
    formula = (1 - c * c) / (c * c)
    for alpha in (1, 4):

        def e_gen(log_lam, alpha=alpha):
            return state_evolution("linear", alpha=alpha, epsilon=epsilon, lam=math.exp(log_lam)).e_gen

        best = minimize_scalar(
            e_gen,
            bounds=(-5, 5),
            method="bounded",
            options={"xatol": 1e-6},
        )
        assert math.exp(best.x) == pytest.approx(formula, rel=1e-3)


def test_kernel_ridge_generalises_exactly_like_linear_ridge_at_the_effective_penalty():
    c = gaussian_coefficients("relu")
    for alpha, lam in ((0.5, 0.01), (2, 1e-3), (2, 1.0), (8, 0.1)):
        kernel = se("kernel", alpha=alpha, lam=lam)
        linear = se("linear", alpha=alpha, lam=(lam + c.mu_star**2) / c.mu1**2)
        assert kernel.e_gen == pytest.approx(linear.e_gen, abs=1e-8)


def test_square_loss_iteration_finds_the_closed_form_fixed_point():
    for alpha, lam in ((0.5, 0.01), (2, 0.1), (8, 3.0)):
        (m, q, V), converged, _, _ = iterate("square", alpha, EPS, linear_prior(lam))
        assert converged
        assert (m, q, V) == pytest.approx(ridge_closed_form(alpha, EPS, lam), rel=1e-7)


def test_kernel_large_alpha_rate_is_minus_one_half_and_bayes_optimal_minus_one():
    alphas = (16, 32, 64, 128)
    ridge = [se("kernel", alpha=a, lam=1e-3).e_gen for a in alphas]
    svm = [se("kernel", alpha=a, lam=1e-3, loss="hinge").e_gen for a in alphas]
    bayes = [se("bayes_optimal", alpha=a, lam=None).e_gen for a in alphas]
    assert ridge == pytest.approx((0.0960, 0.0679, 0.0480, 0.0339), abs=2e-4)
    assert svm == pytest.approx((0.0948, 0.0668, 0.0471, 0.0333), abs=2e-4)
    assert bayes == pytest.approx((0.0556, 0.0284, 0.0143, 0.0072), abs=2e-4)
    slope = lambda errs: np.polyfit(np.log(alphas), np.log(errs), 1)[0]  # noqa: E731
    assert slope(ridge) == pytest.approx(-0.5, abs=0.02)
    assert slope(svm) == pytest.approx(-0.5, abs=0.02)
    assert slope(bayes) == pytest.approx(-1.0, abs=0.03)
    assert all(se("kernel", alpha=a, lam=1e-3).e_mem < 1e-3 for a in alphas)


def test_bayes_optimal_matches_reference_and_has_no_memorisation_error():
    runs = [se("bayes_optimal", alpha=a, lam=None) for a in (1, 2, 4, 8, 16)]
    assert [r.e_gen for r in runs] == pytest.approx((0.308, 0.243, 0.170, 0.103, 0.056), abs=1e-3)
    assert all(r.e_mem is None and r.e_rule_train is None for r in runs)


def test_marchenko_pastur_weights_are_a_probability_with_mean_one():
    for kappa in (0.25, 1.0, 4.0):
        s, w = marchenko_pastur(kappa)
        assert w.sum() == pytest.approx(1.0, abs=1e-10)
        assert w @ s == pytest.approx(1.0, abs=1e-10)  # E s = tr(F F^T / d) / p = 1
        assert w @ s**2 == pytest.approx(1 + kappa, abs=1e-8)


def test_a_state_evolution_that_does_not_converge_returns_no_numbers(monkeypatch):
    monkeypatch.setattr(priors, "MAX_ITER", 3)
    r = state_evolution("linear", alpha=3.0, epsilon=EPS, lam=1e-3, loss="hinge")
    assert not r.converged and "no fixed point" in r.message
    assert r.e_gen is None and r.e_mem is None and r.e_rule_train is None and r.m is None
    assert r.to_dict()["e_gen"] is None


def test_no_facts_means_no_memorisation_error():
    r = se("kernel", alpha=2, lam=0.1, epsilon=0.0)
    assert r.e_mem is None and r.e_rule_train is not None


@pytest.mark.parametrize(
    "ratio, lam_opt, e_mem", [(0.2, 0.354, 0.203), (0.6, 0.273, 0.042), (1.2, 0.0036, 0.0)]
)  # mu_star / mu1 of a kernel with mu1 = 0.5 (A.5, optimal regularisation)
def test_optimal_kernel_lam_reaches_the_best_linear_error_and_memorises_more_as_mu_star_grows(ratio, lam_opt, e_mem):
    from studies.raf.channels import generalisation_error, memorisation_error
    from studies.raf.priors import kernel_prior

    c = (1 - EPS) * math.sqrt(2 / math.pi)
    mu1, mu_star = 0.5, ratio * 0.5
    formula = max(0.0, mu1**2 * (1 - c * c) / (c * c) - mu_star**2)
    assert formula == pytest.approx(lam_opt, abs=1e-3)

    def point(lam):
        (m, q, V), converged, _, _ = iterate("square", 2.0, EPS, kernel_prior(lam, mu1, mu_star))
        assert converged
        return generalisation_error(m, q), memorisation_error(q, V)

    best = minimize_scalar(lambda x: point(math.exp(x))[0], bounds=(-12, 3), method="bounded")
    assert math.exp(best.x) == pytest.approx(formula, rel=0.02)
    # E_gen = the best linear ridge error; E_mem to 2e-3 (the reference rounds lam_opt to 0.273: 0.042 vs 0.043)
    assert point(formula) == pytest.approx((0.2479, e_mem), abs=2e-3)
