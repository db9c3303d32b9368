"""Importers for foreign checkpoint files, read without unpickling code.

The progress-measures grokking paper (Nanda et al. 2023) saved whole runs as one torch pickle. Here
it is read with `torch.load(weights_only=True)` and an explicit allow-list: NumPy arrays and scalars,
and the paper's pickled `HookedTransformerConfig` mapped onto an inert record that only stores field
values. Anything else in the file is refused with how to convert it in a trusted session.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from interp.checkpoints.format import existing
from interp.checkpoints.importers.state_dicts import safe_torch_load
from interp.checkpoints.run import Run
from interp.errors import CheckpointError
from interp.models import TransformerConfig
from interp.tasks import Task, TaskSpec

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # NumPy 1.x (the package does not pin NumPy 2) keeps them under numpy.core
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]


def _numpy_safe_globals() -> list:
    """The few NumPy objects a .pth of indices and losses may hold: arrays, dtypes and scalars."""
    out = [_reconstruct, scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n)
            for n in ("Int64DType", "Int32DType", "Float64DType", "Float32DType", "BoolDType")
            if hasattr(dtypes, n)
        ]
    return out


class HookedTransformerConfigRecord:
    """Inert stand-in for a pickled `HookedTransformerConfig` (the progress-measures paper saved
    `model.cfg` itself). The allow-list maps that one class name to this record, which only stores
    the pickled field values; no TransformerLens code runs and nothing else is admitted."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise CheckpointError("a pickled HookedTransformerConfig without a field dict; the file is damaged.")
        self.__dict__.update(state)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


_HOOKED_CONFIG_NAMES = (  # where TransformerLens releases (and its EasyTransformer ancestor) kept the class
    "transformer_lens.HookedTransformerConfig.HookedTransformerConfig",
    "transformer_lens.config.HookedTransformerConfig.HookedTransformerConfig",
    "transformer_lens.config.hooked_transformer_config.HookedTransformerConfig",
    "easy_transformer.EasyTransformerConfig.EasyTransformerConfig",
)


PROGRESS_MEASURES_KEYS = (
    "config",
    "model",
    "checkpoints",
    "checkpoint_epochs",
    "train_losses",
    "test_losses",
    "train_indices",
    "test_indices",
)


def _safe_torch_load(path: Path) -> dict:
    """The file read with the NumPy and HookedTransformerConfig allow-list of this layout."""
    allowed = _numpy_safe_globals() + [(HookedTransformerConfigRecord, n) for n in _HOOKED_CONFIG_NAMES]
    return safe_torch_load(
        path,
        allowed,
        how_to_convert="If you trust the file, convert it once in a trusted session: "
        "d = torch.load(path, weights_only=False); d['config'] = dict(vars(d['config'])) if not "
        "isinstance(d['config'], dict) else d['config']; torch.save(d, new_path) — then import new_path.",
    )


def _as_index_tensor(x, name: str, path: Path) -> torch.Tensor:
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {name} is not a list of indices ({exc}).") from exc
    if t.ndim == 2 and t.shape[1] >= 2:  # stored as pairs (a, b[, =]) instead of flat indices
        return t.long()
    return t.long().reshape(-1)


def _read_layout(path: Path) -> tuple[dict, TransformerConfig]:
    """The file's dict and its model config, checked against the progress-measures layout."""
    data = _safe_torch_load(path)
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{path} holds a {type(data).__name__}, not the progress-measures dict with keys {PROGRESS_MEASURES_KEYS}."
        )
    missing = [k for k in ("config", "model") if k not in data]
    if missing:
        raise CheckpointError(
            f"{path} is not in the progress-measures layout: it lacks {missing} (has {sorted(data)[:8]}). "
            f"Expected keys {PROGRESS_MEASURES_KEYS}. For any other layout, load its state dict yourself "
            "(torch.load(path, weights_only=True)), put it into a model from interp.models.build_model "
            "(a HookedTransformer state dict loads into TransformerConfig models as is) and save that with "
            "interp.checkpoints.save(run_dir, model, task)."
        )
    cfg = data["config"]
    if isinstance(cfg, HookedTransformerConfigRecord):
        cfg = cfg.to_dict()
    if not isinstance(cfg, dict):
        raise CheckpointError(
            f"{path}: 'config' is a {type(cfg).__name__}; expected a dict of HookedTransformerConfig fields."
        )
    return data, TransformerConfig.from_hooked_transformer_config(cfg)


