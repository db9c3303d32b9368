"""Hugging Face's checkpoint convention for grokscope's models: `save_pretrained(dir)` writes
`dir/model.safetensors` (the state dict, safetensors metadata `format="pt"`) and `dir/config.json`
(the model config, plain JSON); `from_pretrained(dir)` reads them back. Both files open with
`safetensors.torch.load_file` and `json.load` alone, no grokscope code needed. A transformer's
config.json also carries the HookedTransformerConfig fields of its architecture (so TransformerLens
builds the same model from it), or says under "hooked_transformer_incompatible" why no
HookedTransformer computes the same logits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.files import atomic_write_json, load_tensors, save_tensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SAFETENSORS_FORMAT = "pt"  # the safetensors metadata Hugging Face's loaders expect
EXTRA_KEY = "grokscope"  # what storage adds to config.json (task, step, ...), ignored by from_pretrained


def config_of(config_class, d: dict, where: str = "model_config"):
    """A config of `config_class` from its `to_dict()` (the "family" key must match), with a SpecError
    naming the first unknown field."""
    d = dict(d)
    family = d.pop("family", config_class.family)
    if family != config_class.family:
        raise SpecError(where, "family", family, repr(config_class.family))
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise SpecError(
            config_class.__name__,
            unknown[0],
            d[unknown[0]],
            f"one of the fields {sorted(fields)}",
            "The file was written by a newer grokscope, or is not a grokscope config.",
        )
    return config_class(**d)


def read_pretrained_config(directory: str | os.PathLike) -> dict:
    """The JSON of directory/config.json, with a clear error when it is missing or damaged."""
    f = Path(directory) / CONFIG_NAME
    if not f.is_file():
        raise CheckpointError(
            f"{Path(directory)} has no {CONFIG_NAME}: not a directory written by save_pretrained. Pass the folder "
            f"that holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        )
    try:
        doc = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{f} is not valid JSON ({exc}); the file is damaged.") from exc
    if not isinstance(doc, dict) or "family" not in doc:
        raise CheckpointError(
            f"{f} is not a grokscope model config (no 'family' key); it was written by another library."
        )
    return doc


def model_config_from_pretrained(doc: dict, config_class) -> dict:
    """The model-config part of a config.json: without `model_type`, grokscope's extras and the
    HookedTransformerConfig twin (`config_class.pretrained_keys` that are not its fields)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    skip = {"model_type", EXTRA_KEY} | (set(getattr(config_class, "pretrained_keys", ())) - fields)
    return {k: v for k, v in doc.items() if k not in skip}


class Pretrained:
    """Mixin of the models: `save_pretrained(dir)` and `Model.from_pretrained(dir)`. Subclasses set
    `config_class`."""

    config_class: type

    def save_pretrained(self, directory: str | os.PathLike, *, extra: dict | None = None) -> Path:
        """Write directory/model.safetensors and directory/config.json atomically; `extra` (JSON values)
        is stored in config.json under "grokscope" (interp.checkpoints.save_pretrained puts the task there)."""
        directory = Path(directory)
        save_tensors(directory / WEIGHTS_NAME, self.state_dict(), {"format": SAFETENSORS_FORMAT})
        doc = {"model_type": f"grokscope-{self.cfg.family}", **self.cfg.to_dict()}
        doc.update(self.cfg.pretrained_fields())  # the HookedTransformerConfig twin (shared keys agree), or why not
        if extra:
            doc[EXTRA_KEY] = extra
        atomic_write_json(directory / CONFIG_NAME, doc)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device=None):
        """The model saved in `directory` by `save_pretrained`, in eval mode (on `device` if given)."""
        doc = read_pretrained_config(directory)
        try:
            cfg = config_of(
                cls.config_class,
                model_config_from_pretrained(doc, cls.config_class),
                where=str(Path(directory) / CONFIG_NAME),
            )
        except (SpecError, TypeError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: {exc}") from exc
        state, _ = load_tensors(Path(directory) / WEIGHTS_NAME)
        model = cls(cfg)
        load_state_dict_checked(model, state)
        if device is not None:
            model = model.to(resolve_device(device))
        return model.eval()


def load_state_dict_checked(model, state_dict: dict) -> None:
    """load_state_dict with an error that lists missing, unexpected and mis-shaped tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    bad = [
        f"{k}: file {list(state_dict[k].shape)} vs config {list(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}{'...' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}{'...' if len(unexpected) > 6 else ''}")
        if bad:
            parts.append("shape mismatch " + "; ".join(bad[:4]))
        raise CheckpointError(
            "the weights do not match the model config: " + ", ".join(parts) + ". "
            "Check that the config stored with the weights is the one they were trained with."
        )
    with torch.no_grad():
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})
