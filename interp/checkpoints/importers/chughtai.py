"""Chughtai, Chan and Nanda 2023's checkpoints ("A Toy Model of Universality"; github
bilal-chughtai/rep-theory-mech-interp).

A run folder holds `cfg.json` and `model.pt`:

- cfg.json: "group" (SymmetricGroup, AlternatingGroup, DihedralGroup, CyclicGroup), "group_parameter"
  n, "model" (OneLayerMLP or Transformer), "layers" {"embed_dim", "hidden_dim"}, "seed", "frac_train",
  "lr", "weight_decay", "betas", "num_epochs".
- model.pt: a state dict saved with torch.save (from CUDA; read here with weights_only=True onto the
  CPU: only tensors are unpickled). OneLayerMLP: W_x [|G|, e], W_y [|G|, e], W [2e, h], W_U [h, |G|], no
  biases; hidden = ReLU([W_x[x], W_y[y]] W), logits = hidden W_U. Transformer: a TransformerLens 0.2
  HookedTransformer (one layer, 3 positions `x y =`, '=' the token |G|, no LayerNorm, ReLU, causal
  attention) with its `blocks.0.attn.mask` and `IGNORE` buffers and `x_embed` / `y_embed` copies of
  `embed.W_E`.

The task is the composition task of the group in their element order and law ("S<n>[chughtai]:x*y",
"A5[chughtai]:x*y", "D<n>:x*y", "C<n>:x*y"; `interp.groups.symmetric`), data row r = x |G| + y, and
their split: torch.manual_seed(seed); torch.randperm(|G|^2), the first int(frac_train |G|^2) pairs
for training (a seed of 0 leaves the data unshuffled in their code, so the first rows train).

Their OneLayerMLP maps exactly onto grokscope's MLP, logits = W act(U e_x + V e_y): U = (W_x W[:e])^T,
V = (W_y W[e:])^T, W = W_U^T (the products are taken in float64). Their Transformer is a
HookedTransformer, whose names and shapes grokscope's transformer shares.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from interp.checkpoints.importers.state_dicts import read_json_config, read_state_dict
from interp.checkpoints.run import Checkpoint
from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.groups import group_order
from interp.models import MLP, MLPConfig, Transformer, TransformerConfig
from interp.tasks import Task, TaskSpec

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "model.pt"
GROUP_FAMILIES = {"SymmetricGroup": "S", "AlternatingGroup": "A", "DihedralGroup": "D", "CyclicGroup": "C"}
MODELS = ("OneLayerMLP", "Transformer")
REQUIRED = ("group", "group_parameter", "model", "seed", "frac_train")
MLP_KEYS = ("W_x", "W_y", "W", "W_U")
TRANSFORMER_EXTRAS = ("x_embed", "y_embed")  # copies of embed.W_E (Transformer) or W_x W[:e] (OneLayerMLP), if saved


def is_chughtai_dir(path: Path) -> bool:
    """A folder with their cfg.json (and no grokscope run.json / config.json, which the caller checks first)."""
    return path.is_dir() and (path / CFG_NAME).exists()


def read_cfg(folder: Path) -> dict:
    """cfg.json, checked field by field (each error names the file and the field)."""
    f = folder / CFG_NAME
    if not f.is_file():
        raise CheckpointError(
            f"{f} is missing: a Chughtai et al. run folder holds {CFG_NAME} ({', '.join(REQUIRED)}, layers, ...) "
            f"and {WEIGHTS_NAME}."
        )
    cfg = read_json_config(f, "Chughtai et al. cfg.json")  # a JSON object, or an error naming the file
    for name in REQUIRED:
        if name not in cfg:
            raise CheckpointError(
                f"{f}: the field {name!r} is missing (a Chughtai et al. cfg.json has {list(REQUIRED)})."
            )

    def bad(name: str, expected: str):
        return CheckpointError(f"{f}: the field {name!r} is {cfg[name]!r}; expected {expected}.")

    if cfg["group"] not in GROUP_FAMILIES:
        raise bad("group", f"one of {sorted(GROUP_FAMILIES)}")
    if cfg["model"] not in MODELS:
        raise bad("model", f"one of {list(MODELS)}")
    for name in ("group_parameter", "seed"):
        if (
            isinstance(cfg[name], bool)
            or not isinstance(cfg[name], int)
            or cfg[name] < (1 if name == "group_parameter" else 0)
        ):
            raise bad(name, "a positive int" if name == "group_parameter" else "a non-negative int")
    frac = cfg["frac_train"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
        raise bad("frac_train", "a number in (0, 1]")
    layers = cfg.get("layers", {})
    if not isinstance(layers, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in layers.values()
    ):
        raise bad("layers", 'an object of positive ints ({"embed_dim": ..., "hidden_dim": ...})')
    return cfg


def chughtai_op(cfg: dict, f: Path) -> str:
    """grokscope's operation for their group: its composition task in their element order."""
    family, n = GROUP_FAMILIES[cfg["group"]], cfg["group_parameter"]
    if family == "A" and n != 5:
        raise CheckpointError(
            f"{f}: the field 'group_parameter' is {n} with group AlternatingGroup; their code builds A_n for n = 5 only."
        )
    name = f"{family}{n}" + ("[chughtai]" if family in "SA" else "")
    try:
        group_order(name)
    except SpecError as exc:
        raise CheckpointError(
            f"{f}: group {cfg['group']} with group_parameter {n} is not one grokscope builds: {exc}"
        ) from exc
    return f"{name}:x*y"


