"""Fourier probes in the task's own Fourier basis: per-neuron spectra, IPR, dominant frequencies (or
irreps), neuron classes (periodic vs memorising) and the key frequencies (or irreps) of a model.

The basis is the task's group's (`probes.group_basis`): Z_p's real Fourier basis for x+y and x-y,
the discrete-log Fourier basis of Z_p^* for x*y and x/y (on the nonzero operands), the irreps of S_n,
A_n or D_n for their composition tasks. A polynomial task has no group: the probes refuse it unless
basis="additive" asks for the per-operand spectra in Z_p's additive basis. A bare model without a task
is read in Z_p's additive basis.

Frequencies are folded: frequency k in 0..p//2 stands for the pair (k, p - k) of the DFT, i.e. for
the span of {cos_k, sin_k} in the real basis. Spectra of cyclic groups come from `torch.fft.rfft` (one
FFT for every neuron at once); "power at k" is the squared norm of the projection onto that span, so
the powers of a vector sum to its squared norm (Parseval). For a non-abelian group, index k is the
k-th irrep of `FiniteGroup.irreps` ("trivial" first) and the power there is the squared norm of the
projection onto its isotypic component; every field called "freq" then holds irrep indices, and the
results name the irreps (`irreps`).

MLP neurons are read from their weights (u_m, v_m: `model.neuron_in_weights()`, w_m:
`model.neuron_out_weights()`), as in Doshi et al. 2024 and the coexistence paper. Transformer
neurons are read from their activations over the full (a, b) grid at the answer position, with the
2-D real Fourier transform (Nanda et al. 2023).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.interventions import activation_grid
from interp.models import model_family
from interp.results import Result
from probes.basis import (  # noqa: F401  (re-exported: the basis and DFT helpers are part of this module's API)
    basis_frequencies,
    basis_labels,
    dft,
    fourier_basis,
    frequency_power,
    grid_cell_power,
    ipr,
    n_frequencies,
    random_ipr,
    unit_max,
)
from probes.group_basis import TaskBasis, task_basis
from probes.stats import gmm2, otsu_split

__all__ = [
    "DEFAULT_KEY_RULE",
    "KEY_FRACTION",
    "KEY_RULES",
    "NANDA_SHARE",
    "THRESHOLD_RULES",
    "IPRThreshold",
    "NeuronClassification",
    "NeuronSpectra",
    "classify_neurons",
    "dominant_frequencies",
    "embedding_matrix",
    "embedding_power",
    "frequency_scores",
    "key_frequencies",
    "key_irreps",
    "neuron_activation_grid",
    "neuron_ipr",
    "neuron_out_power",
    "neuron_spectra",
    "unembedding_matrix",
    "unembedding_power",
]

NANDA_SHARE = 0.85  # Nanda et al.: a neuron belongs to frequency k if >= 85% of its variance is in block k
KEY_FRACTION = 0.25  # Nanda et al.: a key frequency has Fourier norm > max / 4
DEFAULT_KEY_RULE = "embedding"  # every function that picks key frequencies uses this rule unless told


# ----- per-neuron spectra ------------------------------------------------------------------------
def neuron_activation_grid(subject, task=None, *, device=None) -> torch.Tensor:
    """Hidden-neuron activations at the answer position over every pair (a, b) of tokens: [p, p, n]
    (indexed a, b, neuron; `interp.interventions.activation_grid` of the subject's model)."""
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    return activation_grid(model)


@dataclass(frozen=True, eq=False)
class NeuronSpectra(Result):
    """Per-neuron Fourier spectra over the folded frequencies 0..p//2.

    power: [n, F] share of each neuron's power at each frequency (MLP: mean over u, v, w of each
    vector's normalised power; transformer: share of the centred activation variance in the 3x3
    block {const, cos_k, sin_k}^2, Nanda et al.). dominant_freq: argmax over k >= 1; dominant_frac:
    power[dominant_freq]. ipr: MLP mean over u, v, w of IPR(|DFT|) (Doshi et al.); transformer:
    sum_k P_k^2 / (sum_k P_k)^2 of the neuron's per-frequency profile P_k from its 2-D spectrum
    (`frequency_profile`: its 3x3 block, cross-frequency cells split half-half), so a neuron whose
    power sits in one frequency has IPR 1 and random ones about `random_ipr(p)`; a dead neuron 0.
    power_uvw [n, 3, F] (MLP) and cell_power [n, F, F] (transformer; each neuron's centred activation
    scaled to max |.| = 1, shares and IPR being scale-free) are kept.
    """

    family: str
    p: int
    power: torch.Tensor  # [n, F]
    dominant_freq: torch.Tensor  # [n] long
    dominant_frac: torch.Tensor  # [n]
    ipr: torch.Tensor  # [n]
    method: str
    power_uvw: torch.Tensor | None = field(default=None, repr=False)  # MLP: [n, 3, F]
    cell_power: torch.Tensor | None = field(default=None, repr=False)  # transformer: [n, F, F]
    group: str | None = None  # the basis's group ("C59", "Z31*", "S4"); see probes.group_basis
    irreps: list[str] | None = None  # the name of each index ("trivial", "freq_1", ..., or "(3,1)", ...)

    @property
    def dominant_irrep(self) -> list[str]:
        """Each neuron's dominant irrep by name."""
        return [self.irreps[int(k)] for k in self.dominant_freq]


def mlp_neuron_vectors(model) -> torch.Tensor:
    """[n, 3, p]: (u_m, v_m, w_m) of every neuron of an MLP, float32 on the model's device."""
    w_in = model.neuron_in_weights().detach().float()  # [n, 2, p]
    w_out = model.neuron_out_weights().detach().float()  # [n, p]
    return torch.cat([w_in, w_out[:, None]], dim=1)


def _argmax_nonzero(power: torch.Tensor) -> torch.Tensor:
    """[n] argmax over frequencies 1..F-1 of power [n, F] (the constant never dominates)."""
    return power[:, 1:].argmax(dim=1) + 1


def _method(basis: TaskBasis, cyclic: str, general: str) -> str:
    """A spectrum's method in words: Z_p's as before, other groups' with their basis named."""
    if basis.additive:
        return cyclic
    return (cyclic if basis.cyclic else general) + f" in {basis.describe()}"


@torch.no_grad()
def neuron_spectra(subject, task=None, *, device=None, basis: str = "group") -> NeuronSpectra:
    """Every neuron's spectrum over the irreps of its task's group (folded frequencies for cyclic
    groups), dominant non-trivial irrep (frequency: plus and minus folded together), the share of power
    there, and its IPR; batched over all neurons (one FFT, or one matmul for non-abelian groups).
    MLP: u_m, v_m (input weights) and w_m (output weights), as Doshi et al. and the coexistence paper.
    Transformer: the 2-D transform of each neuron's activation over the (a, b) grid, centred, with
    Nanda et al.'s 3x3-block share per irrep ({trivial, rho}^2). `basis`: "group" (the task's; Z_p's
    additive basis without a task) or "additive" (see `probes.group_basis`)."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="neuron_spectra", basis=basis)
    family = model_family(model)
    p = model.p
    names = {"group": tb.name, "irreps": tb.names}
    if model.neuron_weights_exact:  # the neurons' own weights say it all; else read their activations
        vecs = unit_max(mlp_neuron_vectors(model))  # [n, 3, p], each vector scaled to max |.| = 1
        pw = tb.power(vecs)  # [n, 3, F]
        pw_norm = pw / pw.sum(-1, keepdim=True).clamp_min(torch.finfo(pw.dtype).tiny)
        power = pw_norm.mean(1)  # [n, F]
        ipr_n = tb.ipr(vecs).mean(1)
        dom = _argmax_nonzero(power)
        frac = power.gather(1, dom[:, None])[:, 0]
        return NeuronSpectra(
            family,
            p,
            power.cpu(),
            dom.cpu(),
            frac.cpu(),
            ipr_n.cpu(),
            method=_method(
                tb,
                "mean over u, v, w of the rfft power / IPR of each vector",
                "mean over u, v, w of the power per irrep / IPR (sum of squared shares) of each vector",
            ),
            power_uvw=pw_norm.cpu(),
            **names,
        )
    acts = tb.grid(activation_grid(model))  # [|G|, |G|, n]
    acts = acts - acts.mean((0, 1), keepdim=True)
    cell = tb.cell_power(unit_max(acts.reshape(-1, acts.shape[-1]), dim=0).reshape(acts.shape))  # [n, F, F]
    total = cell.sum((1, 2)).clamp_min(torch.finfo(cell.dtype).tiny)
    diag = torch.diagonal(cell, dim1=1, dim2=2)  # [n, F]: (k, k)
    block = diag + cell[:, 0, :] + cell[:, :, 0]
    block[:, 0] = cell[:, 0, 0]
    share = block / total[:, None]  # [n, F]: Nanda's 3x3 block share
    alive = cell.sum((1, 2)) > 0  # a dead neuron (constant activation) has no spectrum: IPR 0
    prof = frequency_profile(cell)
    ipr_n = torch.where(alive, (prof**2).sum(1) / total**2, torch.zeros_like(total))
    dom = _argmax_nonzero(share)
    frac = share.gather(1, dom[:, None])[:, 0]
    return NeuronSpectra(
        family,
        p,
        share.cpu(),
        dom.cpu(),
        frac.cpu(),
        ipr_n.cpu(),
        method=_method(
            tb,
            "2-D real DFT of the centred activation over the (a, b) grid; 3x3 block share (Nanda et al.)",
            "2-D group Fourier transform of the centred activation over the (a, b) grid; share in {trivial, rho}^2",
        ),
        cell_power=cell.cpu(),
        **names,
    )


def frequency_profile(cell: torch.Tensor) -> torch.Tensor:
    """[n, F, F] cell power -> [n, F] power per frequency: cells (k, 0), (0, k), (k, k) count for k,
    a cross cell (k, l), k != l both non-zero, counts half for k and half for l. Sums to the total."""
    diag = torch.diagonal(cell, dim1=1, dim2=2)  # [n, F]
    inner = cell.clone()
    inner[:, 0, :] = 0
    inner[:, :, 0] = 0
    cross = inner.sum(2) + inner.sum(1) - 2 * torch.diagonal(inner, dim1=1, dim2=2)
    prof = diag + cell[:, 0, :] + cell[:, :, 0] + 0.5 * cross
    prof[:, 0] = cell[:, 0, 0]
    return prof


def neuron_ipr(subject, task=None, *, device=None, basis: str = "group") -> torch.Tensor:
    """[n_neurons] IPR of every neuron: MLP mean over u, v, w of (||v_hat||_4 / ||v_hat||_2)^4 with
    v_hat = |rfft(v)| (Doshi et al. 2024; for a non-abelian group, the sum of squared irrep shares);
    transformer: the IPR of its 2-D activation spectrum (see `NeuronSpectra`)."""
    return neuron_spectra(subject, task, device=device, basis=basis).ipr


def dominant_frequencies(subject, task=None, *, device=None, basis: str = "group") -> torch.Tensor:
    """[n_neurons] long: each neuron's dominant non-trivial irrep index (for cyclic groups the folded
    frequency in 1..|G|//2) (MLP: argmax of the mean normalised power of u, v, w; transformer: argmax of
    Nanda's 3x3-block share)."""
    return neuron_spectra(subject, task, device=device, basis=basis).dominant_freq


# ----- embeddings and key frequencies ------------------------------------------------------------
def embedding_matrix(subject, task=None, *, device=None) -> torch.Tensor:
    """[p, d] the embedding with the token axis first. Transformer: W_E[:p] (residue tokens), or
    with a second operand vocabulary (diff_vocab) both tables side by side, [W_E[:p], W_E[p:2p]]
    ([p, 2 d_model]); MLP with a learned embedding: W_E; one-hot MLP: the input weights, [U^T, V^T]
    ([p, 2 width])."""
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    return model.embedding_table().detach().float()


def unembedding_matrix(subject, task=None, *, device=None) -> torch.Tensor:
    """[p, d] the unembedding with the class axis first: transformer W_U^T, MLP W."""
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    return model.unembedding_table().detach().float()


@torch.no_grad()
def embedding_power(subject, task=None, *, device=None, basis: str = "group") -> torch.Tensor:
    """[F] power per irrep (frequency) of the embedding along the token axis, summed over the other
    axis (`embedding_matrix`: W_E for transformers and learned-embedding MLPs, U and V for one-hot MLPs)."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="embedding_power", basis=basis)
    return tb.power(embedding_matrix(model), dim=0).sum(1).cpu()


@torch.no_grad()
def unembedding_power(subject, task=None, *, device=None, basis: str = "group") -> torch.Tensor:
    """[F] power per irrep (frequency) of the unembedding along the class axis (transformer W_U, MLP W)."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="unembedding_power", basis=basis)
    return tb.power(unembedding_matrix(model), dim=0).sum(1).cpu()


@torch.no_grad()
def neuron_out_power(subject, task=None, *, device=None, basis: str = "group") -> torch.Tensor:
    """[F] power per irrep (frequency) of W_L = W_out W_U (transformer) or W (MLP) along the logit axis."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="neuron_out_power", basis=basis)
    return tb.power(model.neuron_out_weights().detach().float()).sum(0).cpu()


KEY_RULES = {
    "embedding": "embedding Fourier norm > max/4 (W_E; U and V for one-hot MLPs; Nanda et al.)",
    "unembedding": "unembedding Fourier norm > max/4 (W_U for transformers, W for MLPs)",
    "neuron_out": "Fourier norm of W_L = W_out W_U (MLP: W) along the logit axis > max/4",
    "neurons": "number of periodic neurons with that dominant frequency > max/4 (neuron clusters)",
}


def frequency_scores(
    subject, task=None, *, rule: str = DEFAULT_KEY_RULE, device=None, basis: str = "group"
) -> torch.Tensor:
    """[F] the score each key-frequency rule ranks the irreps (frequencies) by (index 0, the trivial
    irrep, is set to 0): Fourier norms (sqrt of the power) for the weight rules, neuron counts for "neurons"."""
    if rule not in KEY_RULES:
        raise SpecError("key_frequencies", "rule", rule, f"one of {sorted(KEY_RULES)}")
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    if rule == "embedding":
        score = embedding_power(model, task, basis=basis).sqrt()
    elif rule == "unembedding":
        score = unembedding_power(model, task, basis=basis).sqrt()
    elif rule == "neuron_out":
        score = neuron_out_power(model, task, basis=basis).sqrt()
    else:
        cls = classify_neurons(model, task, key_rule="embedding", basis=basis)
        dom = cls.dominant_freq[cls.periodic]
        score = torch.bincount(dom, minlength=len(cls.freq_counts)).float()
    score = score.clone()
    score[0] = 0.0
    return score


def key_indices(score: torch.Tensor, k: int | None, where: str) -> list[int]:
    """Indices of the key irreps by score [F], strongest first: the k best, or those above max/4."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[order != 0]
    if k is not None:
        if k < 1:
            raise SpecError(where, "k", k, "a positive int or None")
        return [int(f) for f in order[:k]]
    top = float(score.max())
    if top <= 0:
        return []
    return [int(f) for f in order if float(score[f]) > KEY_FRACTION * top]


def key_frequencies(
    subject, task=None, *, rule: str = DEFAULT_KEY_RULE, k: int | None = None, device=None, basis: str = "group"
) -> list[int]:
    """The model's key frequencies, strongest first (a list of ints in 1..|G|//2), for a task on a
    cyclic group: Z_p (x+y, x-y, C_n), or Z_p^* (x*y, x/y: frequencies in the discrete-log basis). A
    SpecError for a non-abelian group, which has irreps and no frequencies: use `key_irreps`.

    Default rule "embedding": frequencies whose embedding Fourier norm exceeds a quarter of the
    largest (Nanda et al.; for MLPs the embedding is U and V). Other rules: "unembedding",
    "neuron_out" (W_L along the logit axis), "neurons" (clusters of periodic neurons); see
    `KEY_RULES`. With k given, the k highest-scoring frequencies instead of the max/4 cut.
    """
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="key_frequencies", basis=basis)
    if not tb.cyclic:
        raise SpecError(
            "key_frequencies",
            "task",
            f"{task.spec.op} on {tb.name}",
            "a task on a cyclic group (frequencies are the irreps of a cyclic group)",
            f"{tb.name} is not abelian: its Fourier basis is its irreps {tb.names}. Use key_irreps(...) for their names.",
        )
    return key_indices(frequency_scores(model, task, rule=rule, basis=basis), k, "key_frequencies")


