"""Hookable models: the two-layer MLP and the TransformerLens-compatible transformer, and the registry
of model families (interp.models.family) through which storage, training and the analysis build any
model from its config without branching on its kind."""

from __future__ import annotations

import json

import torch

from interp.device import resolve_device
from interp.errors import SpecError
from interp.models.cache import ActivationCache
from interp.models.family import ModelFamily, family_names, family_of, get_family, register_family
from interp.models.mlp import MLP, MLPConfig
from interp.models.pretrained import config_of, load_state_dict_checked, read_pretrained_config
from interp.models.stacked import StackedModels
from interp.models.transformer import Transformer, TransformerConfig

ModelConfig = MLPConfig | TransformerConfig
Model = MLP | Transformer

register_family(ModelFamily("mlp", MLPConfig, MLP, StackedModels))
register_family(ModelFamily("transformer", TransformerConfig, Transformer, StackedModels))


def build_model(cfg, seed: int | None = 0, device: object = None):
    """A freshly initialised model for `cfg` (a config of any registered family); the same seed gives
    the same weights on any machine."""
    if not hasattr(cfg, "family") or not hasattr(cfg, "to_dict"):
        raise TypeError(
            f"build_model expects a model config (MLPConfig, TransformerConfig, or a registered family's), "
            f"got {type(cfg).__name__}."
        )
    model_class = get_family(cfg.family).model_class
    if seed is None:
        model = model_class(cfg)
    else:
        # Initialise on CPU under a fixed seed so weights do not depend on the device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_class(cfg)
    if device is not None:
        model = model.to(resolve_device(device))
    return model


def count_params(cfg) -> int:
    """The parameter count of a model of `cfg`: its config's `n_params` when the family says it, else
    counted on a model built once (cached by config)."""
    n = getattr(cfg, "n_params", None)
    if n is not None:
        return int(n)
    key = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    if key not in _COUNTED:
        _COUNTED[key] = sum(p.numel() for p in build_model(cfg, seed=None).parameters())
    return _COUNTED[key]


_COUNTED: dict[str, int] = {}


def config_from_dict(d: dict):
    """Inverse of `cfg.to_dict()`: the "family" field picks the config class."""
    if not isinstance(d, dict):
        raise SpecError("model_config", "model_config", type(d).__name__, "a JSON object (a config's to_dict())")
    return config_of(get_family(d.get("family")).config_class, d)


def from_pretrained(directory, device=None):
    """The model `save_pretrained` wrote to `directory`, whatever its family."""
    return get_family(read_pretrained_config(directory)["family"]).model_class.from_pretrained(directory, device=device)


def model_family(model) -> str:
    """The name of the model's family ("mlp", "transformer", ...), from its config; a clear error for
    anything that is not a grokscope model."""
    return family_of(model).name


__all__ = [
    "ActivationCache",
    "MLP",
    "MLPConfig",
    "Model",
    "ModelConfig",
    "ModelFamily",
    "Transformer",
    "TransformerConfig",
    "build_model",
    "config_from_dict",
    "count_params",
    "family_names",
    "family_of",
    "from_pretrained",
    "get_family",
    "load_state_dict_checked",
    "model_family",
    "register_family",
]