def chughtai_split(n_pairs: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, test rows) of their split: torch.manual_seed(seed); torch.randperm(n_pairs) (on the
    CPU; seed 0 leaves the rows in order, as their `if shuffle_seed:` does), the first
    int(frac_train * n_pairs) rows for training. Uses its own generator: the global RNG is untouched."""
    if seed:
        order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n_pairs)
    n_train = int(frac_train * n_pairs)
    return order[:n_train], order[n_train:]


def _shape(state: dict, key: str, expected: tuple, weights: Path, why: str) -> torch.Tensor:
    t = state.get(key)
    if t is None:
        raise CheckpointError(f"{weights}: the tensor {key!r} is missing ({why}).")
    if tuple(t.shape) != expected:
        raise CheckpointError(f"{weights}: {key!r} has shape {list(t.shape)}; expected {list(expected)} ({why}).")
    return t


def mlp_from_state(state: dict, cfg: dict, n: int, weights: Path, f: Path) -> MLP:
    """grokscope's MLP with exactly their OneLayerMLP's logits."""
    extra = sorted(set(state) - set(MLP_KEYS) - set(TRANSFORMER_EXTRAS))
    if extra:
        raise CheckpointError(
            f"{weights} holds {extra}, which a OneLayerMLP has not (its tensors are {list(MLP_KEYS)}); "
            f"is the field 'model' of {f} right?"
        )
    group = f"{cfg['group']}({cfg['group_parameter']}) has {n} elements"
    layers = cfg.get("layers", {})
    w_x = state.get("W_x")
    if w_x is None or w_x.ndim != 2:
        raise CheckpointError(f"{weights}: 'W_x' is missing or not a matrix [|G|, embed_dim].")
    e = int(layers.get("embed_dim", w_x.shape[1]))
    w_x = _shape(state, "W_x", (n, e), weights, f"{group}; {f.name} says embed_dim {e}")
    w_y = _shape(state, "W_y", (n, e), weights, f"{group}; {f.name} says embed_dim {e}")
    w = state.get("W")
    h = int(layers.get("hidden_dim", w.shape[1] if w is not None and w.ndim == 2 else 0))
    w = _shape(state, "W", (2 * e, h), weights, f"[2 embed_dim, hidden_dim]; {f.name} says hidden_dim {h}")
    w_u = _shape(state, "W_U", (h, n), weights, f"[hidden_dim, |G|]: {group}")
    model = MLP(MLPConfig(p=n, width=h, act="relu", bias=False))
    w_x, w_y, w, w_u = (t.double() for t in (w_x, w_y, w, w_u))
    for key, product in (("x_embed", w_x @ w[:e]), ("y_embed", w_y @ w[e:])):  # their metrics' cached products
        if key in state and not torch.allclose(state[key].double(), product, rtol=1e-4, atol=1e-6):
            raise CheckpointError(
                f"{weights}: {key!r} is not W_{key[0]} times its half of W, as their OneLayerMLP's is."
            )
    with torch.no_grad():
        model.U.copy_((w_x @ w[:e]).T)  # [h, |G|]
        model.V.copy_((w_y @ w[e:]).T)
        model.W.copy_(w_u.T)  # [|G|, h]
    return model


def transformer_from_state(state: dict, n: int, weights: Path, f: Path) -> Transformer:
    """grokscope's transformer with their HookedTransformer's weights (buffers and x/y_embed copies dropped)."""
    w_e = state.get("embed.W_E")
    w_q = state.get("blocks.0.attn.W_Q")
    w_in = state.get("blocks.0.mlp.W_in")
    if w_e is None or w_q is None or w_in is None or w_e.ndim != 2 or w_q.ndim != 3 or w_in.ndim != 2:
        raise CheckpointError(
            f"{weights} is not a HookedTransformer state dict (embed.W_E, blocks.0.attn.W_Q, blocks.0.mlp.W_in); "
            f"is the field 'model' of {f} right?"
        )
    _shape(state, "embed.W_E", (n + 1, w_e.shape[1]), weights, f"{n} group elements and '=': [|G| + 1, d_model]")
    _shape(state, "unembed.W_U", (w_e.shape[1], n), weights, f"[d_model, |G|] for {n} classes")
    for key in TRANSFORMER_EXTRAS:
        if key in state and not (torch.equal(state[key], w_e) or torch.equal(state[key], w_e[:n])):
            raise CheckpointError(f"{weights}: {key!r} is not a copy of embed.W_E, as their Transformer's is.")
    if any(".ln" in k or k.startswith("ln_final") for k in state):
        raise CheckpointError(f"{weights} has LayerNorm weights; their Transformer has none (normalization_type None).")
    n_layers = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    cfg = TransformerConfig(
        p=n,
        n_layers=n_layers,
        d_model=int(w_e.shape[1]),
        n_heads=int(w_q.shape[0]),
        d_head=int(w_q.shape[2]),
        d_mlp=int(w_in.shape[1]),
        act_fn="relu",
        eq_token=True,
        causal=True,
    )
    model = Transformer(cfg)
    try:
        model.load_hooked_transformer_state_dict({k: v for k, v in state.items() if k not in TRANSFORMER_EXTRAS})
    except CheckpointError as exc:
        raise CheckpointError(f"{weights}: {exc}") from exc
    return model


def import_chughtai(folder: str | os.PathLike, *, device=None) -> Checkpoint:
    """Import one of Chughtai et al.'s run folders (cfg.json + model.pt; see the module docstring)."""
    folder = Path(folder)
    if folder.is_file():  # model.pt given: its folder
        folder = folder.parent
    f = folder / CFG_NAME
    cfg = read_cfg(folder)
    op = chughtai_op(cfg, f)
    n = group_order(op[: -len(":x*y")])
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(
            f"{weights} is missing: a Chughtai et al. run folder holds {CFG_NAME} and {WEIGHTS_NAME}."
        )
    state = read_state_dict(weights)
    with torch.random.fork_rng(devices=[]):  # building a model draws an init: leave the caller's RNG as it was
        if cfg["model"] == "OneLayerMLP":
            model = mlp_from_state(state, cfg, n, weights, f)
        else:
            model = transformer_from_state(state, n, weights, f)
    train_idx, test_idx = chughtai_split(n * n, float(cfg["frac_train"]), int(cfg["seed"]))
    spec = TaskSpec(op=op, p=n, frac_train=float(cfg["frac_train"]), seed=int(cfg["seed"]))
    task = Task.from_split(spec, train_idx, test_idx)
    if device is not None:
        model = model.to(resolve_device(device))
    return Checkpoint(
        model=model.eval(),
        task=task,
        model_config=model.cfg,
        train_config=cfg,
        step=int(cfg.get("num_epochs", 0)),
        path=folder,
    )
