"""The on-disk format: safetensors weights plus JSON specs; atomic writes; safe loading.

A run directory holds `run.json` (format version, task spec, model config, train config, library
versions, metrics history, status) and `checkpoints/step_XXXXXXX.safetensors`. Each weight file also
carries the JSON specs in its safetensors metadata, so a single file loads on its own. Writes go to a
temporary file in the same folder, are flushed and fsynced, then renamed into place, so a crash
leaves either the old file or the new one, never half of one. Loading never unpickles arbitrary
objects: safetensors holds only tensors, and legacy torch files are read with `weights_only=True` and
an explicit allow-list (`import_progress_measures`, in `interp.legacy`, also reachable from here).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.errors import CheckpointError, SpecError
from interp.models import Model, ModelConfig, build_model, config_from_dict, load_state_dict_checked
from interp.tasks import Task, TaskSpec

FORMAT = "grokscope"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d{7,})\.safetensors$")


# ----- atomic writes ---------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename, fsync folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # O_EXCL like mkstemp, but mode 0o666 so the umask gives the file the permissions any new file gets
    # (mkstemp's 0600 would make checkpoints and reports private to their writer).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some filesystems do not allow fsync on a directory
        pass
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as JSON atomically (NaN and inf are written as null, so the file is strict JSON)."""
    return atomic_write_bytes(path, json.dumps(_json_safe(obj), indent=1).encode())


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _json_safe(obj.tolist())
    return obj


def library_versions() -> dict:
    from importlib import metadata

    out = {"torch": torch.__version__}
    for dist in ("grokscope", "transformer-lens"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# ----- writing ---------------------------------------------------------------------------------
def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """run_dir/checkpoints/step_XXXXXXX.safetensors"""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{int(step):07d}.safetensors"


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are copied to contiguous CPU memory)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(flat, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors, metadata), with a clear error for missing or broken files."""
    from safetensors import safe_open

    path = _existing(path)
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
        "metrics": json.dumps(_json_safe(metrics or {})),
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


# ----- reading ---------------------------------------------------------------------------------
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
    def task_spec(self) -> TaskSpec:
        return self.task.spec

    def __repr__(self) -> str:
        return f"Checkpoint({type(self.model).__name__}, {self.task!r}, step={self.step}, path={str(self.path)!r})"


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"no such file or directory: {path}. Pass a run directory (holding run.json), a "
            "checkpoints/step_XXXXXXX.safetensors file, or a zoo name as zoo:NAME."
        )
    return path


def _train_config_from(d):
    if d is None:
        return None
    from interp.train import TrainConfig

    try:
        return TrainConfig.from_dict(d)
    except (SpecError, TypeError):  # an older or newer train config: keep the raw dict
        return d


def _task_from(task_spec: dict, train_idx=None) -> Task:
    spec = TaskSpec.from_dict(task_spec)
    if train_idx is None:
        return Task(spec)
    return Task.from_split(spec, torch.tensor(train_idx, dtype=torch.long))


def _parse_meta(meta: dict, path: Path) -> dict:
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


def _model_from(model_config: dict, state: dict, path, device=None) -> Model:
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
        from interp.errors import resolve_device

        model = model.to(resolve_device(device))
    return model.eval()


def load_weight_file(path: str | os.PathLike, device=None, history: list | None = None) -> Checkpoint:
    """Load one grokscope .safetensors checkpoint on its own."""
    path = _existing(path)
    state, meta = load_tensors(path)
    m = _parse_meta(meta, path)
    try:
        task = _task_from(m["task_spec"], m["train_idx"])
    except SpecError as exc:
        raise CheckpointError(f"{path} has a task spec this grokscope rejects: {exc}") from exc
    model = _model_from(m["model_config"], state, path, device)
    return Checkpoint(
        model=model,
        task=task,
        model_config=model.cfg,
        train_config=_train_config_from(m["train_config"]),
        step=m["step"],
        history=history or [],
        metrics=m["metrics"],
        path=path,
    )


def _read_run_json(run_dir: Path) -> dict:
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


def load(path: str | os.PathLike, device=None, step: int | None = None) -> Checkpoint:
    """Load a checkpoint: a run directory (its last checkpoint, or `step`), a .safetensors weight file,
    a `zoo:NAME`, or a legacy torch file in the progress-measures layout (final model)."""
    if isinstance(path, str) and path.startswith("zoo:"):
        from interp import zoo

        return zoo.load(path[4:])
    path = _existing(path)
    if path.is_dir():
        doc = _read_run_json(path)
        steps = run_steps(path)
        if not steps:
            raise CheckpointError(f"{path} has a {RUN_FILE} but no checkpoints/step_XXXXXXX.safetensors files yet.")
        if step is None:
            step = max(steps)
        if step not in steps:
            raise CheckpointError(f"{path} has no checkpoint at step {step}; it has steps {list(steps)}.")
        return load_weight_file(steps[step], device=device, history=doc.get("history", []))
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        from interp.legacy import import_progress_measures

        run = import_progress_measures(path)
        return run.load(run.steps[-1] if step is None else step, device=device)
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path}: unknown checkpoint type {path.suffix!r}. grokscope reads run directories, .safetensors "
            "checkpoints and (via import_progress_measures) .pth files of the progress-measures paper."
        )
    return load_weight_file(path, device=device)


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
        if step not in self.steps:
            raise CheckpointError(f"this run has no checkpoint at step {step}; it has steps {self.steps}.")
        model = _model_from(self.model_config.to_dict(), self._loader(step), self.path, device)
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


def load_run(run_dir: str | os.PathLike) -> Run:
    """Every checkpoint of a run directory, loaded lazily (a `.pth` file of the progress-measures
    paper is imported instead)."""
    if isinstance(run_dir, str) and run_dir.startswith("zoo:"):
        from interp import zoo

        return zoo.load_run(run_dir[4:])
    path = _existing(run_dir)
    if path.is_file():
        if path.suffix in (".pt", ".pth"):
            from interp.legacy import import_progress_measures

            return import_progress_measures(path)
        raise CheckpointError(f"{path} is a file; load_run takes a run directory (use load() for one file).")
    doc = _read_run_json(path)
    steps = run_steps(path)
    try:
        task = _task_from(doc["task_spec"], doc.get("train_idx"))
        model_config = config_from_dict(doc["model_config"])
    except (SpecError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path / RUN_FILE} has specs this grokscope cannot read: {exc}") from exc

    def loader(step):
        state, meta = load_tensors(steps[step])
        _parse_meta(meta, steps[step])
        return state

    return Run(
        task,
        model_config,
        _train_config_from(doc.get("train_config")),
        doc.get("history", []),
        list(steps),
        loader,
        path=path,
        status=doc.get("status", "unknown"),
    )


def __getattr__(name):
    # The importer of legacy torch files lives in interp.legacy; its names stay reachable from here.
    if name in ("import_progress_measures", "HookedTransformerConfigRecord", "PROGRESS_MEASURES_KEYS"):
        from interp import legacy

        return getattr(legacy, name)
    raise AttributeError(f"module 'interp.checkpoints' has no attribute {name!r}")
