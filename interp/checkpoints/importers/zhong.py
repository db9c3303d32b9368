"""Zhong et al. 2023's checkpoints (clock and pizza; github fjzzq2002/pizza, MIT licence).

Their repository stores each model as `code/save/model_RUNID.pt` (a state dict) beside
`config_RUNID.json` (its training config). Their transformer (code/train-main.py) is TransformerLens-like
with its own shapes: `embed.W_E` [d_model, d_vocab], `unembed.W_U` [d_model, d_vocab],
`attn.W_Q/W_K/W_V` [n_heads, d_head, d_model], `attn.W_O` [d_model, n_heads * d_head] (head-major),
`mlp.W_in` [d_mlp, d_model], `mlp.W_out` [d_model, d_mlp]; no biases in attention or unembedding; no
layer norm; attention `attn_coeff * softmax + (1 - attn_coeff)`; no causal mask (the config says
"attention_dir": "casual" and registers a mask buffer, but the forward pass never applies it); logits
read at the last position. `diff_vocab` gives the second operand the tokens p..2p-1, `eqn_sign`
appends '=' (the last token). Their unembedding has one column per input token; the columns beyond
the p answers are dropped after checking that none of them wins on any pair. Their train/test split
(`torch.utils.data.random_split`, unseeded) cannot be rebuilt: the task is an `UnknownSplitTask`,
measured on all pairs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from interp.checkpoints.format import UnknownSplitTask
from interp.checkpoints.importers.state_dicts import read_json_config, read_state_dict
from interp.checkpoints.run import Checkpoint, model_from
from interp.device import resolve_device
from interp.errors import CheckpointError
from interp.models import TransformerConfig
from interp.tasks import TaskSpec, all_pairs

ZHONG_ACTIVATIONS = {"ReLU": "relu", "GeLU": "gelu", "Tanh": "tanh"}
# Their config's "funcs" (the source of a lambda; never evaluated) -> our operation.
ZHONG_FUNCS = {
    r"\(x\[0\]\+x\[1\]\)%(\d+)": "x+y",
    r"\(x\[0\]-x\[1\]\)%(\d+)": "x-y",
    r"\(x\[0\]\*x\[1\]\)%(\d+)": "x*y",
}
SOURCE = "Zhong et al.'s unseeded random_split"


def is_zhong_state_dict(state: dict) -> bool:
    """Their layout: embed.W_E [d_model, d_vocab] and a 2-D attn.W_O [d_model, n_heads * d_head]."""
    w_o = state.get("blocks.0.attn.W_O")
    return "embed.W_E" in state and "unembed.W_U" in state and w_o is not None and w_o.ndim == 2


def zhong_config_path(path: str | os.PathLike) -> Path:
    """config_RUNID.json beside model_RUNID.pt, as their repository stores them."""
    path = Path(path)
    runid = path.stem[len("model_") :] if path.stem.startswith("model_") else path.stem
    return path.with_name(f"config_{runid}.json")


def zhong_operation(config: dict, op: str | None) -> str:
    """Our operation for their config's "funcs" (matched as text), or `op` when given."""
    if op is not None:
        return op
    funcs = re.sub(r"\s+", "", str(config.get("funcs", "")))
    for pattern, name in ZHONG_FUNCS.items():
        if re.fullmatch(r"lambdax:" + pattern, funcs):
            return name
    raise CheckpointError(
        f"the config's funcs={config.get('funcs')!r} is not one grokscope recognises "
        f"({sorted(set(ZHONG_FUNCS.values()))}); pass op= with the operation the model computes."
    )


def zhong_model_config(config: dict, state: dict) -> TransformerConfig:
    """Our TransformerConfig of their model: sizes read from the weights, the rest from the config."""
    try:
        p = int(config["C"])
        n_heads, d_head, d_model = state["blocks.0.attn.W_Q"].shape  # [n_heads, d_head, d_model]
        act = ZHONG_ACTIVATIONS[config.get("act_fn", "ReLU")]
        n_layers = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        cfg = TransformerConfig(
            p=p,
            n_layers=n_layers,
            d_model=int(d_model),
            n_heads=int(n_heads),
            d_head=int(d_head),
            d_mlp=int(state["blocks.0.mlp.W_in"].shape[0]),
            act_fn=act,
            attention_rate=float(config["attn_coeff"]),
            eq_token=bool(config.get("eqn_sign", False)),
            causal=False,
            diff_vocab=bool(config.get("diff_vocab", False)),
        )
    except KeyError as exc:
        raise CheckpointError(f"Zhong et al.'s config or weights lack {exc.args[0]!r}.") from exc
    for name in ("n_layers", "n_heads", "d_model"):
        if name in config and int(config[name]) != getattr(cfg, name):
            raise CheckpointError(f"the config says {name}={config[name]} but the weights have {getattr(cfg, name)}.")
    return cfg


