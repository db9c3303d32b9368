"""The on-disk format: safetensors weights plus JSON specs.

A run directory holds `run.json` (format version, task spec, model config, train config, library
versions, metrics history, status) and `checkpoints/step_XXXXXXX.safetensors`. Each weight file also
carries the JSON specs in its safetensors metadata, so a single file loads on its own; its metadata
says `format="pt"`, Hugging Face's convention, so any safetensors loader reads it (files written
before that say `format="grokscope"` and still load). `save_pretrained` writes Hugging Face's
checkpoint directory (`model.safetensors` + `config.json`) with the task in config.json. Every write
is atomic (interp.files).
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from interp.data_spec import DataSpec
from interp.errors import CheckpointError
from interp.files import atomic_write_json, load_tensors, save_tensors  # noqa: F401  (load_tensors: re-exported)
from interp.models import Model, ModelConfig
from interp.models.pretrained import SAFETENSORS_FORMAT
from interp.results import to_jsonable
from interp.tasks import Task, TaskSpec

FORMAT = SAFETENSORS_FORMAT  # the weight files' safetensors metadata "format" (Hugging Face's "pt")
LEGACY_FORMATS = ("grokscope",)  # what weight files said before; still read
RUN_FORMAT = "grokscope"  # run.json's "format"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d{7,})\.safetensors$")


class UnknownSplitTask(Task):
    """A task whose train/test split was not recorded (e.g. a published model trained on an unseeded
    random split): training and test sets are both the whole table, so every metric is on all pairs.
    `split_known` is False and `source` says where the model came from."""

    split_known = False

    def __init__(self, spec: TaskSpec, source: str = "an unrecorded split"):
        n = len(Task(spec.replace(frac_train=1.0, label_noise=0.0, random_labels=False)).inputs)
        everything = np.arange(n)
        super().__init__(spec, split=(everything, everything))
        self.source = source

    def __repr__(self) -> str:
        return (
            f"Task({self.spec.op!r} mod {self.p}, split unknown ({self.source}): "
            f"train and test are all {len(self.inputs)} pairs)"
        )


def library_versions() -> dict:
    out = {"torch": torch.__version__}
    for dist in ("grokscope", "transformer-lens"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """run_dir/checkpoints/step_XXXXXXX.safetensors"""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{int(step):07d}.safetensors"


def task_meta(task_or_spec) -> dict:
    """How a task is stored: {"task_spec": ...}, plus "train_idx" for a given split or
    "split": "unknown" (and its "split_source") for an `UnknownSplitTask`; training data other than an
    arithmetic task (a `DataSpec`, or data whose `spec` is one) as {"task_spec": None, "data": ...}."""
    if isinstance(getattr(task_or_spec, "spec", None), DataSpec):
        return {"task_spec": None, "data": task_or_spec.spec.to_dict()}
    if isinstance(task_or_spec, UnknownSplitTask):
        return {"task_spec": task_or_spec.spec.to_dict(), "split": "unknown", "split_source": task_or_spec.source}
    if isinstance(task_or_spec, Task):
        meta = {"task_spec": task_or_spec.spec.to_dict()}
        if getattr(task_or_spec, "custom_split", False):
            meta["train_idx"] = task_or_spec.train_idx.tolist()
        return meta
    if isinstance(task_or_spec, TaskSpec):
        return {"task_spec": task_or_spec.to_dict()}
    raise TypeError(f"expected a Task, TaskSpec or DataSpec, got {type(task_or_spec).__name__}")


def config_dict(config) -> dict | None:
    """A stored train config: a TrainConfig's to_dict(), or a dict kept as it is (imported runs)."""
    return config.to_dict() if hasattr(config, "to_dict") else config


def save_weights(
    path: str | os.PathLike,
    model: Model,
    *,
    model_config: ModelConfig | None = None,
    task_spec: TaskSpec | Task,
    train_config=None,
    step: int = 0,
    metrics: dict | None = None,
) -> Path:
    """Atomically write one checkpoint: the model's state dict plus its specs in the metadata."""
    model_config = model_config or model.cfg
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(model_config.to_dict()),
        "train_config": json.dumps(to_jsonable(config_dict(train_config))),
        "step": str(int(step)),
        "metrics": json.dumps(to_jsonable(metrics or {})),
    }
    for k, v in task_meta(task_spec).items():
        meta[k] = json.dumps(v)
    return save_tensors(path, model.state_dict(), meta)


