"""Clock or pizza? Gradient symmetricity and distance irrelevance (Zhong et al. 2023).

- Gradient symmetricity: over triples (a, b, c), cos(dQ_c/dE_a, dQ_c/dE_b), where E_a, E_b are the
  input embeddings of the two operands (transformer: the token embeddings W_E[a], W_E[b] before the
  positional embedding; MLP: the one-hot inputs e_a, e_b) and Q_c the answer-position logit of class
  c; averaged. The pizza's logits depend on E_a + E_b (symmetric, near 1); the clock's on the product
  of the two rotations (lower).
- Distance irrelevance: the correct-answer logit over every pair of the table, grouped by the
  distance d = (a - b) mod p; q = mean over d of std(logit | d) / std(logit). The clock's logit does
  not depend on d (near 1); the pizza's does, through |cos(w (a - b) / 2)| (lower).

Calibration (`classify_circuit`'s default thresholds). 1-layer transformers trained here in Zhong
et al.'s setup scaled down: (a + b) mod p, tokens `a b` (eq_token=False), no causal mask, 4 heads,
ReLU, no layer norm, frac_train 0.8, full-batch AdamW, betas (0.9, 0.98), 10-step warm-up; p = 23, 29,
31; d_model 32-64, d_mlp 64-256; lr 1e-3 to 1e-2, weight decay 1-2; 300-2000 steps; 4096 triples.
Gradient symmetricity measured:
    attention rate 0 (pizza), 26 runs:  0.984 - 1.000 (every run, grokked or not)
    attention rate 1 (clock), 26 runs:  of the 22 that generalised, 19 measured -0.01 - 0.77
        (median 0.26; the test fixture, p = 29, d_model 32, d_mlp 64, lr 1e-2, wd 2, 400 steps,
        seed 0: 0.155) and 3 measured 0.885, 0.931, 0.983 (attention rate 1 does not force a
        clock; Zhong et al. see the same); the 4 that had not generalised (test accuracy 0.77 -
        0.86) all measured >= 0.998.
Distance irrelevance: 0.21 - 0.64 for pizzas, 0.40 - 0.95 for clocks (mostly >= 0.65): the ranges
overlap at these widths (Zhong et al. note it is noisy for small models), so it is reported beside
the verdict but does not decide it. Published (their models, p = 59, d_model 128): pizza 0.994 /
0.17, clock 0.33 / 0.85.
Rule: test accuracy < 0.9 -> "neither" (no generalising circuit; an ungrokked model looks
symmetric); else symmetricity >= 0.95 -> "pizza", <= 0.85 -> "clock", in between -> "neither".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.checkpoints.subject import resolve_subject
from interp.device import eval_mode, model_device
from interp.errors import ShapeError, SpecError
from interp.interventions import DEFAULT_MAX_ROWS, max_rows_for
from interp.metrics import all_logits, evaluate
from interp.results import Result
from probes.gromov import phase_fit

__all__ = [
    "CircuitVerdict",
    "DEFAULT_THRESHOLDS",
    "classify_circuit",
    "distance_irrelevance",
    "gradient_symmetricity",
]

DEFAULT_THRESHOLDS = {"pizza_min_symmetricity": 0.95, "clock_max_symmetricity": 0.85, "min_test_acc": 0.9}


@dataclass(frozen=True, eq=False)
class CircuitVerdict(Result):
    """Clock, pizza or neither, with the measures and the thresholds that decided it."""

    verdict: str  # clock | pizza | neither
    gradient_symmetricity: float  # mean cos(dQ_c/dE_a, dQ_c/dE_b); pizza ~1, clock lower
    distance_irrelevance: float  # mean_d std(logit | d) / std(logit); clock ~1, pizza lower
    test_acc: float
    thresholds: dict
    rule: str
    reason: str
    n_triples: int
    analytic_fit: dict | None  # MLP: probes.gromov.phase_fit (phase-relation error), else None


def _triples(p: int, n_triples: int, seed: int) -> torch.Tensor:
    """[n, 3] (a, b, c): every triple when p^3 <= n_triples, else n_triples drawn uniformly (seeded)."""
    if p**3 <= n_triples:
        g = torch.arange(p)
        return torch.cartesian_prod(g, g, g)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, p, (n_triples, 3), generator=gen)


def given_triples(triples, p: int) -> torch.Tensor:
    """Explicit (a, b, c) triples as a long tensor [n, 3], checked to lie in [0, p)."""
    t = torch.as_tensor(triples, dtype=torch.long)
    if t.ndim != 2 or t.shape[1] != 3 or len(t) == 0:
        raise ShapeError(f"triples must be [n, 3] (a, b, c) with n >= 1, got shape {list(t.shape)}.")
    if int(t.min()) < 0 or int(t.max()) >= p:
        raise ShapeError(
            f"triples must hold residues in [0, {p}), got values in [{int(t.min())}, {int(t.max())}]. "
            "Pass triples of the model's modulus."
        )
    return t


def gradient_symmetricity(
    subject,
    task=None,
    *,
    n_triples: int = 4096,
    seed: int = 0,
    triples=None,
    device=None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> float:
    """Mean over triples (a, b, c) of cos(dQ_c/dE_a, dQ_c/dE_b) (Zhong et al. 2023), E the operands'
    input embeddings (transformer: W_E rows before the positional embedding; MLP: one-hot inputs),
    Q_c the answer logit of class c. The triples: `triples` ([n, 3] (a, b, c), e.g. a published
    fixed sample), else every triple when p^3 <= n_triples, else n_triples drawn with `seed`. All
    triples share one backward pass per chunk: each example's embeddings are separate rows of one
    leaf tensor, so a summed objective gives per-example gradients."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    dev = model_device(model)
    p = model.p
    trip = (_triples(p, n_triples, seed) if triples is None else given_triples(triples, p)).to(dev)
    rows = max_rows_for(model, max_rows)
    sims = []
    with eval_mode(model):
        with torch.enable_grad():  # also when called under torch.no_grad()
            for s in range(0, len(trip), rows):
                t = trip[s : s + rows]
                pairs, c = t[:, :2], t[:, 2]
                ar = torch.arange(len(t), device=dev)
                emb, logits = model.embedded_answer_logits(pairs)  # emb [B, pos, d]: operands at 0 and 1
                (grad,) = torch.autograd.grad(logits[ar, c].sum(), emb)
                sims.append(F.cosine_similarity(grad[:, 0].double(), grad[:, 1].double(), dim=-1))
    return float(torch.cat(sims).mean())


