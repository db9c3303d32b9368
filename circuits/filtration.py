"""Frequency filtration (the coexistence paper): split a network into its dominant-frequency part G
(the generalisation network) and the residual R = original - G, and evaluate both as networks.

In the task's own Fourier basis (`probes.group_basis`): for x+y and x-y the frequencies of Z_p, for
x*y and x/y those of Z_p^* (the discrete-log basis, on the nonzero operands), for a composition task
"G:x*y" the irreps of G ("each neuron keeps only its dominant irrep"). Tokens outside the group (0 for
x*y and x/y) are a block of their own that G keeps as it is (R is zero there).

MLP: per neuron m, the dominant non-zero frequency k_m of (u_m, v_m, w_m) (plus and minus folded,
`probes.fourier.neuron_spectra`); G keeps only the k_m component of each of u_m, v_m, w_m (the
projection onto span{cos_k, sin_k}), R is the rest. Transformer: G keeps the top-k frequencies of
the unembedding W_U along the class axis (optionally also of the embedding W_E along the token
axis); R = original - G in those matrices, every other weight shared. Optionally ("neurons") the
last layer's neuron activations at the answer position, as functions of (a, b), are projected on
the constant and the key frequencies along a and along b (Nanda et al.: a neuron of a grokked
transformer lives in those 2-D Fourier components); G runs with the projected activations, R with
the residual, substituted through the neuron hook.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.interventions import activation_grid
from interp.metrics import evaluate
from interp.models import model_family
from interp.results import Result
from probes.fourier import (
    DEFAULT_KEY_RULE,
    frequency_scores,
    key_indices,
    mlp_neuron_vectors,
    neuron_spectra,
)
from probes.group_basis import TaskBasis, task_basis

__all__ = [
    "FrequencyFiltrationResult",
    "frequency_filtration",
]


@dataclass(frozen=True, eq=False)
class FrequencyFiltrationResult(Result):
    """The generalisation network G, the residual R and the accuracies of raw, G and R.

    metrics["raw" | "g" | "r"] are `interp.evaluate` dicts ("test_acc", "train_clean_acc",
    "train_noisy_acc" against the given labels, "train_noisy_true_acc" against the true ones, and
    losses). g_weight_fraction: ||filtered weights of G||^2 / ||original||^2 over the filtered
    matrices. `to_dict()` leaves the two modules out.
    """

    family: str
    method: str
    metrics: dict
    dominant_freq: list[int] | None  # MLP: each neuron's k_m (its dominant irrep's index)
    kept_frequencies: list[int] | None  # transformer: the frequencies (irrep indices) G keeps
    g_weight_fraction: float
    g_model: object = field(repr=False, default=None)
    r_model: object = field(repr=False, default=None)
    group: str | None = None  # the basis's group ("C59", "Z31*", "S4")
    irreps: list[str] | None = None  # the name of each irrep index

    @property
    def dominant_irrep(self) -> list[str] | None:
        """MLP: each neuron's kept irrep by name."""
        return None if self.dominant_freq is None else [self.irreps[k] for k in self.dominant_freq]

    @property
    def kept_irreps(self) -> list[str] | None:
        """Transformer: the irreps G keeps (besides the trivial one) by name."""
        return None if self.kept_frequencies is None else [self.irreps[k] for k in self.kept_frequencies]


