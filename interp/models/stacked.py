"""Many models of one architecture as one computation: stacked weights [M, ...] and a batched forward.

`StackedModels(cfg)` knows how to stack M models' parameters, run all of them on their own inputs
(pairs [M, B, 2] -> logits [M, B, p]) and hand one of them back as an ordinary hookable model.

- MLP: a hand-written forward. The first layer is a row lookup (U e_a is column a of U), done for all
  models at once as one `embedding` into the flattened [M * p, width] table; the second layer is one
  `bmm`. This is what makes a sweep on a CPU faster than the same models one after another.
- Transformer: a hand-written forward over the stacked weights with the same maths as
  interp.models.Transformer (and TransformerLens): one bmm for K and V together over all positions,
  Q, attention, MLP and unembedding at the answer position only in the last layer, and attention
  over the 2-3 positions as broadcast products instead of thousands of tiny matmuls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.models.activations import activation
from interp.models.functional import FunctionalStack
from interp.models.mlp import MLPConfig
from interp.models.transformer import TransformerConfig


class StackedModels(FunctionalStack):
    """The stacking, batched forward and unstacking of M models sharing `cfg`'s shapes (an MLP or a
    transformer; interp.models.functional stacks the weights and hands models back)."""

    def __init__(self, cfg: MLPConfig | TransformerConfig, device: torch.device, dtype: torch.dtype):
        if not isinstance(cfg, (MLPConfig, TransformerConfig)):
            raise TypeError(f"expected an MLPConfig or TransformerConfig, got {type(cfg).__name__}")
        super().__init__(cfg, device, dtype)
        self.is_mlp = isinstance(cfg, MLPConfig)
        self._act = activation(cfg.act if self.is_mlp else cfg.act_fn)

    # ----- inputs --------------------------------------------------------------------------------
    def prepare(self, pairs: Tensor) -> Tensor:
        """pairs [M, B, 2] long -> what `forward` reads: row ids into flattened per-model tables.
        MLP: [M, B, 2] rows of the [M * p, width] first-layer tables. Transformer: [M, B, n_ctx] rows
        of the [M * n_ctx * d_vocab, ...] tables of (position, token), since everything the first
        layer computes before attention depends on the position and the token alone."""
        M = pairs.shape[0]
        model = torch.arange(M, device=pairs.device).view(M, 1, 1)
        if self.is_mlp:
            return pairs + model * self.cfg.p
        cfg = self.cfg
        tokens = pairs
        if cfg.diff_vocab:  # the second operand's tokens are p..2p-1 (Transformer.pair_tokens)
            tokens = tokens + torch.tensor([0, cfg.p], dtype=pairs.dtype, device=pairs.device)
        if cfg.eq_token:
            eq = torch.full((*pairs.shape[:2], 1), cfg.d_vocab - 1, dtype=pairs.dtype, device=pairs.device)
            tokens = torch.cat([tokens, eq], dim=-1)
        T, V = tokens.shape[-1], cfg.d_vocab
        position = torch.arange(T, device=pairs.device).view(1, 1, T)
        return tokens + position * V + model * (T * V)

    # ----- forward -------------------------------------------------------------------------------
    def forward(self, params: dict[str, Tensor], x: Tensor) -> Tensor:  # type: ignore[override]
        """Logits [M, B, p] of the M models on their prepared inputs x [M, B, ...]."""
        if self.is_mlp:
            return self._mlp_forward(params, x)
        return self._transformer_forward(params, x)

    def _mlp_forward(self, params: dict[str, Tensor], idx: Tensor) -> Tensor:
        cfg = self.cfg
        M, p = idx.shape[0], cfg.p
        U = params["U"]  # [M, width, d_in]
        V = U if cfg.tied else params["V"]
        width, d_in = U.shape[1], U.shape[2]
        ia, ib = idx[..., 0], idx[..., 1]  # [M, B] rows of the flattened [M * p, ...] tables
        if cfg.embed == "onehot":
            Ut = U.transpose(1, 2).reshape(M * p, width)  # row a of model m = U[m][:, a]
            Vt = Ut if cfg.tied else V.transpose(1, 2).reshape(M * p, width)
            pre = F.embedding(ia, Ut)  # [M, B, width]
            pre = pre.add_(F.embedding(ib, Vt))
        else:
            E = params["W_E"].reshape(M * p, d_in)  # [M * p, d_embed]
            pre = torch.bmm(F.embedding(ia, E), U.transpose(1, 2))  # [M, B, width]
            pre = pre.add_(torch.bmm(F.embedding(ib, E), V.transpose(1, 2)))
        post = torch.relu_(pre) if cfg.act == "relu" else self._act(pre)  # [M, B, width]
        W = params["W"]  # [M, p, width]
        if cfg.bias:
            return torch.baddbmm(params["b_out"].unsqueeze(1), post, W.transpose(1, 2))  # [M, B, p]
        return torch.bmm(post, W.transpose(1, 2))

    def _transformer_forward(self, params: dict[str, Tensor], rows: Tensor) -> Tensor:
        cfg = self.cfg
        M, B, T = rows.shape
        resid = None
        for layer in range(cfg.n_layers):
            resid = self._block(params, f"blocks.{layer}.", resid, rows, last_only=layer == cfg.n_layers - 1)
        x = resid[:, :, -1]  # [M, B, d]
        if cfg.normalization_type == "LN":
            x = _layer_norm(x, params["ln_final.w"], params["ln_final.b"])
        return torch.baddbmm(params["unembed.b_U"].unsqueeze(1), x, params["unembed.W_U"])  # [M, B, p]

    def _block(
        self, params: dict[str, Tensor], pre: str, resid: Tensor | None, rows: Tensor, last_only: bool
    ) -> Tensor:
        """One transformer block on resid [M, B, T, d] (None for the first block, which reads its
        (position, token) tables through `rows` [M, B, T]); with last_only, returns [M, B, 1, d]."""
        cfg = self.cfg
        M, B, T = rows.shape
        d, h, dh = cfg.d_model, cfg.n_heads, cfg.d_head
        ln = cfg.normalization_type == "LN"
        a = pre + "attn."
        W = {n: params[a + "W_" + n].permute(0, 2, 1, 3).reshape(M, d, h * dh) for n in "QKV"}  # [M, d, h dh]
        b = {n: params[a + "b_" + n].reshape(M, 1, h * dh) for n in "QKV"}
        q_rows = rows[:, :, -1:] if last_only else rows  # [M, B, Tq]
        Tq = q_rows.shape[2]
        if resid is None:
            # the residual stream before the first block: one row per (position, token)
            table = (params["embed.W_E"].unsqueeze(1) + params["pos_embed.W_pos"][:, :T].unsqueeze(2)).reshape(M, -1, d)
            x_tab = _layer_norm(table, params[pre + "ln1.w"], params[pre + "ln1.b"]) if ln else table
            k, v = (F.embedding(rows, torch.baddbmm(b[n], x_tab, W[n]).reshape(-1, h * dh)) for n in "KV")
            q = F.embedding(q_rows, torch.baddbmm(b["Q"], x_tab, W["Q"]).reshape(-1, h * dh))
            resid = F.embedding(q_rows, table.reshape(-1, d))  # [M, B, Tq, d]
        else:
            x = _layer_norm(resid, params[pre + "ln1.w"], params[pre + "ln1.b"]) if ln else resid
            k, v = (torch.baddbmm(b[n], x.reshape(M, B * T, d), W[n]) for n in "KV")  # [M, B*T, h dh]
            x_q = x[:, :, -1:] if last_only else x
            q = torch.baddbmm(b["Q"], x_q.reshape(M, B * Tq, d), W["Q"])
            resid = resid[:, :, -1:] if last_only else resid
        k, v = k.view(M, B, T, h, dh), v.view(M, B, T, h, dh)
        q = q.view(M, B, Tq, 1, h, dh)
        scores = (q * k.unsqueeze(2)).sum(-1) / (dh**0.5)  # [M, B, Tq, Tk, h]
        mask = None
        if cfg.causal and not last_only:
            mask = torch.ones(T, T, dtype=torch.bool, device=rows.device).tril()  # [Tq, Tk]
            scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
        pattern = scores.softmax(dim=3)
        alpha = float(cfg.attention_rate)
        if alpha != 1.0:  # blend with uniform attention over the visible keys (not renormalised)
            uniform = torch.ones(Tq, T, 1, dtype=pattern.dtype, device=rows.device)
            if mask is not None:
                uniform = uniform * mask[:, :, None]
            pattern = alpha * pattern + (1.0 - alpha) * uniform
        z = (pattern.unsqueeze(-1) * v.unsqueeze(2)).sum(3)  # [M, B, Tq, h, dh]
        W_O = params[a + "W_O"].reshape(M, h * dh, d)
        attn_out = torch.baddbmm(params[a + "b_O"].unsqueeze(1), z.reshape(M, B * Tq, h * dh), W_O)
        resid = resid + attn_out.view(M, B, Tq, d)
        if cfg.attn_only:
            return resid
        x = _layer_norm(resid, params[pre + "ln2.w"], params[pre + "ln2.b"]) if ln else resid
        m = pre + "mlp."
        hidden = torch.baddbmm(params[m + "b_in"].unsqueeze(1), x.reshape(M, B * Tq, d), params[m + "W_in"])
        post = torch.relu_(hidden) if cfg.act_fn == "relu" else self._act(hidden)  # [M, B*Tq, d_mlp]
        mlp_out = torch.baddbmm(params[m + "b_out"].unsqueeze(1), post, params[m + "W_out"])
        return resid + mlp_out.view(M, B, Tq, d)

    def activation_size(self) -> int:
        """Rough number of activation values per example and model (for sizing batches)."""
        return activation_size(self.cfg)

    @classmethod
    def activation_size_of(cls, cfg) -> int:
        return activation_size(cfg)


def activation_size(cfg: MLPConfig | TransformerConfig) -> int:
    """Rough number of activation values one example keeps per model in a training step."""
    if isinstance(cfg, MLPConfig):
        return 4 * cfg.width + 4 * cfg.p
    per_layer = cfg.n_ctx * (4 * cfg.d_model + 3 * cfg.n_heads * cfg.d_head + 2 * cfg.n_heads * cfg.n_ctx)
    return per_layer * cfg.n_layers + 3 * cfg.d_mlp + 4 * cfg.p


def _layer_norm(x: Tensor, w: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """interp.models.transformer.LayerNorm for stacked weights w, b [M, d] and x [M, ..., d]."""
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    shape = (w.shape[0],) + (1,) * (x.ndim - 2) + (w.shape[-1],)
    return x / scale * w.view(shape) + b.view(shape)
