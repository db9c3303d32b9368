"""`TransformerConfig`: the architecture of grokscope's transformer, and its HookedTransformerConfig twin.

Defaults are Nanda et al.'s one-layer model; the other fields express the published variants (Zhong
et al.'s uniform-attention blend, no causal mask, a second vocabulary for the second operand, Tanh),
and every field round-trips through `to_dict` and the checkpoint formats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from interp.errors import CheckpointError, SpecError
from interp.models.hooked_transformer_config import (
    HOOKED_TRANSFORMER_KEYS,
    INCOMPATIBLE_KEY,
    hooked_transformer_fields,
    hooked_transformer_incompatibility,
    transformer_config_kwargs,
)
from interp.validation import check_choice, check_fraction, check_int, check_type

TRANSFORMER_ACTIVATIONS = ("relu", "gelu", "silu", "gelu_new", "quad", "tanh")


@dataclass(frozen=True)
class TransformerConfig:
    """A transformer on the tokens `a b =` (or `a b` with eq_token=False); defaults are Nanda et al.'s.

    Token ids: a is token a; b is token b (or p + b with diff_vocab); '=' is the last token id.
    """

    p: int = 113  # modulus: p output classes, residue tokens 0..p-1
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"  # relu | gelu | silu | gelu_new | quad | tanh
    attention_rate: float = 1.0  # alpha: 1 = learned attention (clock), 0 = uniform attention (pizza)
    eq_token: bool = True  # append '=' and read the answer there (Nanda); False: `a b` (Zhong)
    causal: bool = True  # causal attention mask (Zhong et al. use none)
    normalization_type: str | None = None  # None or "LN"
    init_range: float | None = None  # std of the weight init (default 0.8 / sqrt(d_model), as TransformerLens)
    diff_vocab: bool = False  # the second operand has its own tokens p..2p-1 (Zhong et al.'s diff_vocab)
    attn_only: bool = False  # blocks without MLP (HookedTransformer's attn_only); d_mlp is then unused

    family = "transformer"
    # config.json keys that are not fields (the HookedTransformerConfig twin), skipped when reading it back
    pretrained_keys = HOOKED_TRANSFORMER_KEYS + (INCOMPATIBLE_KEY,)
    # What TransformerLens's ActivationCache and patching read from `model.cfg` that this architecture
    # fixes. A config is device-free, so `device` is None: TransformerLens then allocates its result
    # tensors on torch's default device (values computed on a GPU are copied there).
    n_key_value_heads = None
    positional_embedding_type = "standard"
    device = None

    def __post_init__(self):
        where = "TransformerConfig"
        check_int(where, "p", self.p, min_value=2, expected="a positive int >= 2")
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp"):
            check_int(where, name, getattr(self, name), min_value=1)
        check_choice(where, "act_fn", self.act_fn, TRANSFORMER_ACTIVATIONS)
        check_fraction(where, "attention_rate", self.attention_rate, expected="a number in [0, 1]")
        check_choice(where, "normalization_type", self.normalization_type, (None, "LN"))
        for name in ("eq_token", "causal", "diff_vocab", "attn_only"):
            check_type(where, name, getattr(self, name), bool, "True or False")

    @property
    def d_vocab(self) -> int:
        return self.p * (2 if self.diff_vocab else 1) + (1 if self.eq_token else 0)

    @property
    def d_vocab_out(self) -> int:
        return self.p

    @property
    def n_ctx(self) -> int:
        return 3 if self.eq_token else 2

    @property
    def n_params(self) -> int:
        d, h = self.d_model, self.n_heads * self.d_head
        per_block = 4 * d * h + 3 * h + d
        if not self.attn_only:
            per_block += 2 * d * self.d_mlp + self.d_mlp + d
        if self.normalization_type == "LN":
            per_block += 2 * d if self.attn_only else 4 * d
        return self.d_vocab * d + self.n_ctx * d + self.n_layers * per_block + d * self.p + self.p

    def to_dict(self) -> dict:
        d = {"family": self.family, **dataclasses.asdict(self)}
        if not self.attn_only:
            del d["attn_only"]  # written only when set, so the files of every other model stay as they were
        return d

    def short_name(self) -> str:
        """The family and size, for run names: "transformer,d_model=128,d_mlp=512"."""
        return f"{self.family},d_model={self.d_model},d_mlp={self.d_mlp}"

    def describe(self) -> str:
        """The architecture in words, for pages: "1-layer transformer, d_model 128"."""
        return f"{self.n_layers}-layer transformer, d_model {self.d_model}"

    def hooked_transformer_config(self) -> dict:
        """The HookedTransformerConfig fields of the same architecture. A HookedTransformer built from them
        computes the same logits unless `hooked_transformer_incompatibility()` says why not (an attention
        rate below 1, an activation TransformerLens lacks)."""
        return hooked_transformer_fields(self)

    def hooked_transformer_incompatibility(self) -> str | None:
        """Why no HookedTransformer computes what this model computes, or None when one does."""
        return hooked_transformer_incompatibility(self)

    def pretrained_fields(self) -> dict:
        """What config.json carries beside `to_dict()`: the HookedTransformerConfig fields, or, when no
        HookedTransformer computes the same logits, the reason under "hooked_transformer_incompatible"."""
        reason = self.hooked_transformer_incompatibility()
        return {INCOMPATIBLE_KEY: reason} if reason else self.hooked_transformer_config()

    @classmethod
    def from_hooked_transformer_config(cls, cfg: dict) -> TransformerConfig:
        """Read a HookedTransformerConfig (as a dict) of a modular-arithmetic model; a CheckpointError
        names each feature grokscope's transformer lacks (rotary embeddings, LNPre, a gated MLP, ...)."""
        kwargs = transformer_config_kwargs(cfg)
        try:
            return cls(**kwargs)
        except SpecError as exc:
            raise CheckpointError(f"HookedTransformer config is not supported: {exc}") from exc
