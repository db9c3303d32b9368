"""A small hooked transformer whose parameter names, shapes and hook names match TransformerLens's
HookedTransformer (no layer norm by default, learned positional embeddings, untied embed/unembed),
so a HookedTransformer state dict loads into it and gives the same logits.

Extras for the grokking literature: an attention rate alpha in [0, 1] that blends learned attention
with uniform attention, A' = alpha * softmax(QK^T / sqrt(d_head)) + (1 - alpha) * J (Zhong et al. 2023:
alpha = 0 gives the pizza model, alpha = 1 the clock model), and a fast path that computes only the
answer position (`pair_logits`), since work on other positions of the last layer cannot affect it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from interp.errors import CheckpointError, ShapeError, SpecError
from interp.models.activations import activation
from interp.models.hooks import HookedRootModule, HookPoint

TRANSFORMER_ACTIVATIONS = ("relu", "gelu", "silu", "gelu_new", "quad")


@dataclass(frozen=True)
class TransformerConfig:
    """A transformer on the tokens `a b =` (or `a b` with eq_token=False); defaults are Nanda et al.'s."""

    p: int = 113  # modulus: tokens 0..p-1 are residues, token p is '='; p output classes
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"  # relu | gelu | silu | gelu_new | quad
    attention_rate: float = 1.0  # alpha: 1 = learned attention (clock), 0 = uniform attention (pizza)
    eq_token: bool = True  # append '=' and read the answer there (Nanda); False: `a b` (Zhong)
    causal: bool = True  # causal attention mask (Zhong et al. use none)
    normalization_type: str | None = None  # None or "LN"
    init_range: float | None = None  # std of the weight init (default 0.8 / sqrt(d_model), as TransformerLens)

    family = "transformer"

    def __post_init__(self):
        for name in ("p", "n_layers", "d_model", "n_heads", "d_head", "d_mlp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name == "p" else 1):
                raise SpecError("TransformerConfig", name, v, "a positive int" + (" >= 2" if name == "p" else ""))
        if self.act_fn not in TRANSFORMER_ACTIVATIONS:
            raise SpecError("TransformerConfig", "act_fn", self.act_fn, f"one of {list(TRANSFORMER_ACTIVATIONS)}")
        if not 0.0 <= float(self.attention_rate) <= 1.0:
            raise SpecError("TransformerConfig", "attention_rate", self.attention_rate, "a number in [0, 1]")
        if self.normalization_type not in (None, "LN"):
            raise SpecError("TransformerConfig", "normalization_type", self.normalization_type, "None or 'LN'")

    @property
    def d_vocab(self) -> int:
        return self.p + 1 if self.eq_token else self.p

    @property
    def d_vocab_out(self) -> int:
        return self.p

    @property
    def n_ctx(self) -> int:
        return 3 if self.eq_token else 2

    @property
    def n_params(self) -> int:
        d, h = self.d_model, self.n_heads * self.d_head
        per_block = 4 * d * h + 3 * h + d + 2 * d * self.d_mlp + self.d_mlp + d
        if self.normalization_type == "LN":
            per_block += 4 * d
        return self.d_vocab * d + self.n_ctx * d + self.n_layers * per_block + d * self.p + self.p

    def to_dict(self) -> dict:
        return {"family": self.family, **dataclasses.asdict(self)}

    def hooked_transformer_config(self) -> dict:
        """The HookedTransformerConfig fields of the same architecture (attention_rate must be 1)."""
        return dict(
            n_layers=self.n_layers,
            d_model=self.d_model,
            d_head=self.d_head,
            n_heads=self.n_heads,
            d_mlp=self.d_mlp,
            d_vocab=self.d_vocab,
            d_vocab_out=self.d_vocab_out,
            n_ctx=self.n_ctx,
            act_fn=self.act_fn,
            normalization_type=self.normalization_type,
            attention_dir="causal" if self.causal else "bidirectional",
            positional_embedding_type="standard",
        )

    @classmethod
    def from_hooked_transformer_config(cls, cfg: dict) -> TransformerConfig:
        """Read a HookedTransformerConfig (as a dict) of a modular-arithmetic model."""
        try:
            d_vocab, d_vocab_out, n_ctx = (
                int(cfg["d_vocab"]),
                int(cfg.get("d_vocab_out") or cfg["d_vocab"]),
                int(cfg["n_ctx"]),
            )
            eq_token = d_vocab == d_vocab_out + 1
            if n_ctx != (3 if eq_token else 2):
                raise CheckpointError(
                    f"config has n_ctx={n_ctx}, d_vocab={d_vocab}, d_vocab_out={d_vocab_out}: not a modular-arithmetic model "
                    "(expected tokens 'a b =' with d_vocab = p + 1 and n_ctx = 3, or 'a b' with d_vocab = p and n_ctx = 2)."
                )
            pos = cfg.get("positional_embedding_type", "standard")
            if pos != "standard":
                raise CheckpointError(f"config has positional_embedding_type={pos!r}; only 'standard' is supported.")
            act = cfg.get("act_fn") or "relu"
            return cls(
                p=d_vocab_out,
                n_layers=int(cfg["n_layers"]),
                d_model=int(cfg["d_model"]),
                n_heads=int(cfg["n_heads"]),
                d_head=int(cfg["d_head"]),
                d_mlp=int(cfg["d_mlp"]),
                act_fn=act,
                eq_token=eq_token,
                causal=cfg.get("attention_dir", "causal") == "causal",
                normalization_type=cfg.get("normalization_type"),
            )
        except KeyError as exc:
            raise CheckpointError(f"HookedTransformer config lacks the field {exc.args[0]!r}.") from exc
        except SpecError as exc:
            raise CheckpointError(f"HookedTransformer config is not supported: {exc}") from exc


class Embed(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))  # [d_vocab, d_model]

    def forward(self, tokens):  # [batch, pos] -> [batch, pos, d_model]
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))  # [n_ctx, d_model]

    def forward(self, tokens):  # [batch, pos] -> [batch, pos, d_model]
        return self.W_pos[: tokens.shape[1]].unsqueeze(0).expand(tokens.shape[0], -1, -1)


class LayerNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x):
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))  # [n_heads, d_model, d_head]
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))  # [n_heads, d_head, d_model]
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(d))
        self.attn_scale = math.sqrt(dh)
        for name in ("hook_q", "hook_k", "hook_v", "hook_z", "hook_attn_scores", "hook_pattern"):
            setattr(self, name, HookPoint())

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x [batch, pos, d_model] -> [batch, q_pos, d_model]; q_pos = 1 when last_only."""
        cfg = self.cfg
        x_q = x[:, -1:] if last_only else x
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x_q, self.W_Q) + self.b_Q)  # [batch, q_pos, head, d_head]
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)  # [batch, k_pos, head, d_head]
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.attn_scale  # [batch, head, q_pos, k_pos]
        n_q, n_k = q.shape[1], k.shape[1]
        mask = None
        if cfg.causal and not last_only:
            mask = torch.ones(n_k, n_k, dtype=torch.bool, device=x.device).tril()[-n_q:]  # [q_pos, k_pos]
            scores = scores.masked_fill(~mask, float("-inf"))
        scores = self.hook_attn_scores(scores)
        pattern = F.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        alpha = float(cfg.attention_rate)
        if alpha != 1.0:  # blend with uniform attention J (all ones over visible keys, not renormalised)
            uniform = torch.ones(n_q, n_k, dtype=pattern.dtype, device=x.device)
            if mask is not None:
                uniform = uniform * mask
            pattern = alpha * pattern + (1.0 - alpha) * uniform
        pattern = self.hook_pattern(pattern)
        z = self.hook_z(torch.einsum("bkhe,bhqk->bqhe", v, pattern))  # [batch, q_pos, head, d_head]
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


class MLPBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))  # [d_model, d_mlp]
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))  # [d_mlp, d_model]
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = activation(cfg.act_fn, TRANSFORMER_ACTIVATIONS, "TransformerConfig.act_fn")
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x):
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


class TransformerBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        ln = cfg.normalization_type == "LN"
        self.ln1 = LayerNorm(cfg.d_model) if ln else nn.Identity()
        self.ln2 = LayerNorm(cfg.d_model) if ln else nn.Identity()
        self.attn = Attention(cfg)
        self.mlp = MLPBlock(cfg)
        for name in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            setattr(self, name, HookPoint())

    def forward(self, resid: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)  # [batch, pos, d_model]
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid), last_only=last_only))
        resid = self.hook_resid_mid((resid[:, -1:] if last_only else resid) + attn_out)
        resid = self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(self.ln2(resid))))
        return resid


class Unembed(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out))  # [d_model, d_vocab_out]
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        self.hook_in = HookPoint()  # [batch, pos, d_model]
        self.hook_out = HookPoint()  # [batch, pos, d_vocab_out]

    def forward(self, x):
        return self.hook_out(self.hook_in(x) @ self.W_U + self.b_U)


class Transformer(HookedRootModule):
    """Hooked transformer with HookedTransformer's names: embed.W_E, pos_embed.W_pos,
    blocks.{l}.attn.W_Q [n_heads, d_model, d_head], blocks.{l}.mlp.W_in, unembed.W_U; hooks
    hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre, blocks.{l}.attn.hook_pattern,
    blocks.{l}.mlp.hook_post, ... `run_with_cache` / `run_with_hooks` / `ActivationCache` work as usual.
    """

    validate_inputs = True

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg)
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = LayerNorm(cfg.d_model) if cfg.normalization_type == "LN" else nn.Identity()
        self.unembed = Unembed(cfg)
        self.init_weights()
        self.setup()

    def init_weights(self, generator: torch.Generator | None = None):
        std = self.cfg.init_range if self.cfg.init_range is not None else 0.8 / math.sqrt(self.cfg.d_model)
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.split(".")[-1].startswith("W_"):
                    param.normal_(0.0, std, generator=generator)

    @property
    def p(self) -> int:
        return self.cfg.p

    @property
    def n_neurons(self) -> int:
        return self.cfg.d_mlp

    @property
    def neuron_hook(self) -> str:
        return f"blocks.{self.cfg.n_layers - 1}.mlp.hook_post"

    def forward(self, tokens: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """tokens [batch, pos] -> logits [batch, pos, p], as HookedTransformer. With last_only=True
        the last layer is computed at the final position only and logits are [batch, 1, p]."""
        if tokens.ndim == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.ndim != 2 or tokens.shape[1] > self.cfg.n_ctx:
            raise ShapeError(
                f"Transformer expects tokens of shape [batch, pos] with pos <= n_ctx={self.cfg.n_ctx}, got {list(tokens.shape)}."
            )
        if self.validate_inputs and tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.d_vocab):
            raise ShapeError(
                f"token ids must lie in [0, {self.cfg.d_vocab}), got [{int(tokens.min())}, {int(tokens.max())}]."
            )
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for i, block in enumerate(self.blocks):
            resid = block(resid, last_only=last_only and i == len(self.blocks) - 1)
        return self.unembed(self.ln_final(resid))

    def pair_tokens(self, pairs: torch.Tensor) -> torch.Tensor:
        """pairs [batch, 2] -> tokens [batch, n_ctx] (appending '=' = p when eq_token)."""
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ShapeError(f"expected pairs of shape [batch, 2], got {list(pairs.shape)}.")
        if not self.cfg.eq_token:
            return pairs
        eq = torch.full((pairs.shape[0], 1), self.cfg.p, dtype=pairs.dtype, device=pairs.device)
        return torch.cat([pairs, eq], dim=1)

    def pair_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        """The shared surface: logits [batch, p] at the answer position for pairs [batch, 2]."""
        return self(self.pair_tokens(pairs), last_only=True)[:, -1]

    def neuron_in_weights(self) -> torch.Tensor:
        """[d_mlp, p]: the last layer's neurons read through W_E directly (W_E[:p] @ W_in), i.e. the
        direct path from a token to a neuron, ignoring attention mixing."""
        return (self.embed.W_E[: self.cfg.p] @ self.blocks[-1].mlp.W_in).T

    def neuron_out_weights(self) -> torch.Tensor:
        """[d_mlp, p]: each last-layer neuron's direct effect on the logits, W_out @ W_U."""
        return self.blocks[-1].mlp.W_out @ self.unembed.W_U

    def load_hooked_transformer_state_dict(self, state_dict: dict) -> None:
        """Load a HookedTransformer state dict (its IGNORE / mask buffers are dropped)."""
        sd = {
            k: v
            for k, v in state_dict.items()
            if not k.endswith((".IGNORE", ".mask", "attn.rotary_sin", "attn.rotary_cos"))
        }
        load_state_dict_checked(self, sd)


def load_state_dict_checked(model: nn.Module, state_dict: dict) -> None:
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
