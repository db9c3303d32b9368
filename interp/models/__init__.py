"""Hookable models: the two-layer MLP and the TransformerLens-compatible transformer."""

from __future__ import annotations

import torch

from interp.errors import SpecError
from interp.models.mlp import MLP, MLPConfig
from interp.models.transformer import Transformer, TransformerConfig, load_state_dict_checked

ModelConfig = MLPConfig | TransformerConfig
Model = MLP | Transformer


def build_model(cfg: ModelConfig, seed: int | None = 0, device: object = None) -> Model:
    """A freshly initialised model for `cfg`; the same seed gives the same weights on any machine."""
    from interp.errors import resolve_device

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


def config_from_dict(d: dict) -> ModelConfig:
    """Inverse of `cfg.to_dict()`: the "family" field picks the config class."""
    d = dict(d)
    family = d.pop("family", None)
    classes = {"mlp": MLPConfig, "transformer": TransformerConfig}
    if family not in classes:
        raise SpecError("model_config", "family", family, "'mlp' or 'transformer'")
    cls = classes[family]
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise SpecError(cls.__name__, unknown[0], d[unknown[0]], f"one of the fields {sorted(fields)}")
    return cls(**d)


__all__ = [
    "MLP",
    "MLPConfig",
    "Transformer",
    "TransformerConfig",
    "ModelConfig",
    "Model",
    "build_model",
    "config_from_dict",
    "load_state_dict_checked",
]
