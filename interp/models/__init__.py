"""Hookable models: the two-layer MLP and the TransformerLens-compatible transformer."""

from __future__ import annotations

import torch

from interp.device import resolve_device
from interp.errors import SpecError
from interp.models.cache import ActivationCache
from interp.models.mlp import MLP, MLPConfig
from interp.models.pretrained import config_of, load_state_dict_checked, read_pretrained_config
from interp.models.transformer import Transformer, TransformerConfig

ModelConfig = MLPConfig | TransformerConfig
Model = MLP | Transformer


def build_model(cfg: ModelConfig, seed: int | None = 0, device: object = None) -> Model:
    """A freshly initialised model for `cfg`; the same seed gives the same weights on any machine."""
    if not isinstance(cfg, (MLPConfig, TransformerConfig)):
        raise TypeError(f"build_model expects an MLPConfig or TransformerConfig, got {type(cfg).__name__}.")
    if seed is None:
        model = MLP(cfg) if isinstance(cfg, MLPConfig) else Transformer(cfg)
    else:
        # Initialise on CPU under a fixed seed so weights do not depend on the device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MLP(cfg) if isinstance(cfg, MLPConfig) else Transformer(cfg)
    if device is not None:
        model = model.to(resolve_device(device))
    return model


MODEL_CLASSES = {"mlp": MLP, "transformer": Transformer}


def config_from_dict(d: dict) -> ModelConfig:
    """Inverse of `cfg.to_dict()`: the "family" field picks the config class."""
    family = d.get("family")
    if family not in MODEL_CLASSES:
        raise SpecError("model_config", "family", family, "'mlp' or 'transformer'")
    return config_of(MODEL_CLASSES[family].config_class, d)


def from_pretrained(directory, device=None) -> Model:
    """The model `save_pretrained` wrote to `directory`, whatever its family (MLP or Transformer)."""
    family = read_pretrained_config(directory)["family"]
    if family not in MODEL_CLASSES:
        raise SpecError("config.json", "family", family, "'mlp' or 'transformer'")
    return MODEL_CLASSES[family].from_pretrained(directory, device=device)


__all__ = [
    "ActivationCache",
    "MLP",
    "MLPConfig",
    "Transformer",
    "TransformerConfig",
    "ModelConfig",
    "Model",
    "build_model",
    "config_from_dict",
    "from_pretrained",
    "load_state_dict_checked",
    "model_family",
    "is_transformer",
    "hidden_activation",
]


def model_family(model) -> str:
    """ "mlp" or "transformer", from the model's config; a clear error for anything else."""
    family = getattr(getattr(model, "cfg", None), "family", None)
    if family not in ("mlp", "transformer"):
        raise SpecError(
            "model",
            "cfg.family",
            family,
            "'mlp' or 'transformer'",
            "Pass a grokscope model built with interp.models.build_model (or loaded with interp.checkpoints.load).",
        )
    return family


def is_transformer(model) -> bool:
    """True for the transformer family."""
    return model_family(model) == "transformer"


def hidden_activation(model):
    """The activation function of the model's hidden neurons (the MLP's, or the last transformer block's)."""
    if not is_transformer(model):
        return model.act
    model.require_mlp("hidden_activation")
    return model.blocks[-1].mlp.act
