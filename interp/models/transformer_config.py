"""`TransformerConfig`: the architecture of grokscope's transformer, and its HookedTransformerConfig twin.

Defaults are Nanda et al.'s one-layer model; the other fields express the published variants (Zhong
et al.'s uniform-attention blend, no causal mask, a second vocabulary for the second operand, Tanh),
and every field round-trips through `to_dict` and the checkpoint formats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from interp.errors import CheckpointError, SpecError

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

    family = "transformer"
    # What TransformerLens's ActivationCache and patching read from `model.cfg` that this architecture
    # fixes. A config is device-free, so `device` is None: TransformerLens then allocates its result
    # tensors on torch's default device (values computed on a GPU are copied there).
    attn_only = False
    n_key_value_heads = None
    positional_embedding_type = "standard"
    device = None

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
        for name in ("eq_token", "causal", "diff_vocab"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError("TransformerConfig", name, getattr(self, name), "True or False")

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
        per_block = 4 * d * h + 3 * h + d + 2 * d * self.d_mlp + self.d_mlp + d
        if self.normalization_type == "LN":
            per_block += 4 * d
        return self.d_vocab * d + self.n_ctx * d + self.n_layers * per_block + d * self.p + self.p

    def to_dict(self) -> dict:
        return {"family": self.family, **dataclasses.asdict(self)}

    def short_name(self) -> str:
        """The family and size, for run names: "transformer,d_model=128,d_mlp=512"."""
        return f"{self.family},d_model={self.d_model},d_mlp={self.d_mlp}"

    def describe(self) -> str:
        """The architecture in words, for pages: "1-layer transformer, d_model 128"."""
        return f"{self.n_layers}-layer transformer, d_model {self.d_model}"

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
            d_vocab, p, n_ctx = int(cfg["d_vocab"]), int(cfg.get("d_vocab_out") or cfg["d_vocab"]), int(cfg["n_ctx"])
            layouts = {0: (False, False), 1: (True, False), p: (False, True), p + 1: (True, True)}
            eq_token, diff_vocab = layouts.get(d_vocab - p, (None, None))
            if eq_token is None or n_ctx != (3 if eq_token else 2):
                raise CheckpointError(
                    f"config has n_ctx={n_ctx}, d_vocab={d_vocab}, d_vocab_out={p}: not a modular-arithmetic model "
                    "(expected tokens 'a b =' with d_vocab = p + 1 and n_ctx = 3, or 'a b' with d_vocab = p and "
                    "n_ctx = 2; a second operand vocabulary adds p to d_vocab)."
                )
            pos = cfg.get("positional_embedding_type", "standard")
            if pos != "standard":
                raise CheckpointError(f"config has positional_embedding_type={pos!r}; only 'standard' is supported.")
            return cls(
                p=p,
                n_layers=int(cfg["n_layers"]),
                d_model=int(cfg["d_model"]),
                n_heads=int(cfg["n_heads"]),
                d_head=int(cfg["d_head"]),
                d_mlp=int(cfg["d_mlp"]),
                act_fn=cfg.get("act_fn") or "relu",
                eq_token=eq_token,
                diff_vocab=diff_vocab,
                causal=cfg.get("attention_dir", "causal") == "causal",
                normalization_type=cfg.get("normalization_type"),
            )
        except KeyError as exc:
            raise CheckpointError(f"HookedTransformer config lacks the field {exc.args[0]!r}.") from exc
        except SpecError as exc:
            raise CheckpointError(f"HookedTransformer config is not supported: {exc}") from exc
