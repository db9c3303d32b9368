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
from interp.files import (  # noqa: F401  (load_tensors: re-exported)
    atomic_write_json,
    load_tensors,
    remove_stale_temp_files,
    save_tensors,
)
from interp.locks import RunLock
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
    """Save a model as a one-checkpoint run directory (run.json + checkpoints/step_XXXXXXX.safetensors),
    under the directory's writer lock (interp.locks: RunLockedError while another process trains there)."""
    with RunLock(path):
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
    version = meta_int(meta, "format_version", path, default=0)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer grokscope (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}). Upgrade grokscope: pip install -U grokscope."
        )
    out = {
        "task_spec": meta_json(meta, "task_spec", path, (dict, type(None))),  # None: a run on other data
        "model_config": meta_json(meta, "model_config", path, dict),
        "train_config": meta_json(meta, "train_config", path, (dict, type(None))),
        "metrics": meta_json(meta, "metrics", path, dict),
        "train_idx": meta_json(meta, "train_idx", path, (list, type(None)), default=None),
        "split": meta_json(meta, "split", path, (str, type(None)), default=None),
        "split_source": meta_json(meta, "split_source", path, (str, type(None)), default=None),
        "data": meta_json(meta, "data", path, (dict, type(None)), default=None),  # interp.data_spec.DataSpec
        "step": meta_int(meta, "step", path),
    }
    if out["train_idx"] is not None and not all(_is_int(i) for i in out["train_idx"]):
        raise CheckpointError(f"{path}: metadata field 'train_idx' holds non-integers; the file is damaged.")
    return out


_MISSING = object()
_KINDS = {dict: "an object", list: "a list", str: "a string", type(None): "null"}


def meta_json(meta: dict, key: str, path, kinds, default=_MISSING):
    """The JSON value of safetensors metadata field `key`, of type `kinds`; CheckpointError naming the field."""
    if key not in meta:
        if default is not _MISSING:
            return default
        raise CheckpointError(f"{path} has no metadata field {key!r}; the file is damaged. Load another checkpoint.")
    try:
        value = json.loads(meta[key])
    except ValueError as exc:
        raise CheckpointError(f"{path}: metadata field {key!r} is not JSON ({exc}); the file is damaged.") from exc
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds):
        expected = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
        raise CheckpointError(
            f"{path}: metadata field {key!r} is {_short(value)}; expected {expected}. The file is damaged."
        )
    return value


def meta_int(meta: dict, key: str, path, default=_MISSING) -> int:
    """Safetensors metadata field `key` as a non-negative int; CheckpointError naming the field."""
    if key not in meta and default is not _MISSING:
        return default
    text = meta.get(key)
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise CheckpointError(
            f"{path}: metadata field {key!r} is {text!r}; expected a non-negative integer. The file is damaged."
        )
    return int(text)


def read_run_json(run_dir: Path) -> dict:
    """run.json of a run directory, checked (CheckpointError naming the file and the field); removes the temp
    files that killed writers left there (interp.files.remove_stale_temp_files: never a live writer's)."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / "state"):
        remove_stale_temp_files(folder)
    f = run_dir / RUN_FILE
    if not f.exists():
        raise CheckpointError(
            f"{run_dir} is a folder but not a grokscope run directory (no {RUN_FILE}). Pass the folder "
            "that `train(..., out=...)` or `interp-train` wrote."
        )
    try:
        doc = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{f} is not valid JSON ({exc}); the file is damaged.") from exc
    except OSError as exc:
        raise CheckpointError(f"{f} cannot be read ({exc.strerror or exc}).") from exc
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        got = f"a JSON {type(doc).__name__}" if not isinstance(doc, dict) else f"format={doc.get('format')!r}"
        raise CheckpointError(
            f"{f} is not a grokscope run file ({got}; expected a JSON object with format={RUN_FORMAT!r}). "
            "The file is damaged or another program's: restore it, or retrain the run."
        )
    check_run_doc(doc, f)
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{f} was written by a newer grokscope; upgrade: pip install -U grokscope.")
    return doc


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number_or_null(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


# run.json's fields: (required, check, what is expected)
RUN_FIELDS = {
    "format_version": (False, lambda v: _is_int(v) and v >= 0, "a non-negative int"),
    "task_spec": (
        True,
        lambda v: v is None or isinstance(v, dict),
        "an object (the TaskSpec's fields), or null with 'data'",
    ),
    "data": (False, lambda v: v is None or isinstance(v, dict), "an object (the DataSpec's fields) or null"),
    "model_config": (True, lambda v: isinstance(v, dict), "an object (the model config's fields)"),
    "train_config": (False, lambda v: v is None or isinstance(v, dict), "an object (the TrainConfig's fields) or null"),
    "status": (False, lambda v: isinstance(v, str), 'a string ("running", "complete", "diverged")'),
    "history": (False, lambda v: isinstance(v, list), "a list of evaluations"),
    "extra": (False, lambda v: isinstance(v, dict), "an object"),
    "versions": (False, lambda v: isinstance(v, dict), "an object"),
    "train_idx": (False, lambda v: v is None or (isinstance(v, list) and all(_is_int(i) for i in v)), "a list of ints"),
    "split": (False, lambda v: v is None or isinstance(v, str), "a string"),
    "split_source": (False, lambda v: v is None or isinstance(v, str), "a string"),
}


def check_run_doc(doc: dict, where) -> None:
    """CheckpointError naming the file and the first field of run.json whose type or shape is wrong."""
    for name, (required, ok, expected) in RUN_FIELDS.items():
        if name not in doc:
            if required:
                raise CheckpointError(f"{where} has no field {name!r} (expected {expected}); the file is damaged.")
            continue
        if not ok(doc[name]):
            raise CheckpointError(
                f"{where}: field {name!r} is {_short(doc[name])}; expected {expected}. The file is damaged or was "
                "edited: restore it, or retrain the run."
            )
    if doc["task_spec"] is None and not isinstance(doc.get("data"), dict):
        raise CheckpointError(
            f"{where}: field 'task_spec' is null and there is no 'data' (what a run on other data was trained on). "
            "The file is damaged or was edited: restore it, or retrain the run."
        )
    check_history(doc.get("history", []), where)


def check_history(history, where) -> None:
    """CheckpointError naming the first evaluation of a stored history that is not {"step": int, metric: number}."""
    if not isinstance(history, list):
        raise CheckpointError(f"{where}: the history is {_short(history)}; expected a list of evaluations.")
    for k, entry in enumerate(history):
        problem = None
        if not isinstance(entry, dict):
            problem = f"is {_short(entry)}; expected an object with 'step' and metrics"
        elif not (_is_int(entry.get("step")) and entry["step"] >= 0):
            problem = f"has step={_short(entry.get('step'))}; expected a non-negative int"
        else:
            bad = next((m for m, v in entry.items() if not _is_number_or_null(v)), None)
            if bad is not None:
                problem = f"has {bad}={_short(entry[bad])}; expected a number or null"
        if problem:
            raise CheckpointError(
                f"{where}: history[{k}] {problem}. The file is damaged or was edited: restore it, or retrain the run."
            )


def _short(v) -> str:
    text = json.dumps(v)
    return f"a {type(v).__name__} ({text[:40] + '...' if len(text) > 40 else text})"


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