def write_run_json(
    run_dir: str | os.PathLike,
    *,
    task_spec: TaskSpec | Task,
    model_config: ModelConfig,
    train_config=None,
    history: list[dict] | None = None,
    status: str = "running",
    extra: dict | None = None,
) -> Path:
    """Atomically (re)write run_dir/run.json."""
    doc = {
        "format": RUN_FORMAT,
        "format_version": FORMAT_VERSION,
        **task_meta(task_spec),
        "model_config": model_config.to_dict(),
        "train_config": to_jsonable(config_dict(train_config)),
        "versions": library_versions(),
        "status": status,
        "history": history or [],
        "extra": extra or {},
    }
    return atomic_write_json(Path(run_dir) / RUN_FILE, doc)


def save(
    path: str | os.PathLike, model: Model, task: Task | TaskSpec, train_config=None, step: int = 0, history=None
) -> Path:
    """Save a model as a one-checkpoint run directory (run.json + checkpoints/step_XXXXXXX.safetensors)."""
    write_run_json(
        path, task_spec=task, model_config=model.cfg, train_config=train_config, history=history, status="complete"
    )
    save_weights(checkpoint_path(path, step), model, task_spec=task, train_config=train_config, step=step)
    return Path(path)


def save_pretrained(
    directory: str | os.PathLike, model: Model, task: Task | TaskSpec | None = None, *, train_config=None, step: int = 0
) -> Path:
    """Hugging Face's checkpoint directory (`model.save_pretrained(directory)`: model.safetensors and
    config.json) with the task, train config and step in config.json, so `load(directory)` gives a Checkpoint."""
    extra = {"format_version": FORMAT_VERSION, "step": int(step), "train_config": config_dict(train_config)}
    if task is not None:
        extra.update(task_meta(task))
    return model.save_pretrained(directory, extra=to_jsonable(extra))


def existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"no such file or directory: {path}. Pass a run directory (holding run.json), a "
            "checkpoints/step_XXXXXXX.safetensors file, or a zoo name as zoo:NAME."
        )
    return path


def is_grokscope_meta(meta: dict) -> bool:
    """True for the safetensors metadata of a grokscope weight file (format "pt" or the older "grokscope")."""
    return meta.get("format") in (FORMAT, *LEGACY_FORMATS) and "model_config" in meta and "task_spec" in meta


def parse_meta(meta: dict, path: Path) -> dict:
    if not is_grokscope_meta(meta):
        raise CheckpointError(
            f"{path} is a safetensors file but not a grokscope checkpoint (its metadata has no grokscope specs: "
            "format, model_config, task_spec). If it holds a TransformerLens HookedTransformer state dict, load it "
            "with interp.checkpoints.load(path, layout='hooked_transformer', config=..., task=...)."
        )
    version = int(meta.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer grokscope (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}). Upgrade grokscope: pip install -U grokscope."
        )
    try:
        out = {k: json.loads(meta[k]) for k in ("task_spec", "model_config", "train_config", "metrics")}
        for k in ("train_idx", "split", "split_source", "data"):
            out[k] = json.loads(meta[k]) if k in meta else None
        out["step"] = int(meta["step"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path} has damaged grokscope metadata ({exc}). Load another checkpoint of the run."
        ) from exc
    return out


def read_run_json(run_dir: Path) -> dict:
    f = run_dir / RUN_FILE
    if not f.exists():
        raise CheckpointError(
            f"{run_dir} is a folder but not a grokscope run directory (no {RUN_FILE}). Pass the folder "
            "that `train(..., out=...)` or `interp-train` wrote."
        )
    try:
        doc = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{f} is not valid JSON ({exc}); the file is damaged.") from exc
    if doc.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{f} is not a grokscope run file (no format={RUN_FORMAT!r}).")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{f} was written by a newer grokscope; upgrade: pip install -U grokscope.")
    return doc


def run_steps(run_dir: str | os.PathLike) -> dict[int, Path]:
    """{step: weight file} of a run directory, sorted by step."""
    ck = Path(run_dir) / CHECKPOINT_DIR
    found = {}
    if ck.is_dir():
        for f in ck.iterdir():
            m = _STEP_RE.match(f.name)
            if m:
                found[int(m.group(1))] = f
    return dict(sorted(found.items()))
