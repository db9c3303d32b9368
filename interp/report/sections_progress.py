"""Report section drawn from `probes.progress`: Nanda et al.'s progress measures over a run's checkpoints."""

from __future__ import annotations

from interp.report import figures
from interp.report.html import Section
from interp.report.subject import Subject
from probes.progress import progress_measures as measures


def progress_measures(subject: Subject, sec: Section) -> dict:
    """Restricted and excluded loss, train/test loss, Gini of the embedding and unembedding Fourier
    norms and the sum of squared weights at every checkpoint (log-scaled steps)."""
    if not subject.has_trajectory:
        sec.not_applicable(
            "Progress measures need a trajectory of checkpoints; this run keeps only one. Train with "
            "TrainConfig(checkpoint_every=..., checkpoint_log=...) or open the zoo's grok-transformer."
        )
        return {"applicable": False, "reason": "one checkpoint"}
    if subject.task.spec.op not in ("x+y", "x-y"):
        sec.not_applicable(
            f"Restricted and excluded loss are defined for modular addition and subtraction; this task is {subject.task.spec.op}."
        )
        return {"applicable": False, "reason": f"op {subject.task.spec.op}"}
    res = measures(subject.run)
    sec.text(
        f"Key frequencies (from the final checkpoint, {res.key_rule}): {', '.join(map(str, res.key_frequencies))}. "
        "Restricted loss keeps only the key-frequency directions of the logits (it falls when the circuit forms); "
        "excluded loss removes them on the training set (it rises while memorisation is being replaced). "
        f"{len(res.steps)} checkpoints; step 0 drawn at 1."
    )
    _draw(res, sec)
    marks = {
        "restricted_loss_below_0.1": res.first_step_below("restricted_loss", 0.1),
        "test_loss_below_0.01": res.first_step_below("test_loss", 0.01),
        "train_loss_below_0.01": res.first_step_below("train_loss", 0.01),
    }
    sec.table(["first checkpoint where", "step"], [[k.replace("_", " "), v] for k, v in marks.items()])
    out = res.to_dict()
    out["first_steps"] = marks
    return out


def _draw(res, sec: Section) -> None:
    """The three figures over log-scaled steps: losses, Gini of the Fourier norms, sum of squared weights."""
    x = [max(s, 1) for s in res.steps]
    sec.figure(
        figures.lines(
            "Losses over training",
            x,
            {
                "train": res.train_loss,
                "test": res.test_loss,
                "restricted": res.restricted_loss,
                "excluded": res.excluded_loss,
            },
            y_title="cross-entropy",
            log_x=True,
            log_y=True,
            colors={"restricted": "#2ca02c", "excluded": "#d62728", "train": "#1f77b4", "test": "#9467bd"},
        )
    )
    sec.figure(
        figures.lines(
            "Gini of Fourier norms",
            x,
            {"embedding": res.gini_embedding, "unembedding": res.gini_unembedding},
            y_title="Gini",
            log_x=True,
        )
    )
    sec.figure(
        figures.lines(
            "Sum of squared weights", x, {"sum of squared weights": res.sum_sq_weights}, y_title="Σ w²", log_x=True
        )
    )
