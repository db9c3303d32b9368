"""Bad RAF input is refused with a SpecError that names what was passed and what to do."""

from __future__ import annotations

import pytest

from interp.errors import SpecError
from studies.raf import RAFSpec, simulate, state_evolution

SPEC = RAFSpec(alpha=1.0, epsilon=0.2, d=20, n_test=50)


@pytest.mark.parametrize(
    "kwargs, field, hint",
    [
        (dict(alpha=0.0, epsilon=0.2), "alpha", "positive"),
        (dict(alpha=-1.0, epsilon=0.2), "alpha", "positive"),
        (dict(alpha=1.0, epsilon=1.5), "epsilon", "[0, 1]"),
        (dict(alpha=1.0, epsilon=-0.1), "epsilon", "[0, 1]"),
        (dict(alpha=1.0, epsilon=0.2, d=0), "d", "positive int"),
        (dict(alpha=0.001, epsilon=0.2, d=10), "alpha", "n = round(alpha * d) >= 1"),
        (dict(alpha=1.0, epsilon=0.2, n_test=0), "n_test", "positive int"),
    ],
)
def test_bad_spec_names_the_field_and_the_fix(kwargs, field, hint):
    with pytest.raises(SpecError, match=rf"RAFSpec\.{field}=") as err:
        RAFSpec(**kwargs)
    assert hint in str(err.value)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: state_evolution("linear", alpha=0, epsilon=0.2, lam=0.1), r"state_evolution\.alpha=0"),
        (lambda: state_evolution("linear", alpha=1, epsilon=2, lam=0.1), r"state_evolution\.epsilon=2"),
        (lambda: state_evolution("linear", alpha=1, epsilon=0.2, lam=-0.1), r"lam=-0.1.*non-negative"),
        (lambda: simulate(SPEC, "linear", lam=-1.0), r"simulate\.lam=-1.0.*non-negative"),
        (lambda: state_evolution("random_features", alpha=1, epsilon=0.2, lam=0.1, kappa=0), r"kappa=0.*positive width"),
        (lambda: state_evolution("random_features", alpha=1, epsilon=0.2, lam=0.1), r"kappa=None.*positive width"),
        (lambda: simulate(SPEC, "random_features", lam=0.1, kappa=-2.0), r"simulate\.kappa=-2.0"),
        (lambda: simulate(SPEC, "linear", lam=0.1, kappa=2.0), r"kappa=2.0.*None for learner='linear'"),
        (lambda: simulate(SPEC, "perceptron", lam=0.1), r"simulate\.learner='perceptron'.*one of"),
        (lambda: state_evolution("svm", alpha=1, epsilon=0.2, lam=0.1), r"learner='svm'.*one of"),
        (lambda: simulate(SPEC, "kernel", lam=0.1, activation="swish"), r"activation='swish'.*one of"),
        (lambda: state_evolution("kernel", alpha=1, epsilon=0.2, lam=0.1, activation="swish"), r"activation='swish'"),
        (lambda: simulate(SPEC, "linear", lam=0.1, loss="logistic"), r"loss='logistic'.*'square', 'hinge'"),
        (lambda: simulate(SPEC, "linear", lam=0.0, loss="hinge"), r"lam=0.0.*lam > 0 for the hinge.*1e-3"),
        (lambda: simulate(SPEC, "kernel", lam=0.1, activation="tanh", kernel="arccos"), r"kernel='arccos'.*gaussian_equivalent"),
        (lambda: simulate(SPEC, "linear", lam=0.1, seeds=0), r"seeds=0.*positive int"),
        (lambda: simulate(SPEC, "linear", lam=0.1, kernel="rbf"), r"kernel=.rbf.*None for learner=.linear."),
    ],
)  # fmt: skip
def test_bad_arguments_raise_spec_errors_that_say_what_to_do(call, match):
    with pytest.raises(SpecError, match=match):
        call()


def test_theory_of_the_two_layer_network_points_to_the_simulation():
    with pytest.raises(SpecError, match=r"state_evolution\.learner='two_layer'") as err:
        state_evolution("two_layer", alpha=2, epsilon=0.2, lam=0.1, kappa=2.0)
    assert "simulate(spec, 'two_layer'" in str(err.value)


def test_simulating_the_bayes_optimal_benchmark_points_to_the_theory():
    with pytest.raises(SpecError, match=r"simulate\.learner='bayes_optimal'") as err:
        simulate(SPEC, "bayes_optimal", lam=0.0)
    assert "state_evolution('bayes_optimal'" in str(err.value)


def test_spec_errors_are_value_errors_too():
    with pytest.raises(ValueError):
        RAFSpec(alpha=-1, epsilon=0.2)
