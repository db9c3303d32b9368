"""Report sections drawn from `circuits`: partitions with ablation and pruning, clock or pizza, patching."""

from __future__ import annotations

import torch

from circuits.ablation import prune_curve
from circuits.partition import neuron_scores, partition
from circuits.patching import activation_patch
from interp.metrics import all_logits
from interp.report import figures
from interp.report.html import Section
from interp.report.sections_fourier import basis_of
from interp.report.subject import Subject
from probes.clock_pizza import classify_circuit

PATCH_PAIRS = 256  # clean/corrupted pairs per patching sweep: enough for a stable mean, seconds on a CPU


def patching(subject: Subject, sec: Section) -> dict:
    """Activation patching of a transformer (clean answer logit difference recovered when one
    component's clean activation is patched into a run with `a` corrupted): the residual stream
    per layer and position, and each head's output per position."""
    if not hasattr(subject.model, "head_hook"):
        sec.not_applicable(
            f"Activation patching by position and head applies to models with attention; this {subject.family} has "
            "neither positions nor heads (see the ablation section for the effect of each group of neurons)."
        )
        return {"applicable": False, "reason": f"no attention heads ({subject.family})"}
    model, task = subject.model, subject.task
    resid = activation_patch(model, task, hook="resid_pre", per="pos", corruption="a", n_pairs=PATCH_PAIRS)
    heads = activation_patch(model, task, hook="z", per="head_pos", corruption="a", n_pairs=PATCH_PAIRS)
    span = resid.clean_metric - resid.corrupted_metric
    norm = (lambda v: (v - resid.corrupted_metric) / span) if abs(span) > 1e-9 else (lambda v: v)
    positions = ["a", "b", "="][: model.cfg.n_ctx]
    sec.text(
        f"Denoising patches: the clean run's activation is written into a run whose first operand a is replaced, "
        f"and the share of the clean logit difference recovered is shown (1 = fully restored, 0 = corrupted). "
        f"Clean logit difference {resid.clean_metric:.3g}, corrupted {resid.corrupted_metric:.3g}, over {resid.n_pairs} pairs."
    )
    rv = norm(resid.values.float())  # [n_layers, pos]
    sec.figure(
        figures.heatmap(
            "Residual stream (resid_pre) patching: share of logit difference restored",
            rv.tolist(),
            x=positions,
            y=[f"layer {i}" for i in range(rv.shape[0])],
            x_title="position",
            colorscale="RdBu",
            zmid=0,
            height=260 + 40 * rv.shape[0],
        )
    )
    hv = norm(heads.values.float())  # [n_layers, pos, n_heads]
    z = hv.permute(0, 2, 1).reshape(-1, hv.shape[1])  # rows: (layer, head)
    sec.figure(
        figures.heatmap(
            "Attention head output (z) patching by position",
            z.tolist(),
            x=positions,
            y=[f"L{layer}H{h}" for layer in range(hv.shape[0]) for h in range(hv.shape[2])],
            x_title="position",
            colorscale="RdBu",
            zmid=0,
            height=260 + 30 * z.shape[0],
        )
    )
    return {
        "resid_pre": resid.to_dict(),
        "z": heads.to_dict(),
        "resid_pre_restored": rv.tolist(),
        "z_restored": hv.tolist(),
        "positions": positions,
    }


PARTITION_SCORES = ("ipr", "strength", "spread")
PRUNE_SCORES = ("ipr", "strength")
ABLATION_SUBSETS = (("test", "test"), ("train_clean", "clean train"), ("train_noisy", "noisy train (given labels)"))


