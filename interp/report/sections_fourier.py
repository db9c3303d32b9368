"""Report sections drawn from `probes`: neuron spectra and classes, key frequencies, frequency filtration.

Each is drawn in the task's own Fourier basis (`probes.group_basis`): frequencies for Z_p, Z_p^* (in
the discrete-log basis) and C_n, irreps by name for S_n, A_n and D_n. A task on no group (the
polynomial operations) is drawn in Z_p's additive basis, and the page says that this is what it is.
"""

from __future__ import annotations

import math

import torch

from circuits.filtration import frequency_filtration as filtration
from interp.errors import SpecError
from interp.groups import group_name_of
from interp.report import figures
from interp.report.html import Section
from interp.report.subject import Subject
from probes.fourier import KEY_RULES, classify_neurons, frequency_scores, key_irreps
from probes.fourier import key_frequencies as key_freqs
from probes.fourier import neuron_spectra as spectra_of
from probes.group_basis import task_basis

MAX_HEATMAP_ROWS = 512  # wider models show an evenly spaced sample of their sorted neurons


def cached(subject: Subject, key: str, compute):
    """Compute a probe result once per report (sections share the neuron classification)."""
    if key not in subject.extra:
        subject.extra[key] = compute()
    return subject.extra[key]


def basis_of(subject: Subject) -> str:
    """ "group" when the task is on a group, else "additive" (Z_p's basis, for the polynomial operations)."""
    try:
        group_name_of(subject.task.spec.op, subject.task.spec.p)
        return "group"
    except SpecError:
        return "additive"


def axis_of(subject: Subject) -> tuple[list, str, str]:
    """(x values, x title, a sentence on the basis) for drawing a spectrum of the subject's task."""
    basis = basis_of(subject)
    tb = task_basis(subject.model, subject.task, where="report", basis=basis)
    if basis == "additive":
        note = (
            f"{subject.task.spec.op} is no group's operation, so it has no Fourier basis of its own: the spectra are "
            f"in Z_{tb.n_tokens}'s additive basis (each operand read as a residue mod p), not the rule's."
        )
        return list(range(tb.n_irreps)), "frequency k (additive, Z_p)", note
    note = f"Basis: {tb.describe()}."
    if tb.cyclic:
        title = "frequency k" + ("" if tb.order == tb.n_tokens else " (discrete-log basis of Z_p^*)")
        return list(range(tb.n_irreps)), title, note
    return tb.names, "irrep", note


def classification(subject: Subject):
    return cached(
        subject, "classification", lambda: classify_neurons(subject.model, subject.task, basis=basis_of(subject))
    )


def neuron_spectra(subject: Subject, sec: Section) -> dict:
    """Per-neuron spectra (sorted by dominant frequency), the IPR histogram with the periodic /
    memorising cut, and periodic neurons per dominant frequency."""
    spec = cached(subject, "spectra", lambda: spectra_of(subject.model, subject.task, basis=basis_of(subject)))
    cls = classification(subject)
    n, F = spec.power.shape
    xs, x_title, note = axis_of(subject)
    sec.text(note)
    order = torch.argsort(
        spec.dominant_freq * 2 - spec.dominant_frac.clamp(0, 1), stable=True
    )  # by frequency, strongest first
    if n > MAX_HEATMAP_ROWS:
        order = order[torch.linspace(0, n - 1, MAX_HEATMAP_ROWS).round().long()]
    sec.text(
        f"Method: {spec.method}. Each row of the heatmap is one neuron's share of power per frequency 0..{F - 1} "
        f"(neurons sorted by dominant frequency{'; an evenly spaced sample of ' + str(MAX_HEATMAP_ROWS) + ' of ' + str(n) if n > MAX_HEATMAP_ROWS else ''})."
    )
    sec.figure(
        figures.heatmap(
            f"Neuron Fourier spectra (share of power per {'irrep' if x_title == 'irrep' else 'frequency'})",
            spec.power[order].tolist(),
            x=xs,
            y=[f"n{int(i)}" for i in order],
            x_title=x_title,
            y_title="neuron (sorted by dominant frequency)",
            height=460,
        )
    )
    fig = figures.histogram("Neuron IPR (log scale)", cls.ipr.tolist(), x_title="IPR", log_x=True)

    for value, label, dash in ((cls.threshold, "periodic cut", "solid"), (cls.ipr_random, "random weights", "dot")):
        if value > 0:
            fig.add_vline(x=math.log10(value), line_dash=dash, line_color="#d62728", annotation_text=label)
    sec.figure(fig)
    all_counts = torch.bincount(spec.dominant_freq, minlength=F).tolist()
    sec.figure(
        figures.bars(
            f"Neurons per dominant {'irrep' if x_title == 'irrep' else 'frequency'}",
            xs,
            {"all neurons": all_counts, "periodic neurons": cls.freq_counts},
            x_title=f"dominant {x_title}",
            y_title="neurons",
        )
    )
    sec.table(["neuron classes", "value"], _class_rows(cls))
    sec.text(f"Rule: {cls.rule}.")
    out = cls.to_dict()
    out["method"] = spec.method
    out["median_ipr"] = float(cls.ipr.median())
    out["dominant_freq_counts"] = all_counts
    out["power"] = spec.power.tolist()  # [neurons, frequencies], the heatmap's values (all neurons)
    return out


