"""Loading checkpoints and runs: `load` (one checkpoint) and `load_run` (every checkpoint, lazily).

Loading never unpickles: safetensors holds only tensors and the specs are JSON. `zoo:NAME` is resolved
to the entry's run directory by interp.checkpoints.catalog (storage never imports the zoo's code);
legacy torch files go to the importers, which read them with `weights_only=True` and an allow-list.
"""

from __future__ import annotations

import os

from interp.checkpoints import catalog
from interp.checkpoints.format import RUN_FILE, existing, load_tensors, parse_meta, read_run_json, run_steps
from interp.checkpoints.importers.progress_measures import import_progress_measures
from interp.checkpoints.run import Checkpoint, Run, model_from, task_from, train_config_from
from interp.errors import CheckpointError, SpecError
from interp.models import config_from_dict

LEGACY_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def load_weight_file(path: str | os.PathLike, device=None, history: list | None = None) -> Checkpoint:
    """Load one grokscope .safetensors checkpoint on its own."""
    path = existing(path)
    state, meta = load_tensors(path)
    m = parse_meta(meta, path)
    try:
        task = task_from(m["task_spec"], m["train_idx"])
    except SpecError as exc:
        raise CheckpointError(f"{path} has a task spec this grokscope rejects: {exc}") from exc
    model = model_from(m["model_config"], state, path, device)
    return Checkpoint(
        model=model,
        task=task,
        model_config=model.cfg,
        train_config=train_config_from(m["train_config"]),
        step=m["step"],
        history=history or [],
        metrics=m["metrics"],
        path=path,
    )


def load(path: str | os.PathLike, device=None, step: int | None = None) -> Checkpoint:
    """Load a checkpoint: a run directory (its last checkpoint, or `step`), a .safetensors weight file,
    a `zoo:NAME`, or a legacy torch file in the progress-measures layout (final model)."""
    path = catalog.resolve(path)
    path = existing(path)
    if path.is_dir():
        doc = read_run_json(path)
        steps = run_steps(path)
        if not steps:
            raise CheckpointError(f"{path} has a {RUN_FILE} but no checkpoints/step_XXXXXXX.safetensors files yet.")
        if step is None:
            step = max(steps)
        if step not in steps:
            raise CheckpointError(f"{path} has no checkpoint at step {step}; it has steps {list(steps)}.")
        return load_weight_file(steps[step], device=device, history=doc.get("history", []))
    if path.suffix in LEGACY_SUFFIXES:
        run = import_progress_measures(path)
        return run.load(run.steps[-1] if step is None else step, device=device)
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path}: unknown checkpoint type {path.suffix!r}. grokscope reads run directories, .safetensors "
            "checkpoints and (via import_progress_measures) .pth files of the progress-measures paper."
        )
    return load_weight_file(path, device=device)


def load_run(run_dir: str | os.PathLike) -> Run:
    """Every checkpoint of a run directory (or `zoo:NAME`), loaded lazily (a `.pth` file of the
    progress-measures paper is imported instead)."""
    path = existing(catalog.resolve(run_dir))
    if path.is_file():
        if path.suffix in (".pt", ".pth"):
            return import_progress_measures(path)
        raise CheckpointError(f"{path} is a file; load_run takes a run directory (use load() for one file).")
    doc = read_run_json(path)
    steps = run_steps(path)
    try:
        task = task_from(doc["task_spec"], doc.get("train_idx"))
        model_config = config_from_dict(doc["model_config"])
    except (SpecError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path / RUN_FILE} has specs this grokscope cannot read: {exc}") from exc

    def loader(step: int) -> dict:
        state, meta = load_tensors(steps[step])
        parse_meta(meta, steps[step])
        return state

    return Run(
        task,
        model_config,
        train_config_from(doc.get("train_config")),
        doc.get("history", []),
        list(steps),
        loader,
        path=path,
        status=doc.get("status", "unknown"),
    )