def ablation(subject: Subject, sec: Section) -> dict:
    """The generalisation / memorisation partition by each neuron score (task-specific IPR, the
    task-agnostic strength and attribution-spread scores), each part evaluated alone, and pruning
    curves in ascending and descending score order (Doshi et al.; the coexistence paper)."""
    model, task = subject.model, subject.task
    noisy = bool(task.noisy_mask.any())
    subsets = [(k, name) for k, name in ABLATION_SUBSETS if noisy or k != "train_noisy"]
    on_group = basis_of(subject) == "group"  # the IPR needs the task's group (its Fourier basis)
    kinds = [k for k in PARTITION_SCORES if on_group or k != "ipr"]
    scores = {kind: neuron_scores(model, task, kind=kind) for kind in kinds}
    parts = {kind: partition(model, task, scores=scores[kind], filtration=False) for kind in kinds}
    sec.text(
        "Each score ranks neurons from memorising (low) to generalising (high). G is the top half by score and R the "
        "bottom half, each evaluated alone with the other neurons zero-ablated. IPR uses the task's Fourier "
        "structure; strength (||w||_inf act(||u||_inf + ||v||_inf)) and spread (how evenly a neuron's attribution "
        "to the given labels spreads over the training examples) do not."
        + (
            ""
            if on_group
            else f" {task.spec.op} is no group's operation, so it has no IPR (no Fourier basis of its own)."
        )
    )
    rows = []
    for kind in kinds:
        part = parts[kind]
        for which, label in (("raw", "whole network"), ("g", "G (top half)"), ("r", "R (bottom half)")):
            if which == "raw" and kind != kinds[0]:
                continue
            rows.append(
                [kind if which != "raw" else "-", label, *(part.metrics[which][f"{k}_acc"] for k, _ in subsets)]
            )
    sec.table(["score", "sub-network", *(name for _, name in subsets)], rows, left=2)
    curves = {}
    for kind in (k for k in PRUNE_SCORES if k in kinds):
        fig = figures.figure(f"Pruning by {kind} score", "fraction of neurons pruned", "accuracy")
        for order, dash in (("ascending", "solid"), ("descending", "dash")):
            curve = prune_curve(model, task, scores=scores[kind], order=order)
            curves[f"{kind}_{order}"] = curve.to_dict()
            for k, name in subsets:
                fig.add_scatter(
                    x=list(curve.fractions),
                    y=curve.metrics[f"{k}_acc"],
                    mode="lines+markers",
                    name=f"{name}, {'lowest' if order == 'ascending' else 'highest'} first",
                    line={"color": figures.PALETTE[k], "dash": dash},
                )
        sec.figure(fig)
    sec.text(
        "Solid: lowest-scoring neurons pruned first (memorising ones go first: the noisy labels should be forgotten while "
        "test accuracy stays); dashed: highest first (the generalising neurons go first)."
    )
    return {
        "scores": {k: v.to_dict() for k, v in scores.items()},
        "partitions": {k: v.to_dict() for k, v in parts.items()},
        "prune_curves": curves,
    }


def clock_pizza(subject: Subject, sec: Section) -> dict:
    """Zhong et al.'s verdict (clock, pizza or neither) with its two measures, gradient symmetricity
    and distance irrelevance, and the correct-answer logit laid out by (a + b, a - b) mod p."""
    task = subject.task
    if task.spec.op not in ("x+y", "x-y"):
        sec.not_applicable(
            f"The clock/pizza measures are defined for modular addition (and subtraction); this task is {task.spec.op}."
        )
        return {"applicable": False, "reason": f"op {task.spec.op}"}
    res = classify_circuit(subject.model, task)
    sec.raw(f'<p class="verdict">Verdict: {res.verdict}</p>')
    sec.text(f"{res.reason}. Rule: {res.rule}.")
    sec.table(
        ["measure", "value", "pizza (Zhong et al.)", "clock (Zhong et al.)"],
        [
            ["gradient symmetricity", res.gradient_symmetricity, 0.994, 0.33],
            ["distance irrelevance", res.distance_irrelevance, 0.17, 0.85],
            ["test accuracy", res.test_acc, None, None],
        ],
    )
    th = res.thresholds
    fig = figures.bars(
        "The two measures (thresholds on symmetricity dashed)",
        ["gradient symmetricity", "distance irrelevance"],
        {
            "this model": [res.gradient_symmetricity, res.distance_irrelevance],
            "published pizza": [0.994, 0.17],
            "published clock": [0.33, 0.85],
        },
        y_title="value",
        colors={"this model": figures.PALETTE["full"], "published pizza": "#ff7f0e", "published clock": "#2ca02c"},
    )
    for key, label in (("pizza_min_symmetricity", "pizza above"), ("clock_max_symmetricity", "clock below")):
        fig.add_hline(y=th[key], line_dash="dash", annotation_text=label)
    sec.figure(fig)
    p = task.p
    logits = all_logits(subject.model, task)  # [N, p]
    correct = logits[torch.arange(len(task.labels)), task.labels]
    a, b = task.inputs[:, 0], task.inputs[:, 1]
    grid = torch.full((p, p), float("nan"))
    grid[(a + b) % p, (a - b) % p] = correct.float().cpu()
    sec.text(
        "Correct-answer logit by (a + b) mod p (rows) and (a - b) mod p (columns): a clock's logit is flat along "
        "each row (it ignores the distance a - b); a pizza's varies with the distance."
    )
    sec.figure(
        figures.heatmap(
            "Correct logit by sum and difference",
            grid.tolist(),
            x_title="(a - b) mod p",
            y_title="(a + b) mod p",
            height=460,
        )
    )
    if res.analytic_fit:
        sec.text(f"Gromov's analytic solution, phase-relation fit: {res.analytic_fit}.")
    out = res.to_dict()
    out["correct_logit_by_sum_and_difference"] = grid.tolist()  # rows (a + b) mod p, columns (a - b) mod p
    return out
