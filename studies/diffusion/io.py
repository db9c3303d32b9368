"""Saving and loading denoisers and consistency students: one safetensors file, the JSON config in its
metadata, written atomically; loading never unpickles anything."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.files import load_tensors, save_tensors
from studies.diffusion.denoisers import build_net, config_from_dict, config_to_dict
from studies.diffusion.edm import ConsistencyModel, EDMDenoiser

FORMAT, VERSION = "grokscope-diffusion", 1


def save(model: EDMDenoiser, path) -> Path:
    """Write `model` (teacher or student) to `path` (a .safetensors file): weights plus its config as metadata."""
    if not isinstance(model, EDMDenoiser):
        raise SpecError("save", "model", type(model).__name__, "a model from train_denoiser or consistency_distill")
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "config": config_to_dict(model.config),
        "data_shape": list(model.data_shape),
        "sigma_data": model.sigma_data,
        "sigma_min": getattr(model, "sigma_min", None),
        "step": getattr(model, "step", None),
        "history": model.history,
    }
    return save_tensors(path, model.net.state_dict(), metadata={"grokscope": json.dumps(spec)})


def load(path, *, device=None) -> EDMDenoiser:
    """The model that `save` wrote (on `device`, default CPU), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file. Pass the .safetensors file `save` wrote.")
    try:
        tensors, metadata = load_tensors(path)
        spec = json.loads(metadata["grokscope"])
    except (CheckpointError, KeyError, json.JSONDecodeError) as exc:  # a truncated or foreign file
        raise CheckpointError(f"{path} is not a grokscope diffusion checkpoint ({type(exc).__name__}: {exc}).") from exc
    if spec.get("format") != FORMAT or spec.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has format {spec.get('format')!r} v{spec.get('version')}, expected {FORMAT!r} v{VERSION}."
        )
    try:
        config, shape = config_from_dict(spec["config"]), tuple(spec["data_shape"])
        net = build_net(config, shape)
        net.load_state_dict(tensors)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its weights do not fit its config ({type(exc).__name__}: {exc}).") from exc
    if spec["kind"] == "consistency":
        model = ConsistencyModel(net, config, shape, spec["sigma_data"], spec["sigma_min"])
    else:
        model = EDMDenoiser(net, config, shape, spec["sigma_data"])
    model.history, model.step = list(spec.get("history") or []), spec.get("step")
    model.snapshots, model.optimizer_state = {}, None
    return model.to(resolve_device(device) if device is not None else torch.device("cpu")).eval()
