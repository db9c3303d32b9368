"""Report sections that need only `interp`: the task and model summary, and the training curves."""

from __future__ import annotations

from interp.metrics import evaluate
from interp.report import figures
from interp.report.html import Section
from interp.report.subject import Subject
from probes.memorization import learning_curves
from probes.memorization import phase as phase_of

CURVE_KEYS = ("train_clean", "train_noisy", "train_noisy_true", "test")
CURVE_NAMES = {
    "train": "train (given labels)",
    "train_clean": "clean train",
    "train_noisy": "noisy train (given labels)",
    "train_noisy_true": "noisy train (true labels)",
    "test": "test",
    "train_true": "all train (true labels)",
}


def _config_rows(d: dict) -> list[list]:
    return [[k, v if isinstance(v, (int, float, str, bool)) or v is None else str(v)] for k, v in d.items()]


def summary(subject: Subject, sec: Section) -> dict:
    """The task, the model and how it was trained; final metrics; the zoo record when there is one."""
    ck = subject.checkpoint
    task, model = subject.task, subject.model
    spec = task.spec
    noise = (
        f", {spec.label_noise:.0%} label noise ({spec.noise_kind}; realised: {task.n_noisy} of {task.n_train} "
        f"training labels, {task.noise_fraction:.1%})"
        if spec.label_noise
        else ""
    )
    random = ", random labels" if spec.random_labels else ""
    sec.text(
        f"Task: {spec.op} mod {task.p}, {task.n_train} training and {task.n_test} test pairs "
        f"(train fraction {spec.frac_train:g}{noise}{random}, seed {spec.seed}). "
        f"Model: {ck.model_config.family}, {ck.model_config.n_params:,} parameters, {model.n_neurons} hidden neurons. "
        f"Checkpoint step {ck.step}"
        + (f"; the run keeps {len(subject.run.steps)} checkpoints." if subject.has_trajectory else ".")
    )
    if subject.zoo_record:
        rec = subject.zoo_record
        sec.text(f"Zoo entry {rec['name']}: {rec['description']} Rebuild with `{rec['command']}`.", cls="note")
    if not getattr(task, "split_known", True):  # an imported model whose train/test split was not recorded
        sec.text(f"{task!r}: every metric below is measured on all pairs.", cls="note")
    metrics = evaluate(model, task)
    rows = [
        [CURVE_NAMES.get(s, s), metrics.get(f"{s}_acc"), metrics.get(f"{s}_loss")]
        for s in ("train", *CURVE_KEYS, "train_true")
    ]
    sec.table(["subset", "accuracy", "cross-entropy"], rows)

    phase = (
        "random labels" if spec.random_labels else phase_of(metrics["train_acc"], metrics["test_acc"], spec.label_noise)
    )
    sec.text(f"Phase (Doshi et al.'s accuracy rules, 90% cut): {phase}.")
    tc = ck.train_config
    tc_dict = tc.to_dict() if hasattr(tc, "to_dict") else (tc or {})
    sec.raw("<details><summary>Full specs</summary>")
    sec.table(["task spec", "value"], _config_rows(spec.to_dict()))
    sec.table(["model config", "value"], _config_rows(ck.model_config.to_dict()))
    if tc_dict:
        sec.table(["train config", "value"], _config_rows(tc_dict))
    sec.raw("</details>")
    return {
        "label": subject.label,
        "task_spec": spec.to_dict(),
        "model_config": ck.model_config.to_dict(),
        "train_config": tc_dict,
        "step": ck.step,
        "n_params": ck.model_config.n_params,
        "n_train": task.n_train,
        "n_test": task.n_test,
        "n_noisy": task.n_noisy,
        "noise_fraction": task.noise_fraction,
        "metrics": metrics,
        "phase": phase,
        "zoo": subject.zoo_record["name"] if subject.zoo_record else None,
    }


def training_curves(subject: Subject, sec: Section) -> dict:
    """Accuracy and loss on clean train, noisy train (given and true labels) and test over training,
    log-scaled steps (probes.memorization.learning_curves), and when each first reaches 99%."""
    history = [h for h in subject.history if "step" in h]
    if len(history) < 2:
        sec.not_applicable("No metrics history was saved with this checkpoint, so there are no training curves.")
        return {"applicable": False, "reason": "no history"}
    curves = learning_curves(history, threshold=0.99)
    keys = [k for k in CURVE_KEYS if k in curves.acc and any(v == v for v in curves.acc[k])]
    x = [max(s, 1) for s in curves.steps]  # step 0 drawn at 1 on the log axis
    colors = {CURVE_NAMES[k]: figures.PALETTE[k] for k in keys}
    sec.text(
        "Accuracy and cross-entropy over training (step 0 drawn at step 1). With label noise, the noisy "
        "training examples are scored against the labels given (memorisation) and against their true labels."
    )
    acc = {CURVE_NAMES[k]: curves.acc[k] for k in keys}
    loss = {CURVE_NAMES[k]: curves.loss[k] for k in keys}
    sec.figure(figures.lines("Accuracy over training", x, acc, y_title="accuracy", log_x=True, colors=colors))
    sec.figure(
        figures.lines("Loss over training", x, loss, y_title="cross-entropy", log_x=True, log_y=True, colors=colors)
    )
    if "weight_norm" in history[0]:
        sec.figure(
            figures.lines(
                "Total weight norm",
                x,
                {"weight norm": [h.get("weight_norm") for h in history]},
                y_title="||θ||₂",
                log_x=True,
            )
        )
    first = curves.first_reach
    sec.table(
        ["subset", "first step at >= 99% accuracy"],
        [[CURVE_NAMES.get(k, k), first.get(k)] for k in ("train", *keys) if k in first],
    )
    if "train_noisy" in keys:
        sec.text(
            f"Clean training examples reach 99% at step {first.get('train_clean')}, noisy ones (given labels) at step "
            f"{first.get('train_noisy')} (a dash: never within the recorded history)."
        )
    return curves.to_dict()