def distance_irrelevance(subject, task=None, *, device=None) -> float:
    """Zhong et al.'s q: the correct-answer logit over every pair of the task's table grouped by
    d = (a - b) mod p; mean over d of its std within the group, divided by its std over all pairs
    (population std both times)."""
    model, task = resolve_subject(subject, task, device=device)
    if task.operation.group != "Zp":
        raise SpecError(
            "distance_irrelevance", "task.spec.op", task.spec.op, "an operation on residues mod p (distance a - b)"
        )
    with eval_mode(model):
        logits = all_logits(model, task).double()  # [N, p]
    dev = logits.device
    correct = logits[torch.arange(len(logits), device=dev), task.labels.to(dev)]  # [N]
    d = ((task.inputs[:, 0] - task.inputs[:, 1]) % task.p).to(dev)
    count = torch.zeros(task.p, dtype=torch.float64, device=dev).index_add_(0, d, torch.ones_like(correct))
    mean = torch.zeros_like(count).index_add_(0, d, correct) / count.clamp_min(1)
    var = torch.zeros_like(count).index_add_(0, d, (correct - mean[d]) ** 2) / count.clamp_min(1)
    present = count > 0
    total = correct.std(unbiased=False)
    return float(var[present].sqrt().mean() / total.clamp_min(1e-30))


def classify_circuit(
    subject, task=None, *, n_triples: int = 4096, seed: int = 0, thresholds: dict | None = None, device=None
) -> CircuitVerdict:
    """Clock, pizza or neither (Zhong et al. 2023) from gradient symmetricity (the deciding measure)
    and distance irrelevance (reported); thresholds calibrated on transformers trained with attention
    rate 0 (pizza) and 1 (clock), see the module docstring. MLPs also get Gromov's phase-relation fit."""
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    unknown = set(th) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise SpecError("classify_circuit", "thresholds", sorted(unknown), f"keys among {sorted(DEFAULT_THRESHOLDS)}")
    model, task = resolve_subject(subject, task, device=device)
    sym = gradient_symmetricity(model, task, n_triples=n_triples, seed=seed)
    dist = distance_irrelevance(model, task)
    test_acc = float(evaluate(model, task)["test_acc"])
    if not test_acc >= th["min_test_acc"]:
        verdict, reason = (
            "neither",
            f"test accuracy {test_acc:.3f} < {th['min_test_acc']}: no generalising circuit to classify",
        )
    elif sym >= th["pizza_min_symmetricity"]:
        verdict, reason = "pizza", f"gradient symmetricity {sym:.3f} >= {th['pizza_min_symmetricity']}"
    elif sym <= th["clock_max_symmetricity"]:
        verdict, reason = "clock", f"gradient symmetricity {sym:.3f} <= {th['clock_max_symmetricity']}"
    else:
        verdict, reason = "neither", f"gradient symmetricity {sym:.3f} between the clock and pizza thresholds"
    fit = None
    if model.neuron_weights_exact and task.spec.op in ("x+y", "x-y"):  # Gromov's fit reads exact neuron weights
        pf = phase_fit(model, task)
        fit = {
            "relation": pf.relation,
            "mean_error": pf.mean_error,
            "median_error": pf.median_error,
            "weighted_mean_error": pf.weighted_mean_error,
        }
    return CircuitVerdict(
        verdict=verdict,
        gradient_symmetricity=sym,
        distance_irrelevance=dist,
        test_acc=test_acc,
        thresholds=th,
        rule="test_acc >= min_test_acc, then pizza if symmetricity >= pizza_min_symmetricity, clock if <= clock_max_symmetricity, else neither",
        reason=reason,
        n_triples=min(n_triples, model.p**3),
        analytic_fit=fit,
    )