@torch.no_grad()
def filter_mlp(model, task=None, basis: str = "group"):
    """G and R of a one-hot MLP: per neuron, u, v, w projected on their dominant frequency k_m
    (irfft of the rfft masked to bin k_m, all neurons at once), or on their dominant irrep's isotypic
    component for a non-abelian group; R = original - G."""
    cfg = model.cfg
    if cfg.embed != "onehot":
        raise SpecError(
            "frequency_filtration",
            "model.cfg.embed",
            cfg.embed,
            "'onehot' (the filtration acts on u_m, v_m over input tokens)",
            "Filter a one-hot MLP, or fold W_E into U and V first.",
        )
    tb = task_basis(model, task, where="frequency_filtration", basis=basis)
    vecs = mlp_neuron_vectors(model)  # [n, 3, p]: u, v, w
    dom = neuron_spectra(model, task, basis=basis).dominant_freq.to(vecs.device)  # [n]
    keep = torch.nn.functional.one_hot(dom, tb.n_irreps).bool()[:, None, :]  # [n, 1, F]
    g_vecs = tb.project(vecs, keep)  # [n, 3, p]
    r_vecs = vecs - g_vecs
    g_model, r_model = copy.deepcopy(model), copy.deepcopy(model)
    for net, v in ((g_model, g_vecs), (r_model, r_vecs)):
        net.U.copy_(v[:, 0].to(net.U.dtype))
        if not cfg.tied:
            net.V.copy_(v[:, 1].to(net.V.dtype))
        net.W.copy_(v[:, 2].T.to(net.W.dtype))
    if cfg.bias:
        r_model.b_out.zero_()  # R = original - G: G keeps the output bias
    frac = float((g_vecs**2).sum() / (vecs**2).sum().clamp_min(1e-30))
    method = "per neuron: keep the dominant non-zero frequency of u, v, w (G); residual R = original - G"
    if not tb.additive:
        what = "frequency" if tb.cyclic else "irrep"
        method = f"per neuron: keep the dominant non-trivial {what} of u, v, w in {tb.describe()} (G)" + _outside(tb)
    return g_model, r_model, dom.cpu().tolist(), None, frac, method


def _outside(tb: TaskBasis) -> str:
    """How the tokens outside the group are treated, for the method string."""
    if tb.order == tb.n_tokens:
        return "; residual R = original - G"
    return "; tokens outside the group (0) are kept whole in G; residual R = original - G"


@torch.no_grad()
def filter_transformer(model, k, parts, rule, task=None, basis: str = "group"):
    """G and R of a transformer: W_U (and the operand rows of W_E: W_E[:p], and W_E[p:2p] with diff_vocab)
    projected on the constant and the key frequencies (the trivial irrep and the key irreps)."""
    allowed = {"unembed", "embed", "neurons"}
    if not set(parts) <= allowed or not parts:
        raise SpecError("frequency_filtration", "parts", parts, f"a non-empty subset of {sorted(allowed)}")
    tb = task_basis(model, task, where="frequency_filtration", basis=basis)
    freqs = key_indices(frequency_scores(model, task, rule=rule, basis=basis), k, "frequency_filtration")
    project = tb.project
    keep = torch.zeros(tb.n_irreps, dtype=torch.bool, device=model.unembed.W_U.device)
    keep[freqs] = True
    keep[0] = True  # the constant: no effect on the unembedding's argmax; a bias for the embedding
    base = model
    g_model, r_model = copy.deepcopy(base), copy.deepcopy(base)
    num = den = 0.0
    if "unembed" in parts:
        w = base.unembed.W_U  # [d_model, p]
        g = project(w.float(), keep, dim=1)
        g_model.unembed.W_U.copy_(g.to(w.dtype))
        r_model.unembed.W_U.copy_((w.float() - g).to(w.dtype))
        r_model.unembed.b_U.zero_()
        num, den = num + float((g**2).sum()), den + float((w.float() ** 2).sum())
    if "embed" in parts:
        w, p = base.embed.W_E, model.p  # [d_vocab, d_model]; rows 0..p-1 are a's residues
        tables = [slice(0, p), slice(p, 2 * p)] if model.cfg.diff_vocab else [slice(0, p)]  # b's own rows
        for rows in tables:
            g = project(w[rows].float(), keep, dim=0)
            g_model.embed.W_E[rows].copy_(g.to(w.dtype))
            r_model.embed.W_E[rows].copy_((w[rows].float() - g).to(w.dtype))
            num, den = num + float((g**2).sum()), den + float((w[rows].float() ** 2).sum())
    if "neurons" in parts:
        acts = activation_grid(base)  # [p, p, n]: a, b, neuron
        g_acts = project(project(acts, keep, dim=0), keep, dim=1)
        _substitute_neurons(g_model, g_acts)
        _substitute_neurons(r_model, acts - g_acts)
        num, den = num + float((g_acts**2).sum()), den + float((acts**2).sum())
    method = (
        f"keep the constant and the top-{len(freqs)} frequencies ({rule} rule) of "
        + " and ".join(
            {
                "unembed": "W_U (class axis)",
                "embed": "W_E (token axis" + (", both operand tables)" if model.cfg.diff_vocab else ")"),
                "neurons": "the last layer's neuron activations over (a, b) (both axes)",
            }[p]
            for p in sorted(parts)
        )
        + " (G); residual R = original - G in those matrices"
    )
    if not tb.additive:
        what = "frequencies" if tb.cyclic else "irreps"
        method = method.replace("the constant and the top-", "the trivial irrep and the top-").replace(
            " frequencies (", f" {what} ({tb.name}, "
        )
    return g_model, r_model, None, freqs, num / max(den, 1e-30), method


