"""The on-disk format: safetensors weights plus JSON specs.

A run directory holds `run.json` (format version, task spec, model config, train config, library
versions, metrics history, status) and `checkpoints/step_XXXXXXX.safetensors`. Each weight file also
carries the JSON specs in its safetensors metadata, so a single file loads on its own. Every write is
atomic (interp.checkpoints.atomic).
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from interp.checkpoints.atomic import atomic_write_bytes, atomic_write_json
from interp.errors import CheckpointError
from interp.models import Model, ModelConfig
from interp.results import to_jsonable
from interp.tasks import Task, TaskSpec

FORMAT = "grokscope"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d{7,})\.safetensors$")




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


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are copied to contiguous CPU memory)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, safetensors_bytes(flat, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors, metadata), with a clear error for missing or broken files."""
    path = existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated / corrupt headers
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). It may be truncated or "
            "corrupted (an interrupted copy?): re-copy it, or load an earlier checkpoint of the run."
        ) from exc
    return tensors, meta


def _task_meta(task_or_spec) -> dict:
    if isinstance(task_or_spec, Task):
        meta = {"task_spec": task_or_spec.spec.to_dict()}
        if getattr(task_or_spec, "custom_split", False):
            meta["train_idx"] = task_or_spec.train_idx.tolist()
        return meta
    if isinstance(task_or_spec, TaskSpec):
        return {"task_spec": task_or_spec.to_dict()}
    raise TypeError(f"expected a Task or TaskSpec, got {type(task_or_spec).__name__}")


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
        "train_config": json.dumps(train_config.to_dict() if train_config is not None else None),
        "step": str(int(step)),
        "metrics": json.dumps(to_jsonable(metrics or {})),
    }
    for k, v in _task_meta(task_spec).items():
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
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **_task_meta(task_spec),
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
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


def existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"no such file or directory: {path}. Pass a run directory (holding run.json), a "
            "checkpoints/step_XXXXXXX.safetensors file, or a zoo name as zoo:NAME."
        )
    return path



def parse_meta(meta: dict, path: Path) -> dict:
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a grokscope checkpoint (its metadata has no "
            f"format={FORMAT!r}). If it holds a TransformerLens HookedTransformer state dict, build a "
            "Transformer with the matching TransformerConfig and call model.load_hooked_transformer_state_dict()."
        )
    version = int(meta.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer grokscope (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}). Upgrade grokscope: pip install -U grokscope."
        )
    try:
        out = {k: json.loads(meta[k]) for k in ("task_spec", "model_config", "train_config", "metrics")}
        out["train_idx"] = json.loads(meta["train_idx"]) if "train_idx" in meta else None
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
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{f} is not a grokscope run file (no format={FORMAT!r}).")
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


