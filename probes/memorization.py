"""Memorisation and capacity: clean vs noisy learning curves, memorisation and generalisation times,
the grokking delay, their crossing in parameter count, and memorised information in bits.

Follows Song and Ye 2026 ("Model capacity determines grokking through competing memorisation and
generalisation speeds") and Morris et al. 2025 ("How much do language models memorize?"), with the
thresholds of docs/papers.md, G.7: T_mem = first step with training accuracy >= 99% on a random-label task,
T_gen = first step with test accuracy >= 99% on the real task, grokking delay
max(0, E_val - E_train) with E_train at 99% training and E_val at 98% test accuracy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode
from interp.errors import SpecError
from interp.metrics import METRIC_SUBSETS, all_logits, first_step
from interp.results import Result
from probes.samples import CopyFraction, copy_fraction, frechet_distance  # noqa: F401  (memorisation of generated samples: probes.samples)

__all__ = [
    "ACCURACY_THRESHOLD",
    "CapacityEstimate",
    "GrokkingDelay",
    "LearningCurves",
    "MemorizedBits",
    "Timescales",
    "capacity",
    "crossing_point",
    "first_step_reaching",
    "generalization_time",
    "grokking_delay",
    "learning_curves",
    "memorization_time",
    "memorized_bits",
    "phase",
    "timescales",
]


def _history(run) -> list[dict]:
    """The metrics history of a TrainResult, an interp.checkpoints Run/Checkpoint, or a list of dicts."""
    hist = getattr(run, "history", run)
    if not isinstance(hist, (list, tuple)) or not all(isinstance(h, dict) and "step" in h for h in hist):
        raise SpecError(
            "history",
            "run",
            type(run).__name__,
            "a run with .history (TrainResult, load_run(...)) or a list of dicts with a 'step' key",
        )
    return sorted(hist, key=lambda h: h["step"])


def _n_params(run) -> int:
    """Parameter count P of a run's model config."""
    cfg = getattr(run, "model_config", None)
    if cfg is None:
        raise SpecError(
            "timescales", "run", type(run).__name__, "a run with .model_config, or a (n_params, history) pair"
        )
    return int(cfg.n_params)


def first_step_reaching(run, key: str, *, threshold: float, below: bool = False) -> int | None:
    """First logged step at which history[key] >= threshold (<= threshold with below=True); None if
    never (resolution: the run's eval_every)."""
    return first_step(((h["step"], h.get(key)) for h in _history(run)), threshold, below=below)


ACCURACY_THRESHOLD = 0.9  # the phase rules of Doshi et al. (train / test accuracy >= 90%)


def phase(train_acc: float, test_acc: float, label_noise: float = 0.0) -> str:
    """The phase of a trained model by Doshi et al.'s rules (accuracies in [0, 1], xi = label_noise):
    coexistence (train >= 90% and test >= 90%; "generalisation" without noise), partial inversion
    (test >= 90%, 1.05 - xi <= train < 90%), full inversion (test >= 90%, train < 1.05 - xi),
    memorisation (test < 90%, train >= 90%), forgetting (both < 90%)."""
    t = ACCURACY_THRESHOLD
    if any(x is None or x != x for x in (train_acc, test_acc)):
        return "unknown"
    if test_acc >= t:
        if train_acc >= t:
            return "coexistence" if label_noise > 0 else "generalisation"
        return "partial inversion" if train_acc >= 1.05 - label_noise else "full inversion"
    return "memorisation" if train_acc >= t else "forgetting"


@dataclass(frozen=True, eq=False)
class LearningCurves(Result):
    """Accuracy and loss of each subset at every logged step, and the first step each subset's
    accuracy reaches `threshold` (None: never). Subsets as in `interp.evaluate`."""

    steps: list[int]
    acc: dict  # subset -> list[float]
    loss: dict  # subset -> list[float]
    threshold: float
    first_reach: dict  # subset -> int | None


def learning_curves(run, *, threshold: float = 0.99) -> LearningCurves:
    """Accuracy and loss per subset (train, train_clean, train_noisy against the given labels,
    train_noisy_true, train_true, test) step by step from a run's history, and the step at which each
    subset's accuracy first reaches `threshold` (the coexistence paper: noisy labels are memorised
    at a different speed than clean ones)."""
    hist = _history(run)
    subsets = [s for s in METRIC_SUBSETS if any(f"{s}_acc" in h for h in hist)]
    nan = float("nan")
    acc = {s: [h.get(f"{s}_acc", nan) for h in hist] for s in subsets}
    loss = {s: [h.get(f"{s}_loss", nan) for h in hist] for s in subsets}
    first = {s: first_step_reaching(hist, f"{s}_acc", threshold=threshold) for s in subsets}
    return LearningCurves([int(h["step"]) for h in hist], acc, loss, threshold, first)


