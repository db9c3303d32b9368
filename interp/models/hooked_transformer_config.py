"""The translation between `TransformerConfig` and TransformerLens's `HookedTransformerConfig` (as a
dict of its fields), both ways.

Out: the HookedTransformerConfig fields of the same architecture, which `save_pretrained` writes into
config.json beside grokscope's own, so that `HookedTransformerConfig(**{k: cfg[k] for k in its
fields if k in cfg})` and the state dict give a HookedTransformer with the same logits; for an
architecture a HookedTransformer cannot express (Zhong et al.'s attention rate, the quadratic and
tanh activations) config.json says why instead.

In: a HookedTransformerConfig of a modular-arithmetic model, refused with the name of every feature
grokscope's transformer does not have (rotary embeddings, LNPre, gated MLPs, ...).
"""

from __future__ import annotations

import math

from interp.errors import CheckpointError

# The key config.json carries, instead of the HookedTransformerConfig fields, when there is no equivalent.
INCOMPATIBLE_KEY = "hooked_transformer_incompatible"
# The HookedTransformerConfig fields `hooked_transformer_fields` writes (beyond the ones both configs share).
HOOKED_TRANSFORMER_KEYS = (
    "n_layers",
    "d_model",
    "n_ctx",
    "d_head",
    "n_heads",
    "d_mlp",
    "act_fn",
    "d_vocab",
    "d_vocab_out",
    "normalization_type",
    "eps",
    "attention_dir",
    "attn_only",
    "positional_embedding_type",
    "use_attn_scale",
    "attn_scale",
    "gated_mlp",
    "parallel_attn_mlp",
    "final_rms",
)
LAYER_NORM_EPS = 1e-5  # interp.models.transformer_layers.LayerNorm's, and HookedTransformerConfig's default
# Activations with the same meaning in both libraries.
SHARED_ACTIVATIONS = ("relu", "gelu", "silu", "gelu_new")


def hooked_transformer_incompatibility(cfg) -> str | None:
    """Why no HookedTransformer computes what the transformer `cfg` computes, or None when one does."""
    reasons = []
    if float(cfg.attention_rate) != 1.0:
        reasons.append(
            f"attention_rate={cfg.attention_rate}: Zhong et al.'s blend of learned and uniform attention "
            "(alpha * softmax + (1 - alpha) * J, not renormalised: each row of the pattern sums to alpha + "
            "(1 - alpha) * the number of keys it sees) has no HookedTransformer equivalent"
        )
    if not cfg.attn_only and cfg.act_fn not in SHARED_ACTIVATIONS:
        reasons.append(f"act_fn={cfg.act_fn!r} is not among HookedTransformer's activations")
    if not reasons:
        return None
    return "; ".join(reasons) + ". A HookedTransformer loaded with these weights would compute other logits."


def hooked_transformer_fields(cfg) -> dict:
    """The HookedTransformerConfig fields of the transformer `cfg`'s architecture (whatever its
    attention rate: see `hooked_transformer_incompatibility`)."""
    return dict(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_ctx=cfg.n_ctx,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        d_mlp=cfg.d_mlp,
        act_fn=cfg.act_fn,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out,
        normalization_type=cfg.normalization_type,
        eps=LAYER_NORM_EPS,
        attention_dir="causal" if cfg.causal else "bidirectional",
        attn_only=cfg.attn_only,
        positional_embedding_type="standard",
        use_attn_scale=True,
        attn_scale=math.sqrt(cfg.d_head),
        gated_mlp=False,
        parallel_attn_mlp=False,
        final_rms=False,
    )


