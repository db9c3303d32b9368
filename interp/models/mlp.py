"""Two-layer MLP for modular arithmetic: logits = W act(U e_a + V e_b) (+ b_out).

The setting of Gromov 2023, Doshi et al. 2024 and the coexistence paper. Neuron m has input
weights u_m = U[m] and v_m = V[m] (one value per input token) and output weights w_m = W[:, m]
(one value per class), which is what the Fourier probes read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from interp.errors import ShapeError, SpecError
from interp.models.activations import activation
from interp.models.hooked_transformer_config import INCOMPATIBLE_KEY
from interp.models.hooks import HookedModel, HookPoint
from interp.models.pretrained import Pretrained
from interp.models.tl_surface import INT_DTYPES, TokensMixin, check_labels, check_return_type, model_output
from interp.validation import check_choice, check_int, check_number

MLP_ACTIVATIONS = ("relu", "quad", "gelu", "silu", "rev_relu")


@dataclass(frozen=True)
class MLPConfig:
    """A two-layer MLP on pairs (a, b) of residues mod p."""

    p: int = 97  # number of input tokens and of output classes
    width: int = 512  # hidden neurons N
    act: str = "relu"  # relu | quad | gelu | silu | rev_relu
    tied: bool = False  # U = V (one input matrix for both operands)
    embed: str = "onehot"  # onehot: U acts on e_a directly | learned: U acts on a learned W_E[a]
    d_embed: int | None = None  # width of the learned embedding (default p)
    bias: bool = False  # output bias b_out (the coexistence paper's mu)
    init_scale: float = 1.0  # U, V ~ N(0, s^2 / fan_in), W ~ N(0, s^2 / width)

    family = "mlp"
    n_layers = 1  # one hidden layer: what TransformerLens's ActivationCache.stack_activation reads
    pretrained_keys = (INCOMPATIBLE_KEY,)  # config.json keys that are not fields

    def __post_init__(self):
        check_int("MLPConfig", "p", self.p, min_value=2, expected="an int >= 2 (the task's modulus)")
        check_int("MLPConfig", "width", self.width, min_value=1)
        check_choice("MLPConfig", "act", self.act, MLP_ACTIVATIONS)
        check_choice("MLPConfig", "embed", self.embed, ("onehot", "learned"))
        if self.d_embed is not None and (
            self.embed != "learned"
            or isinstance(self.d_embed, bool)
            or not isinstance(self.d_embed, int)
            or self.d_embed < 1
        ):
            raise SpecError("MLPConfig", "d_embed", self.d_embed, "None, or a positive int with embed='learned'")
        check_number("MLPConfig", "init_scale", self.init_scale, min_value=0, inclusive=False)

    @property
    def n_params(self) -> int:
        d_in = self.p if self.embed == "onehot" else (self.d_embed or self.p)
        n = self.width * d_in * (1 if self.tied else 2) + self.p * self.width
        n += self.p * d_in if self.embed == "learned" else 0
        return n + (self.p if self.bias else 0)

    def to_dict(self) -> dict:
        return {"family": self.family, **dataclasses.asdict(self)}

    def short_name(self) -> str:
        """The family and size, for run names: "mlp,width=512"."""
        return f"{self.family},width={self.width}"

    def describe(self) -> str:
        """The architecture in words, for pages: "MLP width 512, relu"."""
        return f"MLP width {self.width}, {self.act}"

    def pretrained_fields(self) -> dict:
        """What config.json carries beside `to_dict()`: why there is no HookedTransformerConfig."""
        return {
            INCOMPATIBLE_KEY: "a two-layer MLP on pairs (a, b), not a transformer: no HookedTransformer computes it."
        }


class MLP(TokensMixin, Pretrained, HookedModel):
    """Hookable two-layer MLP. Hooks: hook_in_a, hook_in_b ([batch, width] contributions of each
    operand), hook_pre, hook_post ([batch, width] hidden neurons), hook_logits ([batch, p]).
    `run_with_cache` returns an ActivationCache (`cache["post"]`, `cache["post", 0]`)."""

    neuron_hook = "hook_post"
    validate_inputs = True  # range-check token ids (a host sync); training loops switch it off
    config_class = MLPConfig
    GLOBAL_HOOKS = {
        "in_a": "hook_in_a",
        "in_b": "hook_in_b",
        "pre": "hook_pre",
        "post": "hook_post",
        "logits": "hook_logits",
    }
    position_logits_hook = None  # one position: the answer logits are all the logits
    # neuron_in_weights / neuron_out_weights are each neuron's whole input and output maps (exact)
    neuron_weights_exact = True
    neuron_weights = "u_m = U[m], v_m = V[m] (through W_E with a learned embedding), w_m = W[:, m]"

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        p, n = cfg.p, cfg.width
        d_in = p if cfg.embed == "onehot" else (cfg.d_embed or p)
        if cfg.embed == "learned":
            self.W_E = nn.Parameter(torch.randn(p, d_in))  # [p, d_embed]
        self.U = nn.Parameter(torch.randn(n, d_in) * cfg.init_scale / d_in**0.5)  # [width, d_in]
        if not cfg.tied:
            self.V = nn.Parameter(torch.randn(n, d_in) * cfg.init_scale / d_in**0.5)  # [width, d_in]
        self.W = nn.Parameter(torch.randn(p, n) * cfg.init_scale / n**0.5)  # [p, width]
        if cfg.bias:
            self.b_out = nn.Parameter(torch.zeros(p))
        self.act = activation(cfg.act, MLP_ACTIVATIONS, "MLPConfig.act")
        self.hook_in_a = HookPoint()
        self.hook_in_b = HookPoint()
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()
        self.hook_logits = HookPoint()
        self.setup()

    @property
    def p(self) -> int:
        return self.cfg.p

    @property
    def n_neurons(self) -> int:
        return self.cfg.width

    def _V(self) -> torch.Tensor:
        return self.U if self.cfg.tied else self.V

    def forward(self, pairs, return_type: str | None = "logits", loss_per_token: bool = False, *, labels=None):
        """pairs [batch, 2] long (a, b) -> logits [batch, p]. A float [batch, 2, p] input is read
        as (soft) one-hot vectors, so gradients with respect to the inputs can be taken.

        As HookedTransformer.forward (see `interp.models.tl_surface`): return_type "logits", "loss" (the
        cross-entropy of the logits against the answers: triples (a, b, c) [batch, 3] carry them, or
        `labels` [batch] gives them; the MLP has no positions, so this is the loss of every output),
        "both" (`Output(logits, loss)`) or None; loss_per_token=True gives the loss of each example,
        [batch]. Problems as text (`"3 5 = 8"`) are read by `to_tokens`."""
        where = "MLP.forward"
        check_return_type(return_type, where)
        if isinstance(pairs, str) or (isinstance(pairs, list) and pairs and isinstance(pairs[0], str)):
            pairs = self.to_tokens(pairs)
        p = self.cfg.p
        answers = None
        if pairs.dtype in INT_DTYPES:
            if pairs.ndim != 2 or pairs.shape[1] not in (2, 3):
                raise ShapeError(
                    f"MLP expects pairs of shape [batch, 2] (or [batch, 3] with the answer last), got {list(pairs.shape)}."
                )
            if self.validate_inputs and pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= p):
                raise ShapeError(
                    f"MLP inputs must lie in [0, {p}), got values in [{int(pairs.min())}, {int(pairs.max())}]."
                )
            if pairs.shape[1] == 3:
                pairs, answers = pairs[:, :2], pairs[:, 2]
            a, b = pairs[:, 0], pairs[:, 1]
            if self.cfg.embed == "learned":
                in_a = self.W_E[a] @ self.U.T  # [batch, width]
                in_b = self.W_E[b] @ self._V().T
            else:
                in_a = self.U.T[a]  # [batch, width]; a gather, not a one-hot matmul
                in_b = self._V().T[b]
        else:
            if pairs.ndim != 3 or pairs.shape[1:] != (2, p):
                raise ShapeError(f"MLP one-hot input must be [batch, 2, {p}], got {list(pairs.shape)}.")
            x_a, x_b = pairs[:, 0], pairs[:, 1]  # [batch, p]
            if self.cfg.embed == "learned":
                x_a, x_b = x_a @ self.W_E, x_b @ self.W_E
            in_a, in_b = x_a @ self.U.T, x_b @ self._V().T
        if labels is not None:
            if answers is not None:
                raise SpecError(where, "labels", "given", "None when the input carries the answer (a, b, c)")
            answers = check_labels(labels, pairs.shape[0], p, pairs.device)
        pre = self.hook_pre(self.hook_in_a(in_a) + self.hook_in_b(in_b))  # [batch, width]
        post = self.hook_post(self.act(pre))
        logits = post @ self.W.T  # [batch, p]
        if self.cfg.bias:
            logits = logits + self.b_out
        logits = self.hook_logits(logits)
        if return_type is None:
            return None
        return model_output(
            logits,
            logits,
            answers,
            return_type,
            loss_per_token,
            where,
            "Pass triples (a, b, c) [batch, 3] (model.to_tokens('3 5 = 8')) or labels= [batch].",
        )

    def problem_tokens(self, pairs: torch.Tensor) -> torch.Tensor:
        """`to_tokens`' rows (a, b) -> the MLP's input: the pairs themselves."""
        return pairs

    def token_strings(self, ids: list[int]) -> list[str]:
        """`to_str_tokens`' names: each operand (or answer) as its residue."""
        return [str(i) for i in ids]

    def pair_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        """The shared surface: logits [batch, p] for pairs [batch, 2]."""
        return self(pairs)

    def neuron_in_weights(self) -> torch.Tensor:
        """[width, 2, p]: each neuron's effective input weights (u_m, v_m) over input tokens."""
        U, V = self.U, self._V()
        if self.cfg.embed == "learned":
            U, V = U @ self.W_E.T, V @ self.W_E.T
        return torch.stack([U, V], dim=1)

    def neuron_out_weights(self) -> torch.Tensor:
        """[width, p]: each neuron's output weights w_m over classes."""
        return self.W.T

    # ----- the hook vocabulary and read-outs the analysis uses (interp.interventions) -----
    @property
    def hidden_act(self):
        """The activation function of the hidden neurons."""
        return self.act

    def answer_logits(self, pairs: torch.Tensor, full: bool = True, all_positions: bool = False) -> torch.Tensor:
        """Logits [B, p] for pairs [B, 2] (one position: `full` and `all_positions` change nothing)."""
        return self(pairs)

    def hook_layout(self, hook_name: str) -> str:
        """Every hook is [batch, units]."""
        return "units"

    def hook_width(self, hook_name: str) -> int:
        """Units of a hook: p for the logits, the width for the rest."""
        return self.cfg.p if hook_name == "hook_logits" else self.cfg.width

    def expansion_point(self, hook_name: str) -> str | None:
        """Where a forward pass can switch from B to k*B rows before `hook_name` (interp.interventions.run_variants):
        the hidden layer and the logits carry the whole state; the two input branches do not."""
        return hook_name if hook_name in ("hook_pre", "hook_post", "hook_logits") else None

    def linear_readout(self, hook_name: str):
        """(readout [n, p], transform) with logits = transform(act) @ readout + terms the hook does not
        touch: hook_post (identity) and hook_pre (the activation function); None for other hooks."""
        if hook_name == "hook_post":
            return self.neuron_out_weights(), lambda x: x
        if hook_name == "hook_pre":
            return self.neuron_out_weights(), self.act
        return None

    def embedding_table(self) -> torch.Tensor:
        """[p, d] the embedding with the token axis first: W_E with a learned embedding, else the input
        weights [U^T, V^T] ([p, 2 width])."""
        if self.cfg.embed == "learned":
            return self.W_E
        return torch.cat([self.U, self._V()], dim=0).T

    def operand_embeddings(self) -> torch.Tensor:
        """[2, p, width]: what each operand's token feeds to the hidden layer, (u_m, v_m) over tokens (through
        W_E with a learned embedding), as the transformer's embedding rows of a and of b."""
        return self.neuron_in_weights().permute(1, 2, 0)

    def unembedding_table(self) -> torch.Tensor:
        """[p, width] the unembedding with the class axis first: W."""
        return self.W

    def embedded_answer_logits(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(emb [B, 2, p], logits [B, p]): the operands as one-hot rows of a leaf tensor that requires
        grad, and the logits computed from it, so d logit / d emb[:, 0] and [:, 1] are the gradients
        with respect to each operand's input embedding."""
        emb = torch.nn.functional.one_hot(pairs, self.cfg.p).to(self.W.dtype).requires_grad_(True)
        return emb, self(emb)
