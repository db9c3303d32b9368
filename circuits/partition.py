"""The generalisation / memorisation partition (coexistence paper): keep the top gamma_g fraction of
neurons by a score (probes.scores) as the generalisation sub-network G and the bottom gamma_r
fraction as the memorisation sub-network R, evaluate each alone (every other neuron ablated), and
report frequency filtration (circuits.filtration) beside them. What the sub-networks of each score
achieve at CPU size is checked in tests/test_circuits_partition.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuits.ablation import ablate_batch
from circuits.filtration import frequency_filtration
from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.metrics import evaluate
from interp.results import Result
from probes.scores import DEFAULT_SCORE, NeuronScores, neuron_scores, score_values

__all__ = ["partition", "PartitionResult", "neuron_scores", "NeuronScores"]  # the scores: probes.scores


@dataclass(frozen=True, eq=False)
class PartitionResult(Result):
    """The generalisation (top gamma_g by score) and memorisation (bottom gamma_r) sub-networks,
    each evaluated alone, beside the raw network and frequency filtration."""

    score_name: str
    gamma_g: float
    gamma_r: float
    kind: str  # how the other neurons are removed: zero | mean | resample ablation
    g_neurons: tuple[int, ...]
    r_neurons: tuple[int, ...]
    metrics: dict  # "raw", "g", "r": interp.evaluate dicts
    filtration: dict | None  # circuits.filtration.frequency_filtration metrics {"raw", "g", "r"}, or None
    filtration_note: str


def _top_fraction(values: torch.Tensor, gamma: float, top: bool) -> torch.Tensor:
    n = len(values)
    k = int(round(gamma * n))
    order = torch.argsort(values, descending=top, stable=True)
    return order[:k].sort().values


def partition(
    subject,
    task=None,
    *,
    scores=DEFAULT_SCORE,
    gamma_g: float = 0.7,
    gamma_r: float = 0.3,
    kind: str = "mean",
    filtration: bool = True,
    device=None,
) -> PartitionResult:
    """Split the hidden neurons by `scores` (a kind for `neuron_scores`, a NeuronScores, or [n]):
    G = the top gamma_g fraction, R = the bottom gamma_r fraction; evaluate G alone and R alone (the
    other neurons ablated, `kind`), beside the raw network and, with filtration=True, frequency
    filtration (circuits.filtration). The coexistence paper finds the task-agnostic G improves test
    accuracy over the raw network, but less than frequency filtration."""
    for name, g in (("gamma_g", gamma_g), ("gamma_r", gamma_r)):
        if not 0.0 < float(g) <= 1.0:
            raise SpecError("partition", name, g, "a fraction in (0, 1]")
    model, task = resolve_subject(subject, task, device=device)
    values, score_name = score_values(model, task, scores=scores)
    n = model.n_neurons
    if values.shape != (n,):
        raise SpecError("partition", "scores", f"shape {list(values.shape)}", f"one score per neuron, [{n}]")
    g_idx, r_idx = _top_fraction(values, gamma_g, True), _top_fraction(values, gamma_r, False)
    keep = torch.zeros(2, n, dtype=torch.bool)
    keep[0, g_idx] = True
    keep[1, r_idx] = True
    batch = ablate_batch(model, task, masks=~keep, kind=kind)  # ablate everything outside each sub-network
    raw = evaluate(model, task)
    filt, note = None, "frequency filtration not requested"
    if filtration:
        try:
            res = frequency_filtration(model, task)
            filt, note = res.metrics, res.method
        except SpecError as exc:  # e.g. a learned-embedding MLP
            note = f"frequency filtration does not apply: {exc}"
    return PartitionResult(
        score_name=score_name,
        gamma_g=float(gamma_g),
        gamma_r=float(gamma_r),
        kind=kind,
        g_neurons=tuple(int(i) for i in g_idx),
        r_neurons=tuple(int(i) for i in r_idx),
        metrics={"raw": raw, "g": batch.row(0), "r": batch.row(1)},
        filtration=filt,
        filtration_note=note,
    )