def _substitute_neurons(model, table: torch.Tensor) -> None:
    """Make `model` use table[a, b] [p, p, n] as its last-layer neuron activations at the answer
    position: a forward pre-hook reads (a, b) from the tokens, a permanent hook on the neuron hook
    point writes the table's rows. Any input of the task's form works, not only the grid."""
    pairs: list[torch.Tensor] = []

    def read_pairs(_module, args):
        tokens = args[0] if args[0].ndim == 2 else args[0].unsqueeze(0)
        pairs[:] = [tokens[:, :2]]

    def write_neurons(act, hook):
        a, b = pairs[0][:, 0], pairs[0][:, 1]
        act = act.clone()
        act[:, -1] = table[a, b].to(act.dtype)
        return act

    model.register_forward_pre_hook(read_pairs)
    model.add_hook(model.neuron_hook, write_neurons, is_permanent=True)


def frequency_filtration(
    subject,
    task=None,
    *,
    device=None,
    k: int | None = None,
    parts: tuple[str, ...] = ("unembed",),
    rule: str = DEFAULT_KEY_RULE,
    basis: str = "group",
) -> FrequencyFiltrationResult:
    """Frequency filtration (coexistence paper): the dominant-frequency network G and its residual
    R = original - G, both real modules of the same config, with `interp.evaluate` metrics of raw,
    G and R. MLP: per-neuron dominant frequency of (u, v, w). Transformer: the top-`k` frequencies
    (default: the max/4 rule) of the `rule` spectrum, filtered in `parts` ("unembed", "embed": the
    operand rows of W_E, both tables with diff_vocab, "neurons": the last layer's neuron activations
    over the (a, b) grid, substituted by hooks). All in the task's Fourier basis (`basis`: "group",
    the task's group's irreps; "additive", Z_p's frequencies, for a task on no group).
    Claim it tests: under label noise G reaches near-perfect test accuracy while R holds the noise.
    """
    model, task = resolve_subject(subject, task, device=device)
    tb = task_basis(model, task, where="frequency_filtration", basis=basis)
    if model.neuron_weights_exact:  # each neuron's own input and output weights: filter them neuron by neuron
        g, r, dom, kept, frac, method = filter_mlp(model, task, basis)
    else:
        g, r, dom, kept, frac, method = filter_transformer(model, k, tuple(parts), rule, task, basis)
    metrics = {"raw": evaluate(model, task), "g": evaluate(g, task), "r": evaluate(r, task)}
    return FrequencyFiltrationResult(
        family=model_family(model),
        method=method,
        metrics=metrics,
        dominant_freq=dom,
        kept_frequencies=kept,
        g_weight_fraction=frac,
        g_model=g,
        r_model=r,
        group=tb.name,
        irreps=tb.names,
    )
