"""The transformer's building blocks, with HookedTransformer's parameter and hook names and shapes:
embeddings, layer norm, attention (blended with uniform attention at `attention_rate` < 1), the MLP,
the block and the unembedding."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformer_lens.FactoredMatrix import FactoredMatrix

from interp.models.activations import activation
from interp.models.hooks import HookPoint
from interp.models.transformer_config import TRANSFORMER_ACTIVATIONS, TransformerConfig


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

    @property
    def OV(self) -> FactoredMatrix:
        """The OV circuit W_V @ W_O [n_heads, d_model, d_model] as TransformerLens's FactoredMatrix
        (`attn.OV[h]` is head h's), as HookedTransformer's attention."""
        return FactoredMatrix(self.W_V, self.W_O)

    @property
    def QK(self) -> FactoredMatrix:
        """The QK circuit W_Q @ W_K^T [n_heads, d_model, d_model] as a FactoredMatrix. With
        attention_rate < 1 it drives only the learned part of the attention (the uniform part is fixed)."""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    def forward(
        self, x: torch.Tensor, last_only: bool = False, x_k: torch.Tensor | None = None, x_v: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [batch, pos, d_model] -> [batch, q_pos, d_model]; q_pos = 1 when last_only. x is the
        query input, and the key and value inputs unless x_k / x_v are given; each may also be one
        input per head, [batch, pos, head, d_model] (HookedTransformer's split inputs)."""
        cfg = self.cfg
        x_k = x if x_k is None else x_k
        x_v = x if x_v is None else x_v
        x_q = x[:, -1:] if last_only else x
        q = self.hook_q(project(x_q, self.W_Q) + self.b_Q)  # [batch, q_pos, head, d_head]
        k = self.hook_k(project(x_k, self.W_K) + self.b_K)  # [batch, k_pos, head, d_head]
        v = self.hook_v(project(x_v, self.W_V) + self.b_V)
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
        if hasattr(self, "hook_result"):  # set_use_attn_result: each head's output, [batch, q_pos, head, d_model]
            return self.hook_result(torch.einsum("bqhe,hed->bqhd", z, self.W_O)).sum(-2) + self.b_O
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


def project(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """x [batch, pos, d_model] (one input for every head) or [batch, pos, head, d_model] (one per
    head) through each head's W [head, d_model, d_head] -> [batch, pos, head, d_head]."""
    if x.ndim == 4:
        return torch.einsum("bphd,hde->bphe", x, W)
    return torch.einsum("bpd,hde->bphe", x, W)


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
    """Attention then MLP, each added to the residual stream; attention only with cfg.attn_only (no
    ln2, mlp, hook_resid_mid or hook_mlp_out, as HookedTransformer's attention-only blocks)."""

    # What TransformerLens 4's logit lens asks of a block: its hook_resid_post is the residual stream
    # the next block (or ln_final and the unembedding) reads.
    hook_out_is_single_residual_stream = True

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        ln = cfg.normalization_type == "LN"
        self.attn_only = cfg.attn_only
        self.ln1 = LayerNorm(cfg.d_model) if ln else nn.Identity()
        if not cfg.attn_only:
            self.ln2 = LayerNorm(cfg.d_model) if ln else nn.Identity()
        self.attn = Attention(cfg)
        if not cfg.attn_only:
            self.mlp = MLPBlock(cfg)
        for name in ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"):
            if not (cfg.attn_only and name in ("hook_resid_mid", "hook_mlp_out")):
                setattr(self, name, HookPoint())

    def forward(self, resid: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)  # [batch, pos, d_model]
        attn_out = self.hook_attn_out(self.attn_on(resid, last_only))
        if self.attn_only:
            return self.hook_resid_post((resid[:, -1:] if last_only else resid) + attn_out)
        resid = self.hook_resid_mid((resid[:, -1:] if last_only else resid) + attn_out)
        mlp_in = self.hook_mlp_in(resid.clone()) if hasattr(self, "hook_mlp_in") else resid
        resid = self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(self.ln2(mlp_in))))
        return resid

    def attn_on(self, resid: torch.Tensor, last_only: bool) -> torch.Tensor:
        """The attention sublayer on the residual stream, through HookedTransformer's optional input
        hooks: hook_attn_in (one copy per head for q, k and v) or hook_q_input, hook_k_input and
        hook_v_input (one per head each), [batch, pos, head, d_model], before ln1 as there."""
        if hasattr(self, "hook_attn_in"):
            x = self.ln1(self.hook_attn_in(per_head(resid, self.attn.cfg.n_heads)))
            return self.attn(x, last_only=last_only)
        if hasattr(self, "hook_q_input"):
            q, k, v = (
                self.ln1(hook(per_head(resid, self.attn.cfg.n_heads)))
                for hook in (self.hook_q_input, self.hook_k_input, self.hook_v_input)
            )
            return self.attn(q, last_only=last_only, x_k=k, x_v=v)
        return self.attn(self.ln1(resid), last_only=last_only)


def per_head(resid: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[batch, pos, d_model] -> [batch, pos, head, d_model]: a copy of the residual stream for each head."""
    return resid[:, :, None, :].expand(-1, -1, n_heads, -1).clone()


class Unembed(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out))  # [d_model, d_vocab_out]
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        self.hook_in = HookPoint()  # [batch, pos, d_model]
        self.hook_out = HookPoint()  # [batch, pos, d_vocab_out]

    def forward(self, x):
        return self.hook_out(self.hook_in(x) @ self.W_U + self.b_U)
