"""The arithmetic bridge: the Rules-and-Facts question asked of modular addition with label noise.

All-class label noise at rate eps on (a + b) mod p is the RAF data model on a finite table: the
operation is the rule, the resampled training labels are the facts (each drawn uniformly over all p
classes, as RAF's facts are uniform over {-1, +1}, so some agree with the rule by chance), and the
test pairs are labelled by the rule only. A two-layer ReLU MLP (interp.models.MLPConfig) trained on a
fraction f of the table stands in for a RAF learner at sample ratio alpha:

    RAF                          arithmetic (this module)
    1 - E_gen                    test accuracy (true labels of the held-out pairs)
    1 - E_mem                    noisy fit: accuracy on the resampled training labels, against the labels given
    1 - E_rule_train             clean fit: accuracy on the other training labels
    alpha = n / d                alpha = n_train / p (d: the input dimension of one operand's one-hot code)
    kappa = width / d            width / p
    alpha / kappa = n / width    samples_per_parameter = n_train / n_params (the capacity axis)

Facts are counted as RAF counts them: every label the noise resampled (`Task.noisy_mask`), including
the about 1/p of them that were redrawn equal to the true label (RAF's facts agree with the teacher
half of the time). Those are reported per fraction (`resampled_to_true`), and a network that learns
the rule alone has noisy fit ~ 1/p, as a RAF learner that ignores the facts has E_mem = 1/2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from interp.device import resolve_device
from interp.errors import SpecError
from interp.models import MLPConfig
from interp.results import Result
from interp.tasks import Task, TaskSpec
from interp.train import TrainConfig, train_many
from studies.raf.simulation import mean_and_se

BRIDGE_OP = "x+y"
# (fit name in the result, metric of interp.metrics.evaluate / the training history)
BRIDGE_METRICS = (
    ("test_acc", "test_acc"),
    ("noisy_fit", "train_noisy_acc"),
    ("clean_fit", "train_clean_acc"),
    ("noisy_true_acc", "train_noisy_true_acc"),
)


def default_bridge_config() -> TrainConfig:
    """Doshi et al.'s recipe with a ReLU: full-batch AdamW lr 1e-2, betas (0.9, 0.98), weight decay 1, MSE
    on one-hot targets, 600 steps, metrics at the last step only."""
    return TrainConfig(
        steps=600, lr=1e-2, weight_decay=1.0, optimizer="adamw", betas=(0.9, 0.98), warmup_steps=0, loss="mse",
        eval_every=600,
    )  # fmt: skip


@dataclass(frozen=True)
class ArithmeticBridge(Result):
    """Test accuracy and fits of the noisy and clean training labels of ReLU MLPs on (a + b) mod p with
    all-class label noise eps, per width and training fraction: mean and standard error over seeds.

    Arrays are [W, F] (widths x fractions) unless said; `*_per_seed` are [W, F, S]. `*_se` is None (null)
    with one seed. Accuracies, not errors: E_gen ~ 1 - test_acc, E_mem ~ 1 - noisy_fit,
    E_rule_train ~ 1 - clean_fit.
    """

    epsilon: float  # the label-noise rate (RAF's fact fraction)
    p: int
    op: str
    fractions: list[float]  # [F] training fractions f
    widths: list[int]  # [W] hidden widths
    seeds: list[int]  # [S] seeds of the split, the noise and the initialisation
    n_train: list[int]  # [F] training pairs, round(f p^2)
    n_noisy: list[int]  # [F] resampled labels (the facts), round(eps n_train)
    resampled_to_true: list[float]  # [F] mean over seeds of facts whose new label equals the true one
    alpha: list[float]  # [F] n_train / p, the analogue of RAF's alpha = n / d
    n_params: list[int]  # [W] parameters of each width
    samples_per_parameter: np.ndarray  # n_train / n_params
    test_acc: np.ndarray
    test_acc_se: np.ndarray | None
    noisy_fit: np.ndarray
    noisy_fit_se: np.ndarray | None
    clean_fit: np.ndarray
    clean_fit_se: np.ndarray | None
    noisy_true_acc: np.ndarray  # the noisy examples against their true labels (the rule read on the facts)
    noisy_true_acc_se: np.ndarray | None
    per_seed: dict[str, np.ndarray]  # {fit name: [W, F, S]}
    train_config: dict  # the shared training settings (seed and device vary per run)
    failed: list[str]  # messages of runs that did not complete (their metrics are NaN)
    runs: list = field(default_factory=list, repr=False, compare=False)  # [W][F][S] TrainResults (models, tasks)

    def frame_axes(self, shape: tuple[int, ...]) -> tuple[str, ...]:
        """`to_frame`'s index columns: one row per (width, fraction)."""
        return ("width_index", "fraction_index") if len(shape) == 2 else super().frame_axes(shape)

    def run(self, width: int, fraction: float, seed: int):
        """The TrainResult of one (width, fraction, seed): its `.model`, `.task`, `.history`, `.out`."""
        return self.runs[self.widths.index(width)][self.fractions.index(fraction)][self.seeds.index(seed)]