def memorization_time(run, *, threshold: float = 0.99) -> int | None:
    """T_mem: first step with training accuracy >= threshold (99%); meant for a random-label task
    (Song and Ye 2026). None if never reached."""
    return first_step_reaching(run, "train_acc", threshold=threshold)


def generalization_time(run, *, threshold: float = 0.99) -> int | None:
    """T_gen: first step with test accuracy >= threshold (99%) on the real task. None if never."""
    return first_step_reaching(run, "test_acc", threshold=threshold)


@dataclass(frozen=True)
class GrokkingDelay(Result):
    """E_train, E_test and delay = max(0, E_test - E_train) (None where a threshold is never reached)."""

    e_train: int | None
    e_test: int | None
    delay: int | None
    train_threshold: float
    test_threshold: float


def grokking_delay(run, *, train_threshold: float = 0.99, test_threshold: float = 0.98) -> GrokkingDelay:
    """Grokking delay max(0, E_test - E_train): E_train the first step with training accuracy
    >= 99%, E_test the first with test (validation) accuracy >= 98% (Song and Ye 2026)."""
    e_tr = first_step_reaching(run, "train_acc", threshold=train_threshold)
    e_te = first_step_reaching(run, "test_acc", threshold=test_threshold)
    delay = None if e_tr is None or e_te is None else max(0, e_te - e_tr)
    return GrokkingDelay(e_tr, e_te, delay, train_threshold, test_threshold)


def crossing_point(params, t_mem, t_gen) -> float | None:
    """Parameter count P* where T_mem(P) and T_gen(P) cross, by linear interpolation of
    log T_mem - log T_gen against log P between the first pair of consecutive sizes where the
    difference changes sign (an exact tie at a size returns that size). None: no crossing in range
    or too few finite points."""
    pts = sorted(
        (float(p), math.log(float(m)) - math.log(float(g)))
        for p, m, g in zip(params, t_mem, t_gen)
        if m is not None and g is not None and 0 < float(m) < math.inf and 0 < float(g) < math.inf
    )
    for (p0, d0), (p1, d1) in zip(pts, pts[1:]):
        if d0 == 0:
            return p0
        if d0 * d1 < 0:
            x0, x1 = math.log(p0), math.log(p1)
            return math.exp(x0 + (x1 - x0) * d0 / (d0 - d1))
    if pts and pts[-1][1] == 0:
        return pts[-1][0]
    return None


@dataclass(frozen=True)
class Timescales(Result):
    """Per parameter count: median T_mem (random labels) and T_gen (real task) over seeds, runs
    that never reach 99% counted as infinite (None in to_dict), and their log-log crossing."""

    params: list[int]
    t_mem: list[float]
    t_gen: list[float]
    n_mem_runs: list[int]
    n_gen_runs: list[int]
    crossing_params: float | None
    rule: str


def _median(xs: list[float]) -> float:
    """Median of a list (inf allowed; NaN for an empty list)."""
    if not xs:
        return math.nan
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def timescales(mem_runs, gen_runs, *, threshold: float = 0.99) -> Timescales:
    """T_mem(P) from runs on random labels and T_gen(P) from runs on the real task, grouped by the
    parameter count P of each run's model config (median over seeds; never reached = inf), and the
    P where they cross (`crossing_point`, log-log). Each run: a TrainResult / Run (with .history and
    .model_config) or a pair (n_params, history)."""

    def collect(runs, fn):
        out = defaultdict(list)
        for r in runs:
            if isinstance(r, tuple) and len(r) == 2:
                n, hist = int(r[0]), r[1]
            else:
                n, hist = _n_params(r), r
            t = fn(hist, threshold=threshold)
            out[n].append(math.inf if t is None else float(t))
        return out

    mem, gen = collect(mem_runs, memorization_time), collect(gen_runs, generalization_time)
    params = sorted(set(mem) | set(gen))
    t_mem = [_median(mem.get(p, [])) for p in params]
    t_gen = [_median(gen.get(p, [])) for p in params]
    return Timescales(
        params=params,
        t_mem=t_mem,
        t_gen=t_gen,
        n_mem_runs=[len(mem.get(p, [])) for p in params],
        n_gen_runs=[len(gen.get(p, [])) for p in params],
        crossing_params=crossing_point(params, t_mem, t_gen),
        rule=f"first step with accuracy >= {threshold}; median over seeds; crossing of log T_mem - log T_gen vs log P",
    )