def _split_indices(data: dict, key: str, p: int, path: Path) -> torch.Tensor | None:
    """data[key] as flat pair indices a * p + b (pairs [n, 2] are flattened), checked against p."""
    if key not in data:
        return None
    idx = _as_index_tensor(data[key], key, path)
    if idx.ndim == 2:  # pairs -> flat index a * p + b
        idx = idx[:, 0] * p + idx[:, 1]
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= p * p):
        raise CheckpointError(
            f"{path}: {key} fall outside the {p * p} pairs of p={p}; the config does not match the data."
        )
    return idx


def _trajectory(data: dict, path: Path) -> tuple[dict, list[dict]]:
    """({step: state dict}, history) of the file: its checkpoints, the final model at the last step,
    and the per-epoch losses."""
    states = list(data.get("checkpoints") or [])
    epochs = [int(e) for e in (data.get("checkpoint_epochs") or [])]
    if states and len(epochs) != len(states):
        raise CheckpointError(
            f"{path}: {len(states)} checkpoints but {len(epochs)} checkpoint_epochs; the file is inconsistent."
        )
    train_losses = [float(x) for x in (data.get("train_losses") or [])]
    test_losses = [float(x) for x in (data.get("test_losses") or [])]
    final_step = max(len(train_losses), (epochs[-1] + 1) if epochs else 0)
    by_step = dict(zip(epochs, states))
    if final_step not in by_step:
        by_step[final_step] = data["model"]
    history = [
        {"step": i, "train_loss": train_losses[i], **({"test_loss": test_losses[i]} if i < len(test_losses) else {})}
        for i in range(len(train_losses))
    ]
    return by_step, history


def import_progress_measures(path: str | os.PathLike, op: str = "x+y") -> Run:
    """Import a run saved in the layout of the progress-measures grokking paper (Nanda et al. 2023):
    a torch file holding a dict with `config` (HookedTransformerConfig fields), `model` (a
    HookedTransformer state dict), `checkpoints` (a list of state dicts), `checkpoint_epochs`,
    `train_losses`, `test_losses`, `train_indices`, `test_indices`. Loaded with weights_only=True.
    Returns a `Run` of our `Transformer` over the trajectory (the final `model` as the last step),
    with the task rebuilt from p (the config) and the split (the indices)."""
    path = existing(path)
    data, model_config = _read_layout(path)
    p = model_config.p
    n = p * p
    train_idx = _split_indices(data, "train_indices", p, path)
    test_idx = _split_indices(data, "test_indices", p, path)
    frac = len(train_idx) / n if train_idx is not None else 0.3
    spec = TaskSpec(op=op, p=p, frac_train=min(1.0, max(frac, 1.0 / n)), seed=0)
    task = Task.from_split(spec, train_idx, test_idx) if train_idx is not None else Task(spec)
    by_step, history = _trajectory(data, path)

    def loader(step):
        sd = by_step[step]
        if not isinstance(sd, dict):
            raise CheckpointError(f"{path}: the checkpoint at epoch {step} is a {type(sd).__name__}, not a state dict.")
        return {k: v for k, v in sd.items() if not k.endswith((".IGNORE", ".mask"))}

    run = Run(task, model_config, None, history, sorted(by_step), loader, path=path, status="imported")
    run.load(run.steps[-1])  # validate the config against the weights now, not at first use
    return run
