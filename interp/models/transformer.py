"""A small hooked transformer whose parameter names, shapes and hook names match TransformerLens's
HookedTransformer (no layer norm by default, learned positional embeddings, untied embed/unembed),
so a HookedTransformer state dict loads into it and gives the same logits, and TransformerLens's
`ActivationCache` methods and `transformer_lens.patching` functions run on it.

Extras for the grokking literature (see `TransformerConfig`): an attention rate alpha in [0, 1] that
blends learned attention with uniform attention, A' = alpha * softmax(QK^T / sqrt(d_head)) + (1 - alpha) * J
(Zhong et al. 2023: alpha = 0 gives the pizza model, alpha = 1 the clock model), a second vocabulary
for the second operand, and a fast path that computes only the answer position (`pair_logits`), since
work on other positions of the last layer cannot affect it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from transformer_lens.FactoredMatrix import FactoredMatrix

from interp.errors import ShapeError, SpecError
from interp.models.hooks import HookedModel, HookPoint
from interp.models.pretrained import Pretrained, load_state_dict_checked
from interp.models.tl_surface import TokensMixin, check_labels, check_return_type, check_unsupported, model_output
from interp.models.transformer_config import TRANSFORMER_ACTIVATIONS, TransformerConfig
from interp.models.transformer_layers import Embed, LayerNorm, PosEmbed, TransformerBlock, Unembed
from interp.validation import check_type

__all__ = ["TRANSFORMER_ACTIVATIONS", "Transformer", "TransformerConfig", "load_state_dict_checked"]


class Transformer(TokensMixin, Pretrained, HookedModel):
    """Hooked transformer with HookedTransformer's names: embed.W_E, pos_embed.W_pos,
    blocks.{l}.attn.W_Q [n_heads, d_model, d_head], blocks.{l}.mlp.W_in, unembed.W_U; hooks
    hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre, blocks.{l}.attn.hook_pattern,
    blocks.{l}.mlp.hook_post, ... `run_with_cache` returns a TransformerLens `ActivationCache`
    (`run_with_cache(tokens, return_type="loss", incl_bwd=True)` adds the gradients under "..._grad");
    `forward(..., return_type=...)`, `W_E`, `W_U`, `W_Q`, ... (stacked over layers), `OV` and `QK`
    (FactoredMatrix), `to_tokens`, `to_str_tokens`, `tokens_to_residual_directions` and
    `accumulated_bias` are there as on a HookedTransformer. With attn_only=True the blocks have no MLP.
    """

    validate_inputs = True
    config_class = TransformerConfig
    GLOBAL_HOOKS = {"embed": "hook_embed", "pos_embed": "hook_pos_embed"}
    BLOCK_HOOKS = {
        "resid_pre": "blocks.{l}.hook_resid_pre",
        "resid_mid": "blocks.{l}.hook_resid_mid",
        "resid_post": "blocks.{l}.hook_resid_post",
        "attn_out": "blocks.{l}.hook_attn_out",
        "mlp_out": "blocks.{l}.hook_mlp_out",
        "q": "blocks.{l}.attn.hook_q",
        "k": "blocks.{l}.attn.hook_k",
        "v": "blocks.{l}.attn.hook_v",
        "z": "blocks.{l}.attn.hook_z",
        "pattern": "blocks.{l}.attn.hook_pattern",
        "attn_scores": "blocks.{l}.attn.hook_attn_scores",
        "pre": "blocks.{l}.mlp.hook_pre",
        "post": "blocks.{l}.mlp.hook_post",
    }
    position_logits_hook = "unembed.hook_out"  # the logits at every position, [batch, pos, d_vocab_out]
    # neuron_in_weights / neuron_out_weights are the direct path only (attention mixes the operands)
    neuron_weights_exact = False
    neuron_weights = "u_m = v_m = (W_E[:p] @ W_in)[:, m], w_m = (W_out @ W_U)[m] (the direct path of the last layer)"

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.attn_only:  # no MLP blocks: said when one of their hooks is asked for
            self.HOOK_NOTE = " This transformer is attention-only (attn_only=True): it has no MLP hooks."
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
        self.require_mlp("n_neurons")
        return self.cfg.d_mlp

    @property
    def neuron_hook(self) -> str:
        self.require_mlp("neuron_hook")
        return f"blocks.{self.cfg.n_layers - 1}.mlp.hook_post"

    def require_mlp(self, what: str) -> None:
        """A SpecError saying that an attention-only transformer has no MLP neurons for `what`."""
        if self.cfg.attn_only:
            raise SpecError(
                "Transformer",
                what,
                "asked of an attention-only model (attn_only=True)",
                "a transformer with MLP blocks: the neuron analyses read the last block's MLP neurons",
                "Read the attention instead (cache['pattern', layer], model.OV, model.QK, activation_patch "
                "with hook='z' or 'resid_pre').",
            )

    def forward(
        self,
        input,
        return_type: str | None = "logits",
        loss_per_token: bool = False,
        prepend_bos=None,
        padding_side=None,
        start_at_layer: int | None = None,
        tokens: torch.Tensor | None = None,
        shortformer_pos_embed=None,
        attention_mask=None,
        stop_at_layer: int | None = None,
        past_kv_cache=None,
        *,
        labels: torch.Tensor | None = None,
        last_only: bool = False,
    ):
        """tokens [batch, pos] -> logits [batch, pos, p], as HookedTransformer.forward (same arguments,
        in the same order; see `interp.models.tl_surface`).

        return_type: "logits", "loss" (cross-entropy of the answer position's logits against the
            answer), "both" (`Output(logits, loss)`) or None. The answers are the last column of tokens
            [batch, n_ctx + 1] (`a b = c`, the model reads the first n_ctx) or `labels` [batch].
        loss_per_token: the loss of each sequence, [batch, 1], instead of the mean.
        start_at_layer / stop_at_layer: run blocks[start_at_layer:stop_at_layer] only, as
            HookedTransformer: with start_at_layer `input` is the residual stream [batch, pos, d_model]
            (pass `tokens=` for the loss); with stop_at_layer the residual stream is returned.
        input may also be problems as text (`"3 5 ="`), as `to_tokens` reads them.
        last_only: compute the last layer at the final position only (logits [batch, 1, p]).
        """
        where = "Transformer.forward"
        check_return_type(return_type, where)
        check_unsupported(
            where,
            prepend_bos=prepend_bos,
            shortformer_pos_embed=shortformer_pos_embed,
            attention_mask=attention_mask,
            past_kv_cache=past_kv_cache,
        )
        if start_at_layer is None:
            tokens, answers = self.split_answers(input)
            resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        else:
            resid = input  # [batch, pos, d_model]
            answers = None if tokens is None else self.split_answers(tokens)[1]
        if labels is not None:
            if answers is not None:
                raise SpecError(where, "labels", "given", "None when the tokens carry the answer (a b = c)")
            answers = check_labels(labels, resid.shape[0], self.cfg.p, resid.device)
        n_layers = len(self.blocks)
        for i, block in list(enumerate(self.blocks))[start_at_layer:stop_at_layer]:
            resid = block(resid, last_only=last_only and i == n_layers - 1)
        if stop_at_layer is not None:
            return resid
        resid = self.ln_final(resid)
        if return_type is None:
            return None
        logits = self.unembed(resid)
        return model_output(
            logits,
            logits[:, -1:],  # [batch, 1, p]: the one predicted position, so the loss per token is [batch, 1]
            None if answers is None else answers[:, None],
            return_type,
            loss_per_token,
            where,
            "Pass tokens [batch, n_ctx + 1] whose last column is the answer (model.to_tokens('3 5 = 8'), or "
            "rows (a, b, c)), or labels= [batch].",
        )

    # HookedTransformer's switches for optional hooks: the hook each adds to every block, and the module
    # of the block that holds it. Off by default (each costs a tensor per head); a switched-off hook is
    # not in hook_dict, so every hook in hook_dict fires on a forward pass.
    HOOK_SWITCHES = {
        "set_use_attn_result": (("attn", "hook_result"),),
        "set_use_attn_in": (("", "hook_attn_in"),),
        "set_use_split_qkv_input": (("", "hook_q_input"), ("", "hook_k_input"), ("", "hook_v_input")),
        "set_use_hook_mlp_in": (("", "hook_mlp_in"),),
    }

    def set_use_attn_result(self, use_attn_result: bool) -> None:
        """Add (True) or remove (False) blocks.{l}.attn.hook_result, each head's output written into the
        residual stream, [batch, pos, head, d_model], as HookedTransformer.set_use_attn_result."""
        self.switch_hooks("set_use_attn_result", use_attn_result)

    def set_use_attn_in(self, use_attn_in: bool) -> None:
        """Add or remove blocks.{l}.hook_attn_in, the attention's input as one copy per head [batch, pos,
        head, d_model] (before ln1), as HookedTransformer.set_use_attn_in."""
        self.switch_hooks("set_use_attn_in", use_attn_in)

    def set_use_split_qkv_input(self, use_split_qkv_input: bool) -> None:
        """Add or remove blocks.{l}.hook_q_input, hook_k_input and hook_v_input, separate per-head copies
        of the attention's input for the queries, keys and values [batch, pos, head, d_model], as
        HookedTransformer.set_use_split_qkv_input."""
        self.switch_hooks("set_use_split_qkv_input", use_split_qkv_input)

    def set_use_hook_mlp_in(self, use_hook_mlp_in: bool) -> None:
        """Add or remove blocks.{l}.hook_mlp_in, the MLP's input [batch, pos, d_model] (before ln2), as
        HookedTransformer.set_use_hook_mlp_in."""
        self.switch_hooks("set_use_hook_mlp_in", use_hook_mlp_in)

    def switch_hooks(self, switch: str, on: bool) -> None:
        """Add or remove the hooks of one of HOOK_SWITCHES in every block, then rebuild hook_dict."""
        where = f"Transformer.{switch}"
        check_type(where, switch.removeprefix("set_"), on, bool, "True or False")
        if on and switch == "set_use_hook_mlp_in" and self.cfg.attn_only:
            raise SpecError(where, "use_hook_mlp_in", on, "False", "This transformer is attention-only: it has no MLP.")
        exclusive = {"set_use_attn_in": "set_use_split_qkv_input", "set_use_split_qkv_input": "set_use_attn_in"}
        if on and switch in exclusive and self.hooks_switched_on(exclusive[switch]):
            raise SpecError(
                where,
                switch.removeprefix("set_"),
                on,
                "False while the other is on",
                f"hook_attn_in and the split q/k/v inputs exclude each other (as in TransformerLens): call "
                f"{exclusive[switch]}(False) first.",
            )
        for block in self.blocks:
            for module_name, hook in self.HOOK_SWITCHES[switch]:
                module = block.get_submodule(module_name)
                if on and not hasattr(module, hook):
                    setattr(module, hook, HookPoint().train(module.training))
                elif not on and hasattr(module, hook):
                    delattr(module, hook)
        self.setup()

    def hooks_switched_on(self, switch: str) -> bool:
        """Whether the hooks of `switch` (a HOOK_SWITCHES key) are there."""
        module_name, hook = self.HOOK_SWITCHES[switch][0]
        return hasattr(self.blocks[0].get_submodule(module_name), hook)

    def hook_note(self, hook: str) -> str:
        """HOOK_NOTE, or the switch that adds `hook` when it is one of HOOK_SWITCHES'."""
        for switch, places in self.HOOK_SWITCHES.items():
            if any(hook.endswith(f".{name}") or hook == name for _, name in places):
                return f" It is added by model.{switch}(True), as on a HookedTransformer."
        return self.HOOK_NOTE

    def split_answers(self, input) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(tokens [batch, pos <= n_ctx], answers [batch] or None) of the model's input: tokens
        [batch, n_ctx + 1] carry the answer as their last column; text is read by `to_tokens`."""
        if isinstance(input, str) or (isinstance(input, list) and input and isinstance(input[0], str)):
            input = self.to_tokens(input)
        input = torch.as_tensor(input)
        tokens = input.unsqueeze(0) if input.ndim == 1 else input
        n_ctx, d_vocab = self.cfg.n_ctx, self.cfg.d_vocab
        if tokens.ndim != 2 or tokens.shape[1] > n_ctx + 1:
            raise ShapeError(
                f"Transformer expects tokens of shape [batch, pos] with pos <= n_ctx={n_ctx} (or n_ctx + 1 = "
                f"{n_ctx + 1} with the answer last), got {list(tokens.shape)}."
            )
        answers = None
        if tokens.shape[1] == n_ctx + 1:
            tokens, answers = tokens[:, :-1], tokens[:, -1]
            if self.validate_inputs and answers.numel() and (int(answers.min()) < 0 or int(answers.max()) >= self.p):
                raise ShapeError(
                    f"the answers (the last of {n_ctx + 1} tokens) must lie in [0, {self.p}), got "
                    f"[{int(answers.min())}, {int(answers.max())}]."
                )
        if self.validate_inputs and tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= d_vocab):
            raise ShapeError(f"token ids must lie in [0, {d_vocab}), got [{int(tokens.min())}, {int(tokens.max())}].")
        return tokens, answers

    def problem_tokens(self, pairs: torch.Tensor) -> torch.Tensor:
        """`to_tokens`' rows (a, b) -> tokens: `pair_tokens`."""
        return self.pair_tokens(pairs)

    def token_strings(self, ids: list[int]) -> list[str]:
        """`to_str_tokens`' names: "=" for the '=' token, the residue for an operand (b's token p + b
        with diff_vocab) or an answer."""
        eq = self.cfg.d_vocab - 1 if self.cfg.eq_token else None
        return ["=" if i == eq else str(i - self.p if i >= self.p else i) for i in ids]

    def pair_tokens(self, pairs: torch.Tensor) -> torch.Tensor:
        """pairs [batch, 2] -> tokens [batch, n_ctx]: b shifted to p + b with diff_vocab, and '='
        (the last token id) appended with eq_token."""
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ShapeError(f"expected pairs of shape [batch, 2], got {list(pairs.shape)}.")
        cfg = self.cfg
        if cfg.diff_vocab:
            pairs = pairs + torch.tensor([0, cfg.p], dtype=pairs.dtype, device=pairs.device)
        if not cfg.eq_token:
            return pairs
        eq = torch.full((pairs.shape[0], 1), cfg.d_vocab - 1, dtype=pairs.dtype, device=pairs.device)
        return torch.cat([pairs, eq], dim=1)

    def pair_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        """The shared surface: logits [batch, p] at the answer position for pairs [batch, 2]."""
        return self(self.pair_tokens(pairs), last_only=True)[:, -1]

    def operand_embeddings(self) -> torch.Tensor:
        """[2, p, d_model]: the embedding rows of a and of b (one table, or both tables with diff_vocab)."""
        p, W_E = self.cfg.p, self.embed.W_E
        return torch.stack([W_E[:p], W_E[p : 2 * p] if self.cfg.diff_vocab else W_E[:p]])

    def neuron_in_weights(self) -> torch.Tensor:
        """The last layer's neurons read through W_E directly (W_E[:p] @ W_in), i.e. the direct path
        from a token to a neuron, ignoring attention mixing: [d_mlp, p], or [d_mlp, 2, p] (a's table,
        b's table) with diff_vocab, as the MLP's (u_m, v_m)."""
        self.require_mlp("neuron_in_weights")
        W_in = self.blocks[-1].mlp.W_in  # [d_model, d_mlp]
        if not self.cfg.diff_vocab:
            return (self.embed.W_E[: self.cfg.p] @ W_in).T
        return torch.einsum("opd,dn->nop", self.operand_embeddings(), W_in)  # [d_mlp, 2, p]

    def neuron_out_weights(self) -> torch.Tensor:
        """[d_mlp, p]: each last-layer neuron's direct effect on the logits, W_out @ W_U."""
        self.require_mlp("neuron_out_weights")
        return self.blocks[-1].mlp.W_out @ self.unembed.W_U

    # ----- the hook vocabulary and read-outs the analysis uses (interp.interventions) -----
    @property
    def hidden_act(self):
        """The activation function of the last layer's neurons."""
        self.require_mlp("hidden_act")
        return self.blocks[-1].mlp.act

    def answer_logits(self, pairs: torch.Tensor, full: bool = True, all_positions: bool = False) -> torch.Tensor:
        """Logits [B, p] at the answer position for pairs [B, 2]. full=True runs every position of every
        layer (hooks see [B, n_ctx, ...]); full=False the fast path (`pair_logits`: the last layer at the
        answer position only); all_positions=True the logits at every position, [B, n_ctx, p]."""
        if not full and not all_positions:
            return self.pair_logits(pairs)
        logits = self(self.pair_tokens(pairs))
        return logits if all_positions else logits[:, -1]

    def hook_layout(self, hook_name: str) -> str:
        """How a hook's activation is laid out after the batch axis: "pos_units" [pos, n], "pos_head"
        [pos, head, d_head] (or [pos, head, d_model] for the per-head results and inputs that
        HOOK_SWITCHES add) or "head_qk" [head, q_pos, k_pos]."""
        if hook_name.endswith(("hook_pattern", "hook_attn_scores")):
            return "head_qk"
        per_head = ("hook_q", "hook_k", "hook_v", "hook_z", "hook_result", "hook_attn_in")
        if hook_name.endswith(per_head + ("hook_q_input", "hook_k_input", "hook_v_input")):
            return "pos_head"
        return "pos_units"

    def hook_width(self, hook_name: str) -> int:
        """Units of a "pos_units" hook: d_mlp inside an MLP, d_model on the residual stream."""
        return self.cfg.d_mlp if ".mlp." in hook_name else self.cfg.d_model

    def head_hook(self, layer: int) -> str:
        """The hook holding each head's output at `layer` ([batch, pos, head, d_head])."""
        return f"blocks.{layer}.attn.hook_z"

    def expansion_point(self, hook_name: str) -> str | None:
        """The hook at which a forward pass can switch from B rows to k*B rows before `hook_name`
        (interp.interventions.run_variants): the residual stream at the start of its block (or the hook
        itself when it is one); None for the embeddings (the inputs are repeated instead)."""
        parts = hook_name.split(".")
        if parts[0] == "blocks":
            layer, rest = parts[1], ".".join(parts[2:])
            if rest in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"):
                return hook_name
            attn_inputs = ("hook_attn_out", "hook_attn_in", "hook_q_input", "hook_k_input", "hook_v_input")
            if rest.startswith(("attn.", "ln1.")) or rest in attn_inputs:
                return f"blocks.{layer}.hook_resid_pre"
            if rest.startswith(("mlp.", "ln2.")) or rest in ("hook_mlp_out", "hook_mlp_in"):
                return f"blocks.{layer}.hook_resid_mid"
            return None
        if parts[0] == "ln_final":
            return f"blocks.{self.cfg.n_layers - 1}.hook_resid_post"
        return None

    def linear_readout(self, hook_name: str):
        """(readout [d_mlp, p], transform) with logits = transform(act)[..., answer position, :] @ readout
        + terms the hook does not touch, for the last layer's hook_post (identity) and hook_pre (its
        activation function) when there is no final layer norm; None otherwise."""
        if self.cfg.normalization_type is not None:
            return None
        last = f"blocks.{self.cfg.n_layers - 1}.mlp."
        if hook_name == last + "hook_post":
            return self.neuron_out_weights(), lambda x: x
        if hook_name == last + "hook_pre":
            return self.neuron_out_weights(), self.blocks[-1].mlp.act
        return None

    def embedding_table(self) -> torch.Tensor:
        """[p, d] the operand embeddings with the token axis first: W_E[:p], or with a second operand
        vocabulary (diff_vocab) both tables side by side ([p, 2 d_model])."""
        return torch.cat(list(self.operand_embeddings()), dim=1) if self.cfg.diff_vocab else self.embed.W_E[: self.p]

    def unembedding_table(self) -> torch.Tensor:
        """[p, d_model] the unembedding with the class axis first: W_U^T."""
        return self.unembed.W_U.T

    def embedded_answer_logits(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(emb [B, n_ctx, d_model], logits [B, p]): the token embeddings as a leaf tensor that requires
        grad, fed in at hook_embed, and the answer logits computed from it, so emb[:, 0] and emb[:, 1]
        carry the gradients with respect to each operand's embedding."""
        tokens = self.pair_tokens(pairs)
        emb = self.embed.W_E[tokens].detach().clone().requires_grad_(True)
        logits = self.run_with_hooks(tokens, fwd_hooks=[("hook_embed", lambda act, hook: emb)])[:, -1]
        return emb, logits

    # ----- HookedTransformer's weight views and the helpers its ActivationCache calls -----
    W_E = property(lambda self: self.embed.W_E)  # [d_vocab, d_model]
    W_pos = property(lambda self: self.pos_embed.W_pos)  # [n_ctx, d_model]
    W_E_pos = property(lambda self: torch.cat([self.W_E, self.W_pos], dim=0))  # [d_vocab + n_ctx, d_model]
    W_U = property(lambda self: self.unembed.W_U)  # [d_model, d_vocab_out]
    b_U = property(lambda self: self.unembed.b_U)  # [d_vocab_out]
    W_Q = property(lambda self: self.stacked("attn.W_Q"))  # [n_layers, n_heads, d_model, d_head]
    W_K = property(lambda self: self.stacked("attn.W_K"))
    W_V = property(lambda self: self.stacked("attn.W_V"))
    W_O = property(lambda self: self.stacked("attn.W_O"))  # [n_layers, n_heads, d_head, d_model]
    b_Q = property(lambda self: self.stacked("attn.b_Q"))  # [n_layers, n_heads, d_head]
    b_K = property(lambda self: self.stacked("attn.b_K"))
    b_V = property(lambda self: self.stacked("attn.b_V"))
    b_O = property(lambda self: self.stacked("attn.b_O"))  # [n_layers, d_model]
    W_in = property(lambda self: self.stacked("mlp.W_in"))  # [n_layers, d_model, d_mlp]
    W_out = property(lambda self: self.stacked("mlp.W_out"))  # [n_layers, d_mlp, d_model]
    b_in = property(lambda self: self.stacked("mlp.b_in"))  # [n_layers, d_mlp]
    b_out = property(lambda self: self.stacked("mlp.b_out"))  # [n_layers, d_model]

    @property
    def OV(self) -> FactoredMatrix:
        """Every head's OV circuit W_V @ W_O as TransformerLens's FactoredMatrix [n_layers, n_heads,
        d_model, d_model] (`model.OV[layer, head]`), as HookedTransformer.OV."""
        return FactoredMatrix(self.W_V, self.W_O)

    @property
    def QK(self) -> FactoredMatrix:
        """Every head's QK circuit W_Q @ W_K^T as a FactoredMatrix [n_layers, n_heads, d_model, d_model],
        as HookedTransformer.QK (with attention_rate < 1 it drives only the learned part of the attention)."""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    def stacked(self, name: str) -> torch.Tensor:
        """The parameter `name` of every block, stacked: [n_layers, ...] (HookedTransformer's `W_Q` etc.)."""
        return torch.stack([block.get_parameter(name) for block in self.blocks])

    def tokens_to_residual_directions(self, tokens) -> torch.Tensor:
        """The unembedding directions of answer classes: an int (or a residue as a string) -> [d_model],
        a tensor [...] -> [..., d_model]."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        if isinstance(tokens, int) or (isinstance(tokens, torch.Tensor) and tokens.ndim == 0):
            return self.unembed.W_U[:, int(tokens)]
        if not isinstance(tokens, torch.Tensor):
            raise ShapeError(f"expected an int or a tensor of class ids, got {type(tokens).__name__}.")
        return self.unembed.W_U.T[tokens]  # [..., d_model]

    def accumulated_bias(self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True) -> torch.Tensor:
        """[d_model] the biases added to the residual stream before block `layer` (its attention's too
        with mlp_input), as HookedTransformer.accumulated_bias."""
        out = torch.zeros(self.cfg.d_model, device=self.embed.W_E.device, dtype=self.embed.W_E.dtype)
        for i, block in enumerate(self.blocks[: layer + (1 if mlp_input else 0)]):
            out = out + block.attn.b_O
            if include_mlp_biases and i < layer and not self.cfg.attn_only:
                out = out + block.mlp.b_out
        return out

    def load_hooked_transformer_state_dict(self, state_dict: dict) -> None:
        """Load a HookedTransformer state dict (its IGNORE / mask buffers are dropped)."""
        sd = {
            k: v
            for k, v in state_dict.items()
            if not k.endswith((".IGNORE", ".mask", "attn.rotary_sin", "attn.rotary_cos"))
        }
        load_state_dict_checked(self, sd)
