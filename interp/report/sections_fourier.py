"""Report sections drawn from `probes`: neuron spectra and classes, key frequencies, frequency filtration."""

from __future__ import annotations

import math

import torch

from interp.report import figures
from interp.report.html import Section
from interp.report.subject import Subject
from probes.extraction import frequency_filtration as filtration
from probes.fourier import KEY_RULES, classify_neurons, frequency_scores
from probes.fourier import key_frequencies as key_freqs
from probes.fourier import neuron_spectra as spectra_of

MAX_HEATMAP_ROWS = 512  # wider models show an evenly spaced sample of their sorted neurons


def cached(subject: Subject, key: str, compute):
    """Compute a probe result once per report (sections share the neuron classification)."""
    if key not in subject.extra:
        subject.extra[key] = compute()
    return subject.extra[key]


def classification(subject: Subject):
    return cached(subject, "classification", lambda: classify_neurons(subject.model, subject.task))


def neuron_spectra(subject: Subject, sec: Section) -> dict:
    """Per-neuron spectra (sorted by dominant frequency), the IPR histogram with the periodic /
    memorising cut, and periodic neurons per dominant frequency."""
    spec = cached(subject, "spectra", lambda: spectra_of(subject.model))
    cls = classification(subject)
    n, F = spec.power.shape
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
            "Neuron Fourier spectra (share of power per frequency)",
            spec.power[order].tolist(),
            x=list(range(F)),
            y=[f"n{int(i)}" for i in order],
            x_title="frequency k",
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
            "Neurons per dominant frequency",
            list(range(F)),
            {"all neurons": all_counts, "periodic neurons": cls.freq_counts},
            x_title="dominant frequency k",
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
    model = subject.model
    out, scores = {}, {}
    for rule in KEY_RULES:
        out[rule] = key_freqs(model, subject.task, rule=rule)
        s = frequency_scores(model, rule=rule)
        top = float(s.max())
        scores[rule] = (s / top if top > 0 else s).tolist()
    F = len(next(iter(scores.values())))
    sec.text(
        "A key frequency scores above a quarter of the strongest under its rule (Nanda et al.). The rules "
        "usually agree on a trained, generalising network; under memorisation they scatter."
    )
    sec.figure(
        figures.bars(
            "Frequency scores by rule (normalised to the maximum)",
            list(range(F)),
            scores,
            x_title="frequency k",
            y_title="score / max",
        )
    )
    sec.table(
        ["rule", "key frequencies (strongest first)", "how"],
        [[r, ", ".join(map(str, out[r])) or "none", KEY_RULES[r]] for r in KEY_RULES],
        left=3,
    )
    return {"key_frequencies": out, "scores": scores, "rules": dict(KEY_RULES)}


FILTRATION_SUBSETS = (
    ("test", "test"),
    ("train_clean", "clean train"),
    ("train_noisy", "noisy train (given labels)"),
    ("train_noisy_true", "noisy train (true labels)"),
)


def frequency_filtration(subject: Subject, sec: Section) -> dict:
    """Accuracy of the original network, its dominant-frequency part G and the residual R on test,
    clean and noisy training data (the coexistence paper's frequency filtration)."""
    res = filtration(subject.model, subject.task)
    subsets = [
        (k, name)
        for k, name in FILTRATION_SUBSETS
        if res.metrics["raw"].get(f"{k}_acc") == res.metrics["raw"].get(f"{k}_acc")
    ]
    series = {
        label: [res.metrics[key][f"{k}_acc"] for k, _ in subsets]
        for key, label in (("raw", "original"), ("g", "G (dominant frequencies)"), ("r", "R (residual)"))
    }
    colors = {
        "original": figures.PALETTE["full"],
        "G (dominant frequencies)": figures.PALETTE["g"],
        "R (residual)": figures.PALETTE["r"],
    }
    fig = figures.bars(
        "Accuracy of the original network, G and R",
        [name for _, name in subsets],
        series,
        y_title="accuracy",
        colors=colors,
    )
    sec.text(f"Method: {res.method}. G holds {res.g_weight_fraction:.1%} of the filtered weights' squared norm.")
    sec.figure(fig)
    sec.table(
        ["subset", "original", "G", "R"],
        [[name, *(res.metrics[m][f"{k}_acc"] for m in ("raw", "g", "r"))] for k, name in subsets],
    )
    raw_t, g_t = res.metrics["raw"]["test_acc"], res.metrics["g"]["test_acc"]
    sec.text(f"Test accuracy: original {raw_t:.1%}, G {g_t:.1%}, R {res.metrics['r']['test_acc']:.1%}.")
    out = res.to_dict()
    if subject.family == "transformer":
        act = filtration(subject.model, subject.task, parts=("neurons",))
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
