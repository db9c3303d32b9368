"""Saving and loading one denoiser or consistency student as a single file, in grokscope's one on-disk
format: a checkpoint's .safetensors weight file (the JSON specs in its metadata, written atomically;
what `interp.checkpoints.load` reads). `load` also reads the study's older "grokscope-diffusion"
files. Nothing is unpickled. A run directory (`train_denoiser(..., out=...)`) is the richer form."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interp.checkpoints import load as load_checkpoint
from interp.checkpoints import save_weights
from interp.checkpoints.format import is_grokscope_meta
from interp.data_spec import DataSpec
from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.files import load_tensors
from studies.diffusion.denoisers import build_net, config_from_dict
from studies.diffusion.edm import ConsistencyModel, EDMDenoiser

LEGACY_FORMAT, LEGACY_VERSION = "grokscope-diffusion", 1  # what `save` wrote before the one format


def save(model: EDMDenoiser, path) -> Path:
    """Write `model` (teacher or student) to `path` (a .safetensors file): a grokscope weight file with
    its config, training data spec, step and last metrics in the metadata."""
    if not isinstance(model, EDMDenoiser):
        raise SpecError("save", "model", type(model).__name__, "a model from train_denoiser or consistency_distill")
    data = getattr(model, "data_spec", None) or DataSpec("unrecorded", 0, model.data_shape, "")
    history = getattr(model, "history", None) or []
    return save_weights(
        path, model, task_spec=data, step=int(getattr(model, "step", 0) or 0), metrics=history[-1] if history else {}
    )


def load(path, *, device=None) -> EDMDenoiser:
    """The model that `save` wrote (on `device`, default CPU), in eval mode; also a run directory's last
    checkpoint, and the study's older single files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist. Pass the .safetensors file `save` wrote, or a run directory.")
    device = resolve_device(device) if device is not None else torch.device("cpu")
    if path.is_file():
        try:
            _, metadata = load_tensors(path)
        except CheckpointError as exc:  # a truncated or foreign file
            raise CheckpointError(f"{path} is not a grokscope diffusion checkpoint ({exc}).") from exc
        if not is_grokscope_meta(metadata):
            return _load_legacy(path, device)
    ckpt = load_checkpoint(path, device=device)
    model = ckpt.model
    if not isinstance(model, EDMDenoiser):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a denoiser or consistency model.")
    model.history, model.step = list(ckpt.history) or ([ckpt.metrics] if ckpt.metrics else []), ckpt.step
    model.data_spec = ckpt.task if isinstance(ckpt.task, DataSpec) and ckpt.task.fingerprint else None
    return model.eval()


def _load_legacy(path: Path, device) -> EDMDenoiser:
    """A file of the older format: the weights of the raw network, and the spec as JSON metadata."""
    try:
        tensors, metadata = load_tensors(path)
        spec = json.loads(metadata["grokscope"])
    except (CheckpointError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a grokscope diffusion checkpoint ({type(exc).__name__}: {exc}).") from exc
    if spec.get("format") != LEGACY_FORMAT or spec.get("version") != LEGACY_VERSION:
        raise CheckpointError(
            f"{path} has format {spec.get('format')!r} v{spec.get('version')}: not a grokscope diffusion checkpoint."
        )
    try:
        config, shape = config_from_dict(spec["config"]), tuple(spec["data_shape"])
        net = build_net(config, shape)
        net.load_state_dict(tensors)
    except (RuntimeError, KeyError, TypeError, ValueError, SpecError) as exc:
        raise CheckpointError(f"{path}: its weights do not fit its config ({type(exc).__name__}: {exc}).") from exc
    if spec["kind"] == "consistency":
        model = ConsistencyModel(net, config, shape, spec["sigma_data"], spec["sigma_min"])
    else:
        model = EDMDenoiser(net, config, shape, spec["sigma_data"])
    model.history, model.step = list(spec.get("history") or []), spec.get("step") or 0
    return model.to(device).eval()