def unsupported_features(ht: dict) -> list[str]:
    """The features of a HookedTransformerConfig (as a dict) that grokscope's transformer lacks."""
    out = []
    norm = ht.get("normalization_type")
    if norm not in (None, "LN"):
        what = {
            "LNPre": "a layer norm without weights, as fold_ln leaves it: load the state dict without folding "
            "(HookedTransformer.from_pretrained_no_processing, or fold_ln=False)",
            "RMS": "RMS norm",
            "RMSPre": "RMS norm without weights",
        }.get(norm, "an unknown normalization")
        out.append(f"normalization_type={norm!r} ({what})")
    eps = ht.get("eps", LAYER_NORM_EPS)
    if norm == "LN" and not math.isclose(float(eps), LAYER_NORM_EPS, rel_tol=1e-6):
        out.append(f"eps={eps} (grokscope's layer norm uses {LAYER_NORM_EPS})")
    pos = ht.get("positional_embedding_type", "standard")
    if pos != "standard":
        out.append(f"positional_embedding_type={pos!r} ({pos} position encoding; grokscope learns W_pos)")
    if ht.get("attention_dir", "causal") not in ("causal", "bidirectional"):
        out.append(f"attention_dir={ht.get('attention_dir')!r}")
    if not ht.get("attn_only") and ht.get("act_fn") not in SHARED_ACTIVATIONS:
        out.append(f"act_fn={ht.get('act_fn')!r} (grokscope's transformer has {list(SHARED_ACTIVATIONS)} of these)")
    flags = {
        "gated_mlp": "a gated MLP",
        "parallel_attn_mlp": "attention and MLP in parallel",
        "use_local_attn": "local attention",
        "final_rms": "a final RMS norm",
        "post_embedding_ln": "a layer norm after the embedding",
        "use_normalization_before_and_after": "layer norms before and after each sublayer",
        "scale_attn_by_inverse_layer_idx": "attention scaled by the inverse layer index",
        "use_qk_norm": "query and key norms",
        "use_logn_attn": "log-n attention scaling",
        "use_attention_sinks": "attention sinks",
    }
    out += [f"{name}=True ({what})" for name, what in flags.items() if ht.get(name)]
    if ht.get("n_key_value_heads") is not None:
        out.append(f"n_key_value_heads={ht['n_key_value_heads']} (grouped-query attention)")
    if ht.get("num_experts"):
        out.append(f"num_experts={ht['num_experts']} (a mixture of experts)")
    if ht.get("clip_qkv") is not None:
        out.append(f"clip_qkv={ht['clip_qkv']}")
    for name in ("attn_scores_soft_cap", "output_logits_soft_cap"):
        if ht.get(name) not in (None, -1, -1.0, 0, 0.0):
            out.append(f"{name}={ht[name]} (soft-capped {name.split('_soft')[0].replace('_', ' ')})")
    if ht.get("use_attn_scale", True) is False:
        out.append("use_attn_scale=False (attention scores not divided by sqrt(d_head))")
    scale = ht.get("attn_scale", -1.0)
    if ht.get("use_attn_scale", True) and scale not in (None, -1, -1.0) and "d_head" in ht:
        if not math.isclose(float(scale), math.sqrt(float(ht["d_head"])), rel_tol=1e-6):
            out.append(f"attn_scale={scale} (grokscope divides the scores by sqrt(d_head))")
    return out


def transformer_config_kwargs(ht: dict) -> dict:
    """`TransformerConfig` keyword arguments of a HookedTransformerConfig (as a dict) of a
    modular-arithmetic model; a CheckpointError naming what grokscope's transformer cannot express."""
    try:
        d_vocab, p, n_ctx = int(ht["d_vocab"]), int(ht.get("d_vocab_out") or ht["d_vocab"]), int(ht["n_ctx"])
        d_model, n_layers, n_heads, d_head = (int(ht[k]) for k in ("d_model", "n_layers", "n_heads", "d_head"))
    except KeyError as exc:
        raise CheckpointError(f"HookedTransformer config lacks the field {exc.args[0]!r}.") from exc
    unsupported = unsupported_features(ht)
    if unsupported:
        raise CheckpointError(
            "HookedTransformer config is not supported: " + "; ".join(unsupported) + ". grokscope's transformer "
            "has learned positional embeddings, LayerNorm or none, and attention (optionally attention-only) "
            "followed by a plain MLP."
        )
    layouts = {0: (False, False), 1: (True, False), p: (False, True), p + 1: (True, True)}
    eq_token, diff_vocab = layouts.get(d_vocab - p, (None, None))
    if eq_token is None or n_ctx != (3 if eq_token else 2):
        raise CheckpointError(
            f"config has n_ctx={n_ctx}, d_vocab={d_vocab}, d_vocab_out={p}: not a modular-arithmetic model "
            "(expected tokens 'a b =' with d_vocab = p + 1 and n_ctx = 3, or 'a b' with d_vocab = p and "
            "n_ctx = 2; a second operand vocabulary adds p to d_vocab)."
        )
    attn_only = bool(ht.get("attn_only", False))
    d_mlp = ht.get("d_mlp")
    return dict(
        p=p,
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        # an attention-only model has no MLP; HookedTransformerConfig's default width stands in for it
        d_mlp=int(d_mlp) if d_mlp else 4 * d_model,
        act_fn=ht.get("act_fn") or "relu",
        eq_token=eq_token,
        diff_vocab=diff_vocab,
        causal=ht.get("attention_dir", "causal") == "causal",
        normalization_type=ht.get("normalization_type"),
        attn_only=attn_only,
    )
