"""What a loaded checkpoint is: `Checkpoint` (one model with its task and specs) and `Run` (every
checkpoint of a run, loaded lazily), and how specs read from disk become objects again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.models import Model, ModelConfig, build_model, config_from_dict, load_state_dict_checked
from interp.tasks import Task, TaskSpec
from interp.train_config import TrainConfig


@dataclass
class Checkpoint:
    """One loaded checkpoint: the model, its task and configs, the step and the run's history."""

    model: Model
    task: Task
    model_config: ModelConfig
    train_config: object
    step: int
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def task_spec(self) -> TaskSpec | None:
        """The task's spec (None for a model trained on other data: its `task` is a DataSpec)."""
        spec = getattr(self.task, "spec", None)
        return spec if isinstance(spec, TaskSpec) else None

    def __repr__(self) -> str:
        return f"Checkpoint({type(self.model).__name__}, {self.task!r}, step={self.step}, path={str(self.path)!r})"


def train_config_from(d: dict | None):
    """A TrainConfig from its stored dict; an older or newer config this grokscope cannot build stays a dict."""
    if d is None:
        return None
    try:
        return TrainConfig.from_dict(d)
    except (SpecError, TypeError):
        return d


def task_from(task_spec: dict, train_idx=None) -> Task:
    """The Task of a stored spec (and, when the split was given explicitly, its training indices)."""
    spec = TaskSpec.from_dict(task_spec)
    if train_idx is None:
        return Task(spec)
    return Task.from_split(spec, torch.tensor(train_idx, dtype=torch.long))


def model_from(model_config: dict, state: dict, path, device=None) -> Model:
    """A model built from a stored config and filled with `state`, in eval mode (on `device` if given)."""
    try:
        cfg = config_from_dict(model_config)
    except (SpecError, TypeError) as exc:
        raise CheckpointError(f"{path} has a model config this grokscope cannot build: {exc}") from exc
    model = build_model(cfg, seed=None)
    try:
        load_state_dict_checked(model, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    if device is not None:
        model = model.to(resolve_device(device))
    return model.eval()


class Run:
    """Every checkpoint of a run, loaded lazily: `run.steps`, `run.load(step)`, `run[i]`, `for ckpt in run`."""

    def __init__(
        self,
        task: Task,
        model_config: ModelConfig,
        train_config,
        history: list[dict],
        steps: list[int],
        loader: Callable[[int], dict],
        path: Path | None = None,
        status: str = "complete",
    ):
        self.task, self.model_config, self.train_config = task, model_config, train_config
        self.history, self.steps, self._loader = history, list(steps), loader
        self.path, self.status = path, status

    def load(self, step: int, device=None) -> Checkpoint:
        """The checkpoint at `step`."""
        if step not in self.steps:
            raise CheckpointError(f"this run has no checkpoint at step {step}; it has steps {self.steps}.")
        model = model_from(self.model_config.to_dict(), self._loader(step), self.path, device)
        metrics = next((h for h in self.history if h.get("step") == step), {})
        return Checkpoint(
            model, self.task, self.model_config, self.train_config, step, self.history, metrics, self.path
        )

    def models(self, device=None) -> Iterator[tuple[int, Model]]:
        """(step, model) for every checkpoint, one at a time."""
        for s in self.steps:
            yield s, self.load(s, device=device).model

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Checkpoint:
        return self.load(self.steps[i])

    def __iter__(self) -> Iterator[Checkpoint]:
        for s in self.steps:
            yield self.load(s)

    @property
    def final(self) -> Checkpoint:
        return self.load(self.steps[-1])

    def __repr__(self) -> str:
        return f"Run({self.task!r}, {type(self.model_config).__name__}, {len(self.steps)} checkpoints, status={self.status!r})"