def key_irreps(
    subject, task=None, *, rule: str = DEFAULT_KEY_RULE, k: int | None = None, device=None, basis: str = "group"
) -> list[str]:
    """The model's key irreps by name, strongest first, for any task on a group (for Z_p: "freq_k" for
    the key frequency k). Rules as `key_frequencies`: the irrep's Fourier norm (the square root of
    the weights' power in its isotypic component) above a quarter of the largest."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    tb = task_basis(model, task, where="key_irreps", basis=basis)
    return [tb.names[i] for i in key_indices(frequency_scores(model, task, rule=rule, basis=basis), k, "key_irreps")]


# ----- neuron classes ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NeuronClassification(Result):
    """Each neuron labelled periodic (generalising) or not (memorising), and how.

    periodic[m] = ipr[m] >= threshold. `rule` says how the threshold was chosen. `bimodal` is the
    verdict of a 2-component Gaussian mixture on log-IPR (BIC gain `delta_bic` >= 10 over one
    Gaussian and Ashman's D `bimodality` >= 2 between the components). For transformers,
    `nanda_periodic` is the reference labelling (3x3 block share >= 0.85, Nanda et al.).
    """

    family: str
    p: int
    n_neurons: int
    ipr: torch.Tensor  # [n]
    dominant_freq: torch.Tensor  # [n] long
    dominant_frac: torch.Tensor  # [n]
    periodic: torch.Tensor  # [n] bool
    threshold: float  # on the IPR
    rule: str
    bimodal: bool
    bimodality: float  # Ashman's D of the 2-component mixture of log-IPR
    delta_bic: float  # BIC(1 Gaussian) - BIC(2 Gaussians) on log-IPR
    otsu_threshold: float
    gmm_threshold: float
    ipr_random: float  # untrained baseline (see `random_ipr`)
    n_periodic: int
    frac_periodic: float
    freq_counts: list[int]  # periodic neurons per frequency 0..p//2
    key_frequencies: list[int]
    key_rule: str
    nanda_share: torch.Tensor | None = None  # transformer: [n] block share at the dominant frequency
    nanda_periodic: torch.Tensor | None = None  # transformer: [n] bool, share >= 0.85
    nanda_rule: str | None = None
    agreement_with_nanda: float | None = None
    group: str | None = None  # the basis's group; freq fields hold its irrep indices (frequencies if cyclic)
    irreps: list[str] | None = None  # the name of each irrep index
    key_irreps: list[str] | None = None  # the key irreps by name (key_frequencies is [] for a non-abelian group)


THRESHOLD_RULES = ("auto", "otsu", "gmm", "baseline")


@dataclass(frozen=True)
class IPRThreshold(Result):
    """The IPR cut between periodic and memorising neurons, and the statistics that chose it."""

    threshold: float
    rule: str  # how it was chosen, in words
    bimodal: bool
    bimodality: float  # Ashman's D of the 2-component mixture of log-IPR
    delta_bic: float  # BIC(1 Gaussian) - BIC(2 Gaussians) on log-IPR
    otsu_threshold: float
    gmm_threshold: float


def ipr_threshold(
    ipr_n: torch.Tensor,
    base: float,
    rule: str = "auto",
    threshold: float | None = None,
    min_delta_bic: float = 10.0,
    min_bimodality: float = 2.0,
) -> IPRThreshold:
    """Choose the IPR cut by `rule` (see `classify_neurons`) from the neurons' IPR [n] and the
    random-weight IPR `base`; dead neurons (IPR 0) are left out of the fit."""
    log_ipr = torch.log(ipr_n[ipr_n > 0])
    t_otsu, _ = otsu_split(log_ipr)
    mix = gmm2(log_ipr)
    delta_bic = mix["bic1"] - mix["bic2"]
    d = mix["ashman_d"]
    bimodal = bool(delta_bic >= min_delta_bic and d >= min_bimodality)
    otsu_thr, gmm_thr, base_thr = math.exp(t_otsu), math.exp(mix["boundary"]), math.sqrt(base)
    stats = f"mixture on log-IPR: BIC gain {delta_bic:.1f}, Ashman D {d:.2f}"
    if threshold is not None:
        thr, used = float(threshold), f"IPR >= {float(threshold):.4g} (given)"
    elif rule == "gmm" and math.isfinite(gmm_thr):
        thr, used = gmm_thr, f"2-component Gaussian mixture boundary on log-IPR: IPR >= {gmm_thr:.4g} ({stats})"
    elif (rule == "otsu" or (rule == "auto" and bimodal and otsu_thr > base)) and math.isfinite(otsu_thr):
        thr, used = otsu_thr, f"Otsu on log-IPR: IPR >= {otsu_thr:.4g} ({stats})"
    else:
        if rule == "auto" and bimodal:
            why = f" (bimodal, but Otsu's cut {otsu_thr:.4g} is below the random-weight IPR: no periodic population)"
        else:
            why = "" if rule == "baseline" else f" (not bimodal: {stats})" if rule == "auto" else " (split undefined)"
        thr, used = base_thr, f"IPR >= sqrt(random IPR {base:.4g}) = {base_thr:.4g}{why}"
    return IPRThreshold(thr, used, bimodal, d, delta_bic, otsu_thr, gmm_thr)


def nanda_labels(spec: NeuronSpectra, periodic: torch.Tensor) -> dict:
    """Nanda et al.'s reference labels of transformer neurons (3x3 block share >= 0.85) and their
    agreement with `periodic`."""
    nanda = spec.dominant_frac >= NANDA_SHARE
    return dict(
        nanda_share=spec.dominant_frac,
        nanda_periodic=nanda,
        nanda_rule=f"share of centred activation power in the 3x3 block {{const, cos_k, sin_k}}^2 >= {NANDA_SHARE}",
        agreement_with_nanda=float((nanda == periodic).float().mean()),
    )


def classify_neurons(
    subject,
    task=None,
    *,
    device=None,
    rule: str = "auto",
    threshold: float | None = None,
    key_rule: str = DEFAULT_KEY_RULE,
    min_delta_bic: float = 10.0,
    min_bimodality: float = 2.0,
    basis: str = "group",
) -> NeuronClassification:
    """Label every neuron periodic (generalising) or memorising from its IPR, with a data-chosen cut.

    The IPR of memorising-and-generalising networks is bimodal (Doshi et al. 2024). rule="otsu":
    Otsu's threshold on log-IPR. rule="gmm": the equal-density point of a 2-component Gaussian
    mixture on log-IPR. rule="baseline": sqrt(random_ipr(p)), the geometric midpoint between
    untrained weights and a pure Fourier mode (IPR 1). rule="auto" (default): Otsu when the mixture
    says the sample is bimodal (BIC gain >= `min_delta_bic` and Ashman's D >= `min_bimodality`) and
    the cut lies above the random-weight IPR, else the baseline cut, so that a network whose neurons
    are all periodic, or all random, is not cut in two. A float `threshold` overrides. Transformers also get Nanda et al.'s reference labels
    (3x3 block share >= 0.85). Spectra, IPR and key irreps are in the task's basis (`basis`, see
    `neuron_spectra`); "periodic" then means concentrated in one irrep of the task's group.
    """
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    if rule not in THRESHOLD_RULES:
        raise SpecError("classify_neurons", "rule", rule, f"one of {list(THRESHOLD_RULES)}")
    tb = task_basis(model, task, where="classify_neurons", basis=basis)
    spec = neuron_spectra(model, task, basis=basis)
    ipr_n = spec.ipr
    base = tb.random_ipr()
    cut = ipr_threshold(ipr_n, base, rule, threshold, min_delta_bic, min_bimodality)
    thr = cut.threshold
    periodic = ipr_n >= thr
    counts = torch.bincount(spec.dominant_freq[periodic], minlength=tb.n_irreps)
    extra = nanda_labels(spec, periodic) if spec.cell_power is not None else {}  # spectra of activation grids
    n_per = int(periodic.sum())
    if key_rule not in KEY_RULES:
        raise SpecError("classify_neurons", "key_rule", key_rule, f"one of {sorted(KEY_RULES)}")
    keys = key_indices(frequency_scores(model, task, rule=key_rule, basis=basis), None, "classify_neurons")
    return NeuronClassification(
        family=spec.family,
        p=model.p,
        n_neurons=len(ipr_n),
        ipr=ipr_n,
        dominant_freq=spec.dominant_freq,
        dominant_frac=spec.dominant_frac,
        periodic=periodic,
        threshold=thr,
        rule=cut.rule,
        bimodal=cut.bimodal,
        bimodality=cut.bimodality,
        delta_bic=cut.delta_bic,
        otsu_threshold=cut.otsu_threshold,
        gmm_threshold=cut.gmm_threshold,
        ipr_random=base,
        n_periodic=n_per,
        frac_periodic=n_per / max(1, len(ipr_n)),
        freq_counts=[int(c) for c in counts],
        key_frequencies=keys if tb.cyclic else [],
        key_rule=KEY_RULES[key_rule],
        **extra,
        group=tb.name,
        irreps=tb.names,
        key_irreps=[tb.names[i] for i in keys],
    )
