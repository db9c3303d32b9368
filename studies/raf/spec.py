"""The Rules-and-Facts experiment spec and the one place every RAF argument is checked.

`RAFSpec(alpha, epsilon, d, n_test, seed)` fixes a data set exactly (Farné, Boncoraglio, Zdeborová
2026; docs/papers.md, A.1): n = round(alpha d) Gaussian training inputs, round(epsilon n) of them
"facts" with uniform random labels, the rest labelled by the teacher sign(w* . x / sqrt(d)), and
n_test fresh teacher-labelled test inputs. The `check_*` functions raise a `SpecError` that names
what was passed, what was expected and what to do; `simulate` and `state_evolution` both call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import SpecError
from interp.validation import check_choice, check_fraction, check_int, check_number

LEARNERS = ("linear", "kernel", "random_features", "two_layer", "bayes_optimal")
SIMULATED = ("linear", "kernel", "random_features", "two_layer")
THEORY = ("linear", "kernel", "random_features", "bayes_optimal")
LOSSES = ("square", "hinge")
KERNELS = ("arccos", "gaussian_equivalent", "rbf")


@dataclass(frozen=True)
class RAFSpec:
    """One Rules-and-Facts data set: sizes, fact fraction and seed (the data are drawn from it)."""

    alpha: float  # sample ratio n / d
    epsilon: float  # fraction of training samples that are facts (random labels), in [0, 1]
    d: int = 400  # input dimension
    n_test: int = 10_000  # fresh teacher-labelled test inputs
    seed: int = 0  # seed of the first data set; seed index s of a simulation uses seed + s

    def __post_init__(self):
        check_alpha(self.alpha, "RAFSpec")
        check_epsilon(self.epsilon, "RAFSpec")
        check_int(
            "RAFSpec", "d", self.d, min_value=1, expected="a positive int (input dimension)", fix="Use e.g. d=400."
        )
        if self.n < 1:
            raise SpecError(
                "RAFSpec", "alpha", self.alpha, f"alpha * d >= 0.5 so that n = round(alpha * d) >= 1 (d = {self.d})",
                "Increase alpha or d.",
            )  # fmt: skip
        check_int("RAFSpec", "n_test", self.n_test, min_value=1, fix="The paper's estimates use 10_000.")
        check_int("RAFSpec", "seed", self.seed, min_value=0)

    @property
    def n(self) -> int:
        """Training samples, round(alpha d)."""
        return int(round(self.alpha * self.d))

    @property
    def n_facts(self) -> int:
        """Facts among them, round(epsilon n) (a fixed count, as in the authors' code)."""
        return int(round(self.epsilon * self.n))


def check_alpha(alpha, where: str) -> float:
    """A positive sample ratio alpha = n / d."""
    return check_number(
        where, "alpha", alpha, min_value=0, inclusive=False,
        expected="a positive number (n = alpha * d training samples)", fix="Use e.g. alpha=2.0.",
    )  # fmt: skip


def check_epsilon(epsilon, where: str) -> float:
    """A fact fraction in [0, 1]."""
    return check_fraction(
        where, "epsilon", epsilon, expected="a fraction of facts in [0, 1]",
        fix="epsilon=0 is the teacher-student perceptron, epsilon=1 Gardner's random labels; the paper uses 0.2.",
    )  # fmt: skip


def check_learner(learner, allowed: tuple, where: str) -> str:
    """`learner` when it is one of `allowed`; a SpecError saying which function takes it otherwise."""
    if learner in allowed:
        return learner
    fix = f"Choose one of {list(allowed)}."
    if learner == "two_layer" and where == "state_evolution":
        fix = (
            "The two-layer network with a trainable first layer has no state evolution (the paper leaves it "
            "open): measure it with studies.raf.simulate(spec, 'two_layer', ...)."
        )
    elif learner == "bayes_optimal" and where == "simulate":
        fix = (
            "The Bayes-optimal error is a theory benchmark, not a trainable learner: use "
            "studies.raf.state_evolution('bayes_optimal', alpha=..., epsilon=..., lam=0)."
        )
    raise SpecError(where, "learner", learner, f"one of {list(allowed)}", fix)


def check_loss(loss, where: str) -> str:
    """'square' or 'hinge'."""
    return check_choice(where, "loss", loss, LOSSES, "'square' is ridge regression, 'hinge' the SVM.")


def check_lam(lam, where: str, loss: str, learner: str) -> float:
    """A non-negative ridge / SVM penalty; zero only where its limit is a well-defined solver."""
    lam = check_number(
        where, "lam", lam, min_value=0, expected="a non-negative number (the l2 penalty lam/2 ||w||^2)",
        fix="Use lam=0 for the min-norm interpolator (square loss) or a small lam such as 1e-3.",
    )  # fmt: skip
    if lam == 0 and (loss == "hinge" or learner == "random_features"):
        what = "the hinge loss (the SVM needs C = 1/lam finite)" if loss == "hinge" else "random features"
        raise SpecError(
            where, "lam", lam, f"lam > 0 for {what}",
            "Use a small lam such as 1e-4 or 1e-3, which gives the max-margin / interpolating limit.",
        )  # fmt: skip
    return float(lam)


def check_kappa(kappa, where: str, learner: str) -> float | None:
    """The width ratio p / d: required (positive) for random features and the two-layer network."""
    if learner not in ("random_features", "two_layer"):
        if kappa is not None:
            raise SpecError(
                where, "kappa", kappa, f"None for learner={learner!r} (kappa = p / d is a width ratio)",
                "Pass kappa only with learner='random_features' or 'two_layer'.",
            )  # fmt: skip
        return None
    return check_number(
        where, "kappa", kappa, min_value=0, inclusive=False,
        expected=f"a positive width ratio p / d for learner={learner!r}",
        fix="Use e.g. kappa=2.0 (p = 2 d features); the double-descent peak sits at kappa = alpha.",
    )  # fmt: skip


def check_kernel(kernel, activation: str, where: str, learner: str = "kernel") -> str | None:
    """The kernel of a 'kernel' learner; None picks the activation's exact kernel when it has a
    closed form (ReLU: arc-cosine), else its Gaussian-equivalent kernel. Other learners take None."""
    if learner != "kernel":
        if kernel is not None:
            raise SpecError(
                where, "kernel", kernel, f"None for learner={learner!r}", "Pass kernel only with learner='kernel'."
            )
        return None
    if kernel is None:
        return "arccos" if activation == "relu" else "gaussian_equivalent"
    check_choice(where, "kernel", kernel, KERNELS, "Or None: the activation's own kernel.")
    if kernel == "arccos" and activation != "relu":
        raise SpecError(
            where, "kernel", kernel, "'arccos' only with activation='relu' (the arc-cosine kernel is ReLU's)",
            f"Use kernel='gaussian_equivalent' for activation={activation!r}.",
        )  # fmt: skip
    return kernel


def check_rbf_eta(eta, where: str) -> float:
    """A positive RBF bandwidth factor."""
    return check_number(
        where, "rbf_eta", eta, min_value=0, inclusive=False,
        expected="a positive bandwidth factor (k = exp(-eta |x - x'|^2 / (2 d)))", fix="Use e.g. 1.0.",
    )  # fmt: skip
