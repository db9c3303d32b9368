"""Training on targets other than a task's own labels: given inputs with hard labels, or soft targets.

A `Targets` replaces a job's training split and labels: the engine fits `inputs` to `labels` with the
train config's loss or, when `probs` is set, with T^2 * CE(probs, softmax(logits / T)) (Hinton et al.
2015); evaluation stays that of the task (clean and noisy training examples, test), so a model fit to
someone else's labels reads as any run. Who builds the targets (a teacher, in the knowledge-distillation
study `studies.distillation`) records where they came from in `provenance`: run.json keeps it under
`extra["targets"]`, and a resume is refused when the `identity` part differs from what the run was
started with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.checkpoints.format import RUN_FILE, read_run_json
from interp.errors import CheckpointError, ShapeError, SpecError
from interp.results import to_jsonable

RECORD_KEY = "targets"  # run.json["extra"][RECORD_KEY]: the provenance of the targets a run was fit to


@dataclass
class Targets:
    """What a model is fit to instead of its task's training split and labels."""

    inputs: torch.Tensor  # [n, 2] the pairs trained on
    labels: torch.Tensor  # [n] hard targets
    probs: torch.Tensor | None = None  # [n, p] soft targets (one distribution per pair), matched at `temperature`
    temperature: float = 1.0
    provenance: dict = field(default_factory=dict)  # written to run.json["extra"]["targets"]
    identity: tuple[str, ...] = ()  # the provenance keys a resume must find unchanged
    describe: dict = field(
        default_factory=dict
    )  # the settings that name a run in a sweep ("targets", "temperature", ...)


def run_extra(targets: Targets | None) -> dict:
    """What run.json records beside the specs: the targets' provenance, for a model fit to given targets."""
    return {} if targets is None else {RECORD_KEY: to_jsonable(targets.provenance)}


def targets_record(run_dir) -> dict | None:
    """The provenance of the targets a run directory was fit to, or None for a run on its task's labels."""
    record = read_run_json(Path(run_dir)).get("extra", {}).get(RECORD_KEY)
    if record is not None and not isinstance(record, dict):
        raise CheckpointError(
            f"{Path(run_dir) / RUN_FILE}: field 'extra.{RECORD_KEY}' is a {type(record).__name__}; expected an object "
            "(where the targets came from). The file is damaged: restore it, or retrain the run."
        )
    return record


def check_targets(targets, task) -> None:
    """A job's Targets must match its task: pairs [n, 2] and labels [n] in range(p), probs [n, p] summing to 1."""
    if not isinstance(targets, Targets):
        raise SpecError(
            "train_many", "jobs", f"a 4th element of type {type(targets).__name__}", "a Targets (interp.train.targets) or None"
        )  # fmt: skip
    x, y, q, n, p = targets.inputs, targets.labels, targets.probs, len(targets.inputs), task.p
    if n == 0 or x.shape != (n, 2) or y.shape != (n,) or (q is not None and q.shape != (n, p)):
        raise ShapeError(
            f"Targets have inputs {list(x.shape)}, labels {list(y.shape)} and probs "
            f"{None if q is None else list(q.shape)}; expected [n, 2] pairs, [n] labels and None or [n, {p}] "
            "(one distribution over the task's p classes per pair), n > 0."
        )
    for name, v in (("inputs", x), ("labels", y)):
        if v.dtype != torch.long or int(v.min()) < 0 or int(v.max()) >= p:
            raise SpecError(
                "Targets",
                name,
                f"{v.dtype} values in [{int(v.min())}, {int(v.max())}]",
                f"int64 values in [0, {p - 1}]",
            )
    if q is not None and not torch.allclose(q.double().sum(-1), torch.ones(n, dtype=torch.float64), atol=1e-4):
        raise SpecError(
            "Targets", "probs", "rows that do not sum to 1", "one distribution per pair", "Pass softmax(z / T)."
        )
    t = targets.temperature
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
        raise SpecError("Targets", "temperature", t, "a finite positive number")


def check_resume(run_dir, targets: Targets | None) -> None:
    """Refuse to resume a run fit to other targets than the ones it was started with."""
    run_dir = Path(run_dir)
    stored = targets_record(run_dir) if (run_dir / RUN_FILE).exists() else None
    passed = run_extra(targets).get(RECORD_KEY)
    keys = targets.identity if targets is not None else ()

    def identity(record):
        return None if record is None else {k: record.get(k) for k in keys or sorted(record)}

    if identity(stored) != identity(passed):
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained with other targets than the ones passed (stored "
            f"{json.dumps(identity(stored))}, passed {json.dumps(identity(passed))}). Resume with the same targets "
            "(interp.train.targets.targets_record(run_dir) has what it was fit to), train into a new directory, "
            "or pass overwrite=True."
        )
