"""Neuron scores: how generalising each hidden neuron looks (coexistence paper, Doshi et al. 2024).

Scores (higher = more "generalising"):
- "ipr": the inverse participation ratio of each neuron's Fourier spectrum (probes.fourier.neuron_ipr;
  Doshi et al. 2024). Task-specific: it assumes the task's structure is Fourier-sparse.
- "strength": the coexistence paper's task-agnostic score from weights alone,
  Str_m = ||w_m||_inf * act(||u_m||_inf + ||v_m||_inf) (MLP: u_m, v_m input weights, w_m output
  weights). Transformer analogue: u_m = v_m = the neuron's direct-path input weights over residue
  tokens (W_E[:p] @ W_in)[:, m], w_m = (W_out @ W_U)[m]; attention mixing is ignored.
- "coherence": ours, task-agnostic and activation-based (see `attribution_coherence`): how
  consistently a neuron's direct logit attribution pushes the given training labels up,
  sum_i c_m(i) / sum_i |c_m(i)|. Needs the training inputs and their given labels only (the same
  data as the loss), never the task's structure nor which labels are noisy.
- "spread": the participation ratio of the same attributions over examples (memorising neurons
  matter to few examples); kept for comparison, it does not separate the sub-networks here.

How the scores' sub-networks compare at CPU size is checked in tests/test_circuits_partition.py
(its comments record what was measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.checkpoints.subject import resolve_subject
from interp.device import model_device
from interp.errors import SpecError
from interp.interventions import neuron_activations
from interp.results import Result
from probes.fourier import neuron_ipr

__all__ = [
    "DEFAULT_SCORE",
    "SCORE_KINDS",
    "NeuronScores",
    "attribution_coherence",
    "attribution_spread",
    "label_attributions",
    "neuron_scores",
    "score_values",
    "strength_scores",
]

SCORE_KINDS = ("ipr", "strength", "coherence", "spread")
DEFAULT_SCORE = "coherence"  # neuron_scores, partition and prune_curve all default to it


@dataclass(frozen=True, eq=False)
class NeuronScores(Result):
    """One score per neuron of `model.neuron_hook`; higher means more generalising."""

    kind: str  # ipr | strength | spread
    values: torch.Tensor  # [n_neurons]
    task_specific: bool  # True when the score uses the task's structure (Fourier for IPR)
    definition: str


@torch.no_grad()
def strength_scores(subject, task=None, *, device=None) -> torch.Tensor:
    """[n] Str_m = ||w_m||_inf * act(||u_m||_inf + ||v_m||_inf) (coexistence paper), from weights alone."""
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    w = model.neuron_out_weights().detach().float()  # [n, p]
    inw = model.neuron_in_weights().detach().float()  # MLP [n, 2, p]; transformer [n, p]
    if inw.ndim == 3:
        u_v = inw[:, 0].abs().amax(-1) + inw[:, 1].abs().amax(-1)
    else:
        u_v = 2 * inw.abs().amax(-1)
    return (w.abs().amax(-1) * model.hidden_act(u_v)).cpu()


@torch.no_grad()
def label_attributions(subject, task=None, *, device=None) -> torch.Tensor:
    """[n_train, n] each neuron's direct logit attribution to each training example's given label,
    c_m(i) = h_m(x_i) * (W_m[y_i] - mean_c W_m[c]), h the neuron's activation at the answer position,
    W = neuron_out_weights (W for the MLP, W_out W_U for the transformer's last layer); centring
    over classes removes a push on every logit alike, which changes no prediction."""
    model, task = resolve_subject(subject, task, device=device)
    dev = model_device(model)
    h = neuron_activations(model, task.train_inputs.to(dev)).double()  # [n_train, n]
    W = model.neuron_out_weights().detach().double()  # [n, p]
    W = W - W.mean(-1, keepdim=True)
    y = task.train_labels.to(dev)
    return h * W[:, y].T  # [n_train, n]


def attribution_coherence(subject, task=None, *, device=None) -> torch.Tensor:
    """[n] coherence_m = sum_i c_m(i) / sum_i |c_m(i)| in [-1, 1], with c_m(i) the neuron's direct
    logit attribution to training example i's given label (`label_attributions`).

    Why: a neuron that computes the rule pushes the given label up on nearly every example (and
    down only on the mislabelled ones), so its attributions agree in sign: coherence near 1. A
    memorising neuron fits its examples in superposition with the others: it pushes some given
    labels up and others down, and only the sum over neurons fits each label, so its net push is a
    small part of its total: coherence near 0. It uses the training inputs and their given labels
    only, as the loss does: no Fourier basis, no knowledge of which labels are noisy."""
    c = label_attributions(subject, task, device=device)
    return (c.sum(0) / c.abs().sum(0).clamp_min(1e-300)).float().cpu()


def attribution_spread(subject, task=None, *, device=None) -> torch.Tensor:
    """[n] participation ratio over training examples of each neuron's label attribution c_m(i)
    (`label_attributions`): spread_m = (sum_i |c_m(i)|)^2 / (n_train sum_i c_m(i)^2) in [1/n_train, 1].

    The idea (the issue's suggestion): a neuron that memorises a few examples matters to those few
    (spread ~ k / n_train), one that computes the rule to almost all (near 1). On the noisy MLPs of
    the tests it ranks neurons like IPR only loosely and its top sub-network does not beat the raw
    network's test accuracy: memorisation in these networks is spread over many neurons in
    superposition, not held by a few. `coherence` works better (tests/test_circuits_partition.py)."""
    c = label_attributions(subject, task, device=device)
    l1 = c.abs().sum(0)
    l2 = (c * c).sum(0)
    return torch.where(l2 > 0, l1 * l1 / (c.shape[0] * l2.clamp_min(1e-300)), torch.zeros_like(l1)).float().cpu()


# The two task-agnostic scores built on each neuron's attribution to the given training labels.
_ATTRIBUTION_SCORES = {
    "coherence": (
        attribution_coherence,
        "sum_i c_m(i) / sum_i |c_m(i)|, c_m(i) = h_m(x_i) (W_m[y_i] - mean_c W_m[c]) over training examples",
    ),
    "spread": (
        attribution_spread,
        "(sum_i |c_m(i)|)^2 / (n sum_i c_m(i)^2), c_m(i) = h_m(x_i) (W_m[y_i] - mean_c W_m[c]) over training examples",
    ),
}


def neuron_scores(subject, task=None, *, kind: str = DEFAULT_SCORE, device=None) -> NeuronScores:
    """One score per hidden neuron, higher = more generalising: "ipr" (Fourier IPR, Doshi et al.;
    task-specific), "strength" (||w||_inf act(||u||_inf + ||v||_inf), coexistence paper; weights only),
    "coherence" (net / total attribution to the given training labels) or "spread" (participation
    ratio of that attribution over training examples). Default: "coherence", the task-agnostic score
    that separates the sub-networks best (module docstring); it needs the task (pass it, or a checkpoint)."""
    if kind not in SCORE_KINDS:
        raise SpecError("neuron_scores", "kind", kind, f"one of {list(SCORE_KINDS)}")
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    if kind == "ipr":
        values = neuron_ipr(model, task).detach().float().cpu()  # in the task's group basis (Z_p without a task)
        return NeuronScores(
            kind,
            values,
            True,
            "mean IPR of |DFT| of u, v, w (MLP) / of the 2-D activation spectrum (transformer), probes.fourier.neuron_ipr",
        )
    if kind == "strength":
        definition = f"||w_m||_inf * act(||u_m||_inf + ||v_m||_inf) with {model.neuron_weights}"
        return NeuronScores(kind, strength_scores(model), False, definition)
    if task is None:
        raise SpecError(
            "neuron_scores",
            "task",
            None,
            f"a Task for kind={kind!r} (its training inputs and given labels)",
            "Pass task= (or a loaded checkpoint), or kind='strength' / 'ipr', which read the weights alone.",
        )
    score, definition = _ATTRIBUTION_SCORES[kind]
    return NeuronScores(kind, score(model, task), False, definition)


def score_values(subject, task=None, *, scores=None, device=None) -> tuple[torch.Tensor, str]:
    """(values [n], name) of `scores`: a `neuron_scores` kind (default `DEFAULT_SCORE`), a `NeuronScores`,
    or a tensor [n] ("user")."""
    scores = DEFAULT_SCORE if scores is None else scores
    if isinstance(scores, str):
        s = neuron_scores(subject, task, kind=scores, device=device)
        return s.values, s.kind
    if isinstance(scores, NeuronScores):
        return torch.as_tensor(scores.values), str(scores.kind)
    return torch.as_tensor(scores), "user"
