"""Report section drawn from `probes.representations`: Chughtai et al.'s per-irrep measurements."""

from __future__ import annotations

from interp.report import figures
from interp.report.html import Section
from interp.report.sections_fourier import basis_of
from interp.report.subject import Subject
from probes.representations import MEASURES, rep_metrics

SHARES = ("x_embed", "y_embed", "unembed", "hidden_x", "hidden_y", "hidden_xy")


def representations(subject: Subject, sec: Section) -> dict:
    """The share of the embeddings, the unembedding and the hidden activations in each irrep of the
    task's group, the logit trace similarity with chi(x y z^-1), restricted and excluded losses, and
    the key irreps (Chughtai et al. 2023)."""
    task = subject.task
    if basis_of(subject) != "group":
        sec.not_applicable(
            f"Chughtai et al.'s measurements are defined on a group; {task.spec.op} is no group's operation."
        )
        return {"applicable": False, "reason": f"op {task.spec.op}"}
    r = rep_metrics(subject.model, task)
    names = list(r.irreps)
    sec.text(
        f"Group {r.group}; {r.notes}. Key irreps (logit similarity > 0.005, Chughtai et al.): "
        f"{', '.join(r.key_irreps) or 'none'}; by embedding norm: {', '.join(r.key_irreps_by_embedding) or 'none'}. "
        f"The trace tensors explain {r.logit_explained:.1%} of the centred logits."
    )
    shares = [[r.irreps[n][m] for m in SHARES] for n in names]
    fig = figures.heatmap(
        "Share of each part of the network in each irrep", shares, x=list(SHARES), y=names, x_title="", y_title="irrep"
    )
    fig.data[0].update(zmin=0, zmax=1, texttemplate="%{z:.2f}")
    sec.figure(fig)
    sec.figure(
        figures.bars(
            "Logit trace similarity with chi(x y z^-1)",
            names,
            {"similarity": [r.irreps[n]["logit_similarity"] for n in names]},
            x_title="irrep",
            y_title="cosine",
        )
    )
    fig = figures.bars(
        "Restricted (all pairs) and excluded (training pairs) loss per irrep",
        names,
        {
            "restricted to the irrep": [r.irreps[n]["restricted_loss"] for n in names],
            "irrep excluded": [r.irreps[n]["excluded_loss"] for n in names],
        },
        x_title="irrep",
        y_title="mean cross-entropy",
    )
    fig.add_hline(y=r.chance_loss, line_dash="dot", annotation_text="chance (log |G|)")
    fig.add_hline(y=r.loss, line_dash="dash", annotation_text="the model's loss")
    sec.figure(fig)
    sec.table(
        ["measure", "value"],
        [
            ["test accuracy", r.test_acc],
            ["loss (all pairs)", r.loss],
            ["neuron-path loss (all pairs)", r.neuron_path_loss],
            ["restricted loss, key irreps", r.restricted_loss],
            ["excluded loss, key irreps", r.excluded_loss],
            ["chance (log |G|)", r.chance_loss],
        ],
    )
    out = r.to_dict()
    out["measures"] = list(MEASURES)
    return out
