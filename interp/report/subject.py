"""What a report is about: one checkpoint, and the run it belongs to when the run has a trajectory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interp import zoo
from interp.checkpoints import load, load_run, run_steps
from interp.errors import CheckpointError


@dataclass
class Subject:
    """The model a report describes: its final checkpoint, its run (None unless the run keeps more
    than one checkpoint), its metrics history, and its zoo record when it came from the zoo."""

    label: str
    checkpoint: object  # interp.checkpoints.Checkpoint
    run: object | None = None  # interp.checkpoints.Run with >= 2 checkpoints
    zoo_record: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def model(self):
        return self.checkpoint.model

    @property
    def task(self):
        return self.checkpoint.task

    @property
    def history(self) -> list[dict]:
        return list(self.checkpoint.history or (self.run.history if self.run is not None else []))

    @property
    def family(self) -> str:
        return self.checkpoint.model_config.family

    @property
    def has_trajectory(self) -> bool:
        return self.run is not None and len(self.run.steps) >= 2


def load_subject(target: str | None, device=None) -> Subject:
    """Resolve `target`: None (the default zoo entry), "zoo:NAME", a zoo name, a run directory, a
    .safetensors file or a .pth file of the progress-measures paper. A run directory (or .pth) with
    two or more checkpoints is also opened as a Run."""
    if target is None:
        target = f"zoo:{zoo.DEFAULT_ENTRY}"
    if target.startswith("zoo:") or (not Path(target).exists() and target in zoo.names()):
        name = target[4:] if target.startswith("zoo:") else target
        directory = zoo.path(name)
        record = zoo.info(name)
        label = f"zoo:{name}"
    else:
        directory, record, label = Path(target), None, str(target)
        if not directory.exists():
            raise CheckpointError(
                f"{target} does not exist. Pass a run directory, a .safetensors checkpoint, or zoo:NAME "
                f"(zoo entries: {', '.join(zoo.names())})."
            )
    ckpt = load(directory, device=device)
    run = None
    if (directory.is_dir() and len(run_steps(directory)) >= 2) or directory.suffix in (".pt", ".pth"):
        run = load_run(directory)  # a run directory with a trajectory, or a progress-measures .pth file
    if run is not None and len(run.steps) < 2:
        run = None
    return Subject(label=label, checkpoint=ckpt, run=run, zoo_record=record)
