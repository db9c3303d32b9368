"""A TransformerLens `HookedTransformer` state dict saved by the user (TransformerLens 3.x:
`torch.save(model.state_dict(), path)` or a safetensors file), with its config: `config=`, or the
config.json beside it (a folder of Hugging Face's `model.safetensors` + `config.json` whose config is a
HookedTransformerConfig imports as one). Attention-only models (attn_only) import too; a config with a
feature grokscope's transformer lacks (rotary embeddings, LNPre, a gated MLP, ...) is refused with its name.

Our transformer has HookedTransformer's parameter names and shapes, so the weights load as they are
(its IGNORE / mask buffers dropped). A state dict does not say what task the model was trained on:
pass `task=`, a `Task` (its split is used) or a `TaskSpec` (its split is not known to be the one the
model was trained on, so the task is an `UnknownSplitTask`, measured on all pairs).
"""

from __future__ import annotations

import os
from pathlib import Path

from interp.checkpoints.format import UnknownSplitTask
from interp.checkpoints.importers.state_dicts import read_json_config, read_state_dict
from interp.checkpoints.run import Checkpoint
from interp.device import resolve_device
from interp.errors import CheckpointError
from interp.models import Transformer, TransformerConfig
from interp.models.pretrained import CONFIG_NAME, WEIGHTS_NAME
from interp.tasks import Task, TaskSpec

SOURCE = "a HookedTransformer state dict saved without its split"
SIBLING_CONFIG = CONFIG_NAME
# HookedTransformerConfig fields without defaults: what tells its config.json from another library's.
REQUIRED_FIELDS = ("n_layers", "d_model", "n_ctx", "d_head")


def is_hooked_transformer_state_dict(state: dict) -> bool:
    """HookedTransformer's layout: embed.W_E [d_vocab, d_model] and a 3-D attn.W_O [n_heads, d_head, d_model]."""
    w_o = state.get("blocks.0.attn.W_O")
    return "embed.W_E" in state and w_o is not None and w_o.ndim == 3


def is_hooked_transformer_config(doc) -> bool:
    """A HookedTransformerConfig as a dict: its required fields, and not grokscope's own ("family")."""
    return isinstance(doc, dict) and "family" not in doc and all(k in doc for k in REQUIRED_FIELDS)


def check_mlp_weights(state: dict, cfg: TransformerConfig, path) -> None:
    """A CheckpointError when the state dict and the config disagree on whether the blocks have an MLP."""
    has_mlp = any(".mlp." in k for k in state)
    if has_mlp == (not cfg.attn_only):
        return
    if has_mlp:
        raise CheckpointError(f"{path}: the config says attn_only=True but the state dict has MLP weights.")
    raise CheckpointError(
        f"{path}: the state dict has no MLP weights (an attention-only model) but the config says attn_only=False. "
        "Pass the config the model was built with (HookedTransformerConfig(attn_only=True, ...))."
    )


def checkpoint_task(task, p: int) -> Task:
    """The task of an imported model: a Task as given, a TaskSpec as an UnknownSplitTask."""
    if isinstance(task, Task):
        return task
    if isinstance(task, TaskSpec):
        return UnknownSplitTask(task, SOURCE)
    raise CheckpointError(
        f"task={task!r}: a HookedTransformer state dict does not record its task. Pass task=TaskSpec(op=..., p={p}) "
        "(metrics then use every pair) or a Task with the split the model was trained on (Task.from_split)."
    )


def hooked_transformer_checkpoint(state: dict, config, path, *, task, device=None) -> Checkpoint:
    """A grokscope Checkpoint of a HookedTransformer state dict and its config (dict, JSON path or
    a HookedTransformerConfig)."""
    cfg = TransformerConfig.from_hooked_transformer_config(read_json_config(config, "HookedTransformer config"))
    check_mlp_weights(state, cfg, path)
    model = Transformer(cfg)
    try:
        model.load_hooked_transformer_state_dict(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    task = checkpoint_task(task, cfg.p)
    if task.p != cfg.p:
        raise CheckpointError(f"the task has p={task.p} but the config has d_vocab_out={cfg.p}; pass the model's task.")
    if device is not None:
        model = model.to(resolve_device(device))
    return Checkpoint(model=model.eval(), task=task, model_config=cfg, train_config=None, step=0, path=Path(path))


def import_hooked_transformer(path: str | os.PathLike, config=None, *, task=None, device=None) -> Checkpoint:
    """Import a HookedTransformer state dict (`.pt` / `.pth` / `.safetensors`, or a folder holding
    model.safetensors) with its config (`config=`, or config.json beside the file) and its task
    (`task=`, see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if config is None:
        config = path.with_name(SIBLING_CONFIG)
        if not config.is_file():
            raise CheckpointError(
                f"{path} has no {SIBLING_CONFIG} beside it: pass config= (model.cfg, model.cfg.to_dict() or a JSON path)."
            )
    return hooked_transformer_checkpoint(read_state_dict(path), config, path, task=task, device=device)