def _class_rows(cls) -> list[list]:
    """The neuron-class table of a `NeuronClassification`."""
    rows = [
        ["neurons", cls.n_neurons],
        ["periodic (generalising)", cls.n_periodic],
        ["fraction periodic", cls.frac_periodic],
        ["IPR cut", cls.threshold],
        ["IPR of random weights", cls.ipr_random],
        ["median IPR", float(cls.ipr.median())],
        ["bimodality (Ashman's D)", cls.bimodality],
    ]
    if cls.agreement_with_nanda is not None:
        rows.append(["agreement with Nanda et al.'s 85% rule", cls.agreement_with_nanda])
        rows.append(["neurons with >= 85% power in one frequency", int(cls.nanda_periodic.sum())])
    return rows


def key_frequencies(subject: Subject, sec: Section) -> dict:
    """The key frequencies by each rule in use (embedding, unembedding, W_L, neuron clusters), with
    the normalised scores they rank frequencies by."""
    model, task, basis = subject.model, subject.task, basis_of(subject)
    xs, x_title, note = axis_of(subject)
    irreps = x_title == "irrep"  # a non-abelian group: irreps, no frequencies
    out, names, scores = {}, {}, {}
    for rule in KEY_RULES:
        names[rule] = key_irreps(model, task, rule=rule, basis=basis)
        out[rule] = [] if irreps else key_freqs(model, task, rule=rule, basis=basis)
        s = frequency_scores(model, task, rule=rule, basis=basis)
        top = float(s.max())
        scores[rule] = (s / top if top > 0 else s).tolist()
    what = "irrep" if irreps else "frequency"
    sec.text(
        f"A key {what} scores above a quarter of the strongest under its rule (Nanda et al.). The rules "
        f"usually agree on a trained, generalising network; under memorisation they scatter. {note}"
    )
    sec.figure(
        figures.bars(
            f"{what.capitalize()} scores by rule (normalised to the maximum)",
            xs,
            scores,
            x_title=x_title,
            y_title="score / max",
        )
    )
    sec.table(
        ["rule", f"key {'irreps' if irreps else 'frequencies'} (strongest first)", "how"],
        [[r, ", ".join(map(str, names[r] if irreps else out[r])) or "none", KEY_RULES[r]] for r in KEY_RULES],
        left=3,
    )
    return {"key_frequencies": out, "key_irreps": names, "scores": scores, "rules": dict(KEY_RULES), "basis": note}


FILTRATION_SUBSETS = (
    ("test", "test"),
    ("train_clean", "clean train"),
    ("train_noisy", "noisy train (given labels)"),
    ("train_noisy_true", "noisy train (true labels)"),
)


def frequency_filtration(subject: Subject, sec: Section) -> dict:
    """Accuracy of the original network, its dominant-frequency part G and the residual R on test,
    clean and noisy training data (the coexistence paper's frequency filtration)."""
    basis = basis_of(subject)
    res = filtration(subject.model, subject.task, basis=basis)
    _, x_title, note = axis_of(subject)
    g_label = "G (dominant irreps)" if x_title == "irrep" else "G (dominant frequencies)"
    subsets = [
        (k, name)
        for k, name in FILTRATION_SUBSETS
        if res.metrics["raw"].get(f"{k}_acc") == res.metrics["raw"].get(f"{k}_acc")
    ]
    series = {
        label: [res.metrics[key][f"{k}_acc"] for k, _ in subsets]
        for key, label in (("raw", "original"), ("g", g_label), ("r", "R (residual)"))
    }
    colors = {
        "original": figures.PALETTE["full"],
        g_label: figures.PALETTE["g"],
        "R (residual)": figures.PALETTE["r"],
    }
    fig = figures.bars(
        "Accuracy of the original network, G and R",
        [name for _, name in subsets],
        series,
        y_title="accuracy",
        colors=colors,
    )
    sec.text(f"Method: {res.method}. G holds {res.g_weight_fraction:.1%} of the filtered weights' squared norm. {note}")
    sec.figure(fig)
    sec.table(
        ["subset", "original", "G", "R"],
        [[name, *(res.metrics[m][f"{k}_acc"] for m in ("raw", "g", "r"))] for k, name in subsets],
    )
    raw_t, g_t = res.metrics["raw"]["test_acc"], res.metrics["g"]["test_acc"]
    sec.text(f"Test accuracy: original {raw_t:.1%}, G {g_t:.1%}, R {res.metrics['r']['test_acc']:.1%}.")
    out = res.to_dict()
    if not subject.model.neuron_weights_exact:  # filtered in W_U above: also filter the neuron activations
        act = filtration(subject.model, subject.task, parts=("neurons",), basis=basis)
        sec.text(
            f"Neuron activations instead of W_U: {act.method}. The projection holds {act.g_weight_fraction:.1%} "
            "of the activations' squared norm."
        )
        sec.table(
            ["subset", "original", "G (activations)", "R (activations)"],
            [[name, *(act.metrics[m][f"{k}_acc"] for m in ("raw", "g", "r"))] for k, name in subsets],
        )
        out["neurons"] = act.to_dict()
    return out