def _check_arguments(epsilon, fractions, widths, seeds) -> tuple[list[float], list[int], list[int]]:
    """The fractions, widths and seeds as lists, or a SpecError naming the bad one."""
    if not isinstance(epsilon, (int, float)) or not 0.0 < float(epsilon) < 1.0:
        raise SpecError(
            "arithmetic_bridge", "epsilon", epsilon, "a label-noise rate in (0, 1)",
            "With eps = 0 there are no facts to memorise; RAF's quick example uses 0.2.",
        )  # fmt: skip
    fractions = [float(f) for f in fractions]
    if not fractions or not all(0.0 < f < 1.0 for f in fractions) or len(set(fractions)) != len(fractions):
        raise SpecError(
            "arithmetic_bridge", "fractions", fractions, "distinct training fractions in (0, 1)",
            "f = 1 leaves no test pair to measure the rule on; e.g. (0.4, 0.6, 0.8, 0.95).",
        )  # fmt: skip
    widths = [widths] if isinstance(widths, int) else list(widths)
    if not widths or not all(isinstance(w, int) and w >= 1 for w in widths) or len(set(widths)) != len(widths):
        raise SpecError("arithmetic_bridge", "widths", widths, "distinct positive int widths, e.g. (48, 128)")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SpecError("arithmetic_bridge", "seeds", seeds, "a count >= 1 or distinct non-negative int seeds")
    return fractions, widths, seeds


def arithmetic_bridge(
    epsilon: float,
    fractions: Sequence[float],
    *,
    p: int,
    widths: int | Sequence[int],
    seeds: int | Sequence[int] = 2,
    train_config: TrainConfig | None = None,
    device=None,
    out=None,
) -> ArithmeticBridge:
    """Train ReLU MLPs on (a + b) mod p with all-class label noise `epsilon` for every training fraction,
    width and seed, as one `train_many` call, and report RAF's three errors' analogues per (width, fraction).

    seeds: a count (seeds 0 .. seeds-1) or the seeds; seed s seeds the task's split and noise and the
    model's initialisation. train_config: shared settings (`default_bridge_config()` when None); its seed
    is replaced per run, and its device by `device` when given. out: a folder for the run directories
    (train_many's sweep layout), or None to write nothing.
    """
    fractions, widths, seeds = _check_arguments(epsilon, fractions, widths, seeds)
    config = default_bridge_config() if train_config is None else train_config
    if device is not None:
        config = dataclasses.replace(config, device=str(resolve_device(device)))
    specs = [
        TaskSpec(BRIDGE_OP, p, f, label_noise=float(epsilon), noise_kind="all", seed=s)
        for f in fractions
        for s in seeds
    ]
    tasks = {spec: Task(spec) for spec in specs}  # one Task per (fraction, seed), shared by every width
    jobs = [
        (MLPConfig(p=p, width=w, act="relu"), tasks[spec], dataclasses.replace(config, seed=spec.seed))
        for w in widths
        for spec in specs
    ]  # job order: width, fraction, seed
    flat = train_many(jobs, out=out)
    W, F, S = len(widths), len(fractions), len(seeds)
    runs = [[flat[(w * F + f) * S : (w * F + f + 1) * S] for f in range(F)] for w in range(W)]  # [W][F][S]
    return _summarise(float(epsilon), p, fractions, widths, seeds, config, runs)


def _summarise(epsilon, p, fractions, widths, seeds, config, runs) -> ArithmeticBridge:
    """Means and standard errors over seeds of the final metrics of `runs` ([W][F][S] TrainResults)."""
    W, F, S = len(widths), len(fractions), len(seeds)
    per_seed = {
        name: np.array([[[_final(r, key) for r in cell] for cell in row] for row in runs])  # [W, F, S]
        for name, key in BRIDGE_METRICS
    }
    stats = {}
    for name, values in per_seed.items():
        cells = [[mean_and_se(values[w, f].tolist()) for f in range(F)] for w in range(W)]
        stats[name] = np.array([[m for m, _ in row] for row in cells], dtype=float)  # [W, F]
        se = np.array([[s for _, s in row] for row in cells], dtype=float) if S > 1 else None
        stats[f"{name}_se"] = se
    tasks = [[r.task for r in runs[0][f]] for f in range(F)]  # [F][S], the same for every width
    n_train = [tasks[f][0].n_train for f in range(F)]
    n_params = [MLPConfig(p=p, width=w, act="relu").n_params for w in widths]
    lucky = [float(np.mean([int((t.noisy_mask & ~t.label_changed_mask).sum()) for t in ts])) for ts in tasks]
    failed = [f"{r.out or 'run'}: {r.message}" for row in runs for cell in row for r in cell if not r.ok]
    shared = {k: v for k, v in config.to_dict().items() if k != "seed"}
    return ArithmeticBridge(
        epsilon=epsilon, p=p, op=BRIDGE_OP, fractions=fractions, widths=widths, seeds=seeds, n_train=n_train,
        n_noisy=[tasks[f][0].n_noisy for f in range(F)], resampled_to_true=lucky, alpha=[n / p for n in n_train],
        n_params=n_params, samples_per_parameter=np.array([[n / k for n in n_train] for k in n_params]),
        per_seed=per_seed, train_config=shared, failed=failed, runs=runs, **stats,
    )  # fmt: skip


def _final(run, key: str) -> float:
    """The metric `key` at the last step of a completed run; NaN for a run that did not complete."""
    return float(run.final[key]) if run.ok and run.final.get(key) is not None else float("nan")