@dataclass(frozen=True)
class MemorizedBits(Result):
    """Information about the training labels held by a model, in bits (Morris et al. 2025):
    bits = sum_i max(0, log2 V + log2 p(y_i | x_i)) over the n training examples (V classes);
    bits_unclipped without the max; label_bits = n log2 V, the information in random labels."""

    bits: float
    bits_unclipped: float
    label_bits: float
    n_examples: int
    n_classes: int
    n_params: int
    bits_per_param: float
    clip: str


@torch.no_grad()
def memorized_bits(subject, task=None, *, device=None) -> MemorizedBits:
    """Memorised information on a random-label task: sum over training examples of
    log2 V + log2 p(y_i | x_i), each example's term clipped at >= 0 (a prediction worse than
    uniform holds no information about its label; the unclipped sum is reported too). Below
    n log2 V by construction. Meant for `TaskSpec(random_labels=True)`; on a real task it counts
    what the model knows about the training labels, learned or memorised. `model` may be a loaded
    checkpoint."""
    m, task = resolve_subject(subject, task, device=device)
    dev = next(m.parameters()).device
    with eval_mode(m):
        logits = all_logits(m, task, device=dev).double()[task.train_idx.to(dev)]  # [n, V]
    y = task.train_labels.to(dev)
    v = logits.shape[-1]
    log2p = -F.cross_entropy(logits, y, reduction="none") / math.log(2.0)  # [n]
    per = math.log2(v) + log2p
    bits = float(per.clamp_min(0).sum())
    n_params = int(m.cfg.n_params)
    return MemorizedBits(
        bits=bits,
        bits_unclipped=float(per.sum()),
        label_bits=len(y) * math.log2(v),
        n_examples=len(y),
        n_classes=v,
        n_params=n_params,
        bits_per_param=bits / n_params,
        clip="per example max(0, log2 V + log2 p(y|x))",
    )


@dataclass(frozen=True)
class CapacityEstimate(Result):
    """Capacity per model size: the plateau (max over dataset sizes) of memorised bits, per
    parameter; and one bits-per-parameter slope fitted through the origin over sizes."""

    params: list[int]
    plateau_bits: list[float]
    bits_per_param: list[float]
    dataset_sizes: list[list[int]]
    bits: list[list[float]]
    slope_bits_per_param: float
    rule: str
    references: dict


def capacity(results) -> CapacityEstimate:
    """Capacity in bits per parameter from memorised bits on random labels over dataset sizes
    (Morris et al. 2025: the plateau of memorised bits as the dataset grows; about 3.6 bits/param for
    GPT-style models; Song and Ye 2026: about 2.2 for a 2-layer RoPE transformer). `results`: a list
    of `MemorizedBits` (any mix of model sizes and dataset sizes). Plateau = max over dataset sizes;
    slope = sum(plateau * P) / sum(P^2)."""
    results = list(results)
    if not results or not all(isinstance(r, MemorizedBits) for r in results):
        raise SpecError("capacity", "results", type(results).__name__, "a non-empty list of MemorizedBits")
    by = defaultdict(list)
    for r in results:
        by[r.n_params].append(r)
    params = sorted(by)
    sizes = [[r.n_examples for r in sorted(by[p], key=lambda r: r.n_examples)] for p in params]
    bits = [[r.bits for r in sorted(by[p], key=lambda r: r.n_examples)] for p in params]
    plateau = [max(b) for b in bits]
    slope = sum(b * p for b, p in zip(plateau, params)) / sum(p * p for p in params)
    return CapacityEstimate(
        params=params,
        plateau_bits=plateau,
        bits_per_param=[b / p for b, p in zip(plateau, params)],
        dataset_sizes=sizes,
        bits=bits,
        slope_bits_per_param=slope,
        rule="plateau = max memorised bits over dataset sizes; per parameter",
        references={"morris_2025_gpt": 3.6, "song_ye_2026_2layer_transformer": 2.2},
    )