def convert_zhong_state_dict(state: dict, cfg: TransformerConfig) -> dict[str, torch.Tensor]:
    """Their tensors under our names and shapes (zero biases where they have none); W_U keeps all
    their output columns ([d_model, d_vocab]), the caller drops those beyond p."""
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    out = {
        "embed.W_E": state["embed.W_E"].T,
        "pos_embed.W_pos": state["pos_embed.W_pos"],
        "unembed.W_U": state["unembed.W_U"],
    }
    out["unembed.b_U"] = torch.zeros(cfg.p)
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        for n in "QKV":
            out[b + f"attn.W_{n}"] = state[b + f"attn.W_{n}"].transpose(1, 2)  # [h, dh, d] -> [h, d, dh]
            out[b + f"attn.b_{n}"] = torch.zeros(h, dh)
        out[b + "attn.W_O"] = state[b + "attn.W_O"].T.reshape(h, dh, d)  # [d, h*dh] -> [h, dh, d]
        out[b + "attn.b_O"] = torch.zeros(d)
        out[b + "mlp.W_in"] = state[b + "mlp.W_in"].T  # [d_mlp, d] -> [d, d_mlp]
        out[b + "mlp.W_out"] = state[b + "mlp.W_out"].T  # [d, d_mlp] -> [d_mlp, d]
        out[b + "mlp.b_in"], out[b + "mlp.b_out"] = state[b + "mlp.b_in"], state[b + "mlp.b_out"]
    return out


@torch.no_grad()
def drop_extra_outputs(model, W_U: torch.Tensor) -> None:
    """Check that no output column beyond the p answers ever wins on any pair (W_U [d_model, d_vocab_out]
    of the source), then keep the first p (the model already holds them)."""
    p = model.p
    if W_U.shape[1] == p:
        return
    pairs = all_pairs(p, device=W_U.device)
    _, cache = model.run_with_cache(model.pair_tokens(pairs), names_filter=["unembed.hook_in"])
    resid = cache["unembed.hook_in"][:, -1]  # [p*p, d_model] at the answer position
    logits = resid @ W_U  # [p*p, d_vocab_out]
    wins = logits[:, p:].amax(-1) >= logits[:, :p].amax(-1)
    if wins.any():
        a, b = pairs[wins][0].tolist()
        raise CheckpointError(
            f"an output column beyond the {p} answers wins on {int(wins.sum())} pairs (first: a={a}, b={b}); "
            "grokscope's transformer has p outputs, so this model cannot be imported without changing its answers."
        )


def zhong_checkpoint(state: dict, config: dict, path, *, op: str | None = None, device=None) -> Checkpoint:
    """A grokscope Checkpoint of their state dict and training config."""
    cfg = zhong_model_config(config, state)
    ours = convert_zhong_state_dict(state, cfg)
    W_U = ours["unembed.W_U"].float()
    ours["unembed.W_U"] = W_U[:, : cfg.p]
    model = model_from(cfg.to_dict(), ours, path)
    drop_extra_outputs(model, W_U)
    spec = TaskSpec(op=zhong_operation(config, op), p=cfg.p, frac_train=float(config.get("frac", 1.0)), seed=0)
    if device is not None:
        model = model.to(resolve_device(device))
    return Checkpoint(
        model=model,
        task=UnknownSplitTask(spec, SOURCE),
        model_config=cfg,
        train_config=config,
        step=int(config.get("epoch", 0)),
        path=Path(path),
    )


def import_zhong(path: str | os.PathLike, config=None, *, op: str | None = None, device=None) -> Checkpoint:
    """Import one of Zhong et al.'s models: `model_RUNID.pt` with `config_RUNID.json` beside it (or
    `config=`, a path or a dict). `op` overrides the operation read from the config's "funcs"."""
    path = Path(path)
    state = read_state_dict(path)
    config = read_json_config(zhong_config_path(path) if config is None else config, "Zhong et al. config")
    return zhong_checkpoint(state, config, path, op=op, device=device)
