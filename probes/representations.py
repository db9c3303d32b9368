"""Chughtai, Chan and Nanda 2023's measurements of a network on a group task, for every irrep.

A network trained to compose elements of a group G learns a few irreducible representations rho (its
"key irreps") and computes logits ~ sum over them of tr(rho(x) rho(y) rho(z^-1)) = chi_rho(x y z^-1)
(their section 4). `rep_metrics` measures, for every real irrep rho of the task's group
(`interp.groups.group_of`), how much of each part of the network lives in rho, and what the logits
lose or keep when everything but rho (or rho alone) is cut out of the hidden layer.

Notation. Pairs (x, y) range over G x G (|G|^2 of them, row x |G| + y); z over G (the classes);
f(x, y) is the task's answer (x y for a composition task, x - y for subtraction: its label).
Q_rho [|G|, r] is an orthonormal basis of the span of rho's matrix coefficients g -> rho(g)_ij (the
isotypic component; r = d^2 for a real irrep, d^2 / 2 for a complex one; `FiniteGroup.basis`). The
"share in rho" of a matrix M [|G|, k] whose rows are indexed by G is ||Q_rho^T M||_F^2 / ||M||_F^2.

- x_embed, y_embed: the share in rho of the effective embeddings E_x, E_y [|G|, hidden] (not centred):
  for grokscope's MLP logits = W act(U e_x + V e_y), E_x = U^T and E_y = V^T (for an imported
  OneLayerMLP, U = (W_x W[:e])^T: their W_x times the x half of the first layer); for a transformer,
  both are the token rows of W_E (d_model wide).
- unembed: the share in rho of the unembedding along the class axis: U_cls [|G|, hidden] = W^T for the
  MLP (their W_U), (W_out W_U)^T for a transformer (the last layer's neurons to the logits).
- hidden_x, hidden_y, hidden_xy: H [|G|^2, n] the hidden activations over all pairs (the MLP's
  post-activation neurons; a transformer's last-layer MLP neurons at the answer position), centred
  over pairs (H_c = H - mean). The share of ||H_c||_F^2 in the span of the functions
  (x, y) -> rho(x)_ij (hidden_x), rho(y)_ij (hidden_y), rho(f(x, y))_ij (hidden_xy). The trivial irrep's
  shares are 0 by the centring.
- logit_similarity: the cosine, over all |G|^3 entries, between the centred logits L_c[(x, y), z] =
  L - mean_z L (the model's logits, restricted to the group's classes) and the trace tensor
  T_rho[(x, y), z] = chi_rho(f(x, y) z^-1) (not centred; its rows already sum to 0 for non-trivial rho).
  T_rho for different irreps are orthogonal, so the sum of the squared similarities over the
  non-trivial irreps (`logit_explained`) is the share of ||L_c||^2 the trace tensors explain.
- restricted_loss: mean cross-entropy over all pairs, against the true labels, of the logits rebuilt
  from H (not centred) projected onto the span of (x, y) -> rho(f(x, y))_ij, through the neuron path
  only (MLP: H W^T, no output bias; transformer: H W_out W_U, no biases and no other path).
- excluded_loss: mean cross-entropy over the training pairs, against the labels trained on, of the
  neuron-path logits of H with that projection removed.
- key_irreps: the non-trivial irreps with logit_similarity > 0.005 (their rule); `restricted_loss` and
  `excluded_loss` at the top level project onto the key irreps together. key_irreps_by_embedding: the
  irreps whose embedding Fourier norm exceeds a quarter of the largest (`probes.fourier.key_irreps`).
  `loss` is the model's own mean cross-entropy over all pairs (on the group's classes) and
  `neuron_path_loss` that of the neuron path alone, the two references for the restricted loss;
  `chance_loss` = log |G|.

Z_p^* (x*y and x/y): 0 is not in the group, so every quantity here is taken on the (p-1)^2 pairs of
nonzero operands and the p-1 nonzero classes (the logits' class-0 column and token 0's embeddings are
left out; a training pair whose given label is 0, possible only under label noise, is left out of the
excluded loss). `test_acc` is the model's on the whole task.

All losses are means (Chughtai et al.'s published S6 transformer losses are 8 times the mean: not
reproduced), computed with the true irreps (their A_5 3-d matrices are not a representation). The
hidden layer and the logits are the model's float32; sums, shares and the restricted logits are taken
in float64, the neuron-path logits of the excluded loss in float32 as the model computes its own
(the two agree closely: tests/test_representations.py). The pairs stream through in chunks, so
nothing of size |G|^3 or |G|^2 x |G| is held (S6's figures: bench/README.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.checkpoints.subject import resolve_subject
from interp.groups import group_of
from interp.interventions import answer_position, cache_hooks
from interp.models import model_family
from interp.results import Result
from probes.fourier import key_irreps as embedding_key_irreps
from probes.group_basis import group_basis

__all__ = [
    "KEY_SIMILARITY",
    "MEASURES",
    "RepMetrics",
    "rep_metrics",
]

KEY_SIMILARITY = 0.005  # Chughtai et al.: a key irrep's logit similarity exceeds this
PAIR_CHUNK = 8192  # pairs per forward pass
CACHE_ELEMENTS = 2**27  # the training pairs' hidden activations are kept between the passes up to this size
MEASURES = (
    "x_embed",
    "y_embed",
    "unembed",
    "hidden_x",
    "hidden_y",
    "hidden_xy",
    "logit_similarity",
    "restricted_loss",
    "excluded_loss",
)


@dataclass(frozen=True, eq=False)
class RepMetrics(Result):
    """Chughtai et al.'s measurements of one model (see the module docstring for each definition).

    irreps: {irrep name: {"x_embed", "y_embed", "unembed", "hidden_x", "hidden_y", "hidden_xy",
    "logit_similarity", "restricted_loss", "excluded_loss"}}, in the group's irrep order.
    """

    group: str
    family: str
    irreps: dict
    key_irreps: list[str]
    key_irreps_by_embedding: list[str]
    test_acc: float
    test_loss: float
    loss: float  # the model's mean cross-entropy over every pair of the group (its classes only)
    neuron_path_loss: float  # the same for the logits of the hidden layer's direct path alone
    restricted_loss: float  # over the key irreps together
    excluded_loss: float  # over the key irreps together
    logit_explained: float  # sum over non-trivial irreps of logit_similarity^2
    chance_loss: float  # log |G|
    irrep_dims: dict  # {name: dim}
    key_rule: str
    n_pairs: int
    notes: str


def _pairs(g, device) -> torch.Tensor:
    """[|G|^2, 2] every (x, y) as token ids, row x |G| + y."""
    n = g.order
    x = torch.arange(n, device=device).repeat_interleave(n)
    y = torch.arange(n, device=device).repeat(n)
    tok = torch.as_tensor(g.tokens, device=device)
    return torch.stack([tok[x], tok[y]], dim=1)


def _labels_of_pairs(task, g, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(true label [|G|^2] of each group pair as an element index, training rows [k], their given
    labels [k] as element indices), read from the task (so x - y, x / y and the S5 operations keep their rule)."""
    p, n = task.p, g.order
    element = torch.full((p,), -1, dtype=torch.long)
    element[torch.as_tensor(g.tokens)] = torch.arange(n)
    a, b = task.inputs[:, 0], task.inputs[:, 1]
    row = torch.full((p, p), -1, dtype=torch.long)  # token pair -> group pair row
    ea, eb = element[a], element[b]
    inside = (ea >= 0) & (eb >= 0)
    row[a[inside], b[inside]] = ea[inside] * n + eb[inside]
    labels = torch.full((n * n,), -1, dtype=torch.long)
    labels[row[a[inside], b[inside]]] = element[task.labels[inside]]
    if (labels < 0).any():
        raise ValueError(f"{task.spec.op}: some pairs of {g.name} have no label in the group; not a group task")
    if not bool((torch.bincount(labels, minlength=n) == n).all()):
        raise ValueError(f"{task.spec.op}: the labels do not take every value of {g.name} equally often")
    tr = task.train_idx
    tr_rows = row[a[tr], b[tr]]
    tr_given = element[task.train_labels]
    keep = (tr_rows >= 0) & (tr_given >= 0)
    return labels.to(device), tr_rows[keep].to(device), tr_given[keep].to(device)


def _hidden_and_logits(model, pairs: torch.Tensor):
    """Yields (rows, H [c, n], logits [c, p]) over chunks of `pairs`, in eval mode, without gradients
    (float32, the model's own precision)."""
    hook = model.neuron_hook
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(pairs), PAIR_CHUNK):
            logits, acts = cache_hooks(model, pairs[i : i + PAIR_CHUNK], [hook], full=False, max_rows=PAIR_CHUNK)
            yield slice(i, i + len(logits)), answer_position(acts[hook]).float(), logits.float()
    finally:
        model.train(was_training)


def _test_metrics(model, task, device) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the task's test pairs, as `interp.evaluate` computes them, a chunk
    of pairs at a time (S6's table would otherwise hold a [518400, 720] block of logits)."""
    idx = task.test_idx
    if len(idx) == 0:
        return float("nan"), float("nan")
    correct = loss = 0.0
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(idx), PAIR_CHUNK):
            rows = idx[i : i + PAIR_CHUNK]
            logits = model.pair_logits(task.inputs[rows].to(device)).float().double()
            y = task.labels[rows].to(device)
            correct += float((logits.argmax(-1) == y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
    finally:
        model.train(was_training)
    return correct / len(idx), loss / len(idx)


def _shares(power: torch.Tensor) -> torch.Tensor:
    """[R] shares of a power vector [R] (0 for a zero matrix)."""
    total = power.sum()
    return power / total if total > 0 else torch.zeros_like(power)


@torch.no_grad()
def rep_metrics(subject, task=None, *, device=None) -> RepMetrics:
    """Chughtai et al.'s per-irrep measurements of a model on a task over a group: the share of the x-
    and y-embeddings, the unembedding and the hidden activations (over x, y and x*y) in each irrep,
    the logit trace similarity with chi(x y z^-1), restricted and excluded losses per irrep and over the
    key irreps, key irreps by their rule and by embedding norm, and test accuracy; for the MLP and the
    transformer. Definitions: the module docstring."""
    model, task = resolve_subject(subject, task, device=device)
    g = group_of(task)
    dev = next(model.parameters()).device
    tb = group_basis(g)
    n_g, R = g.order, len(g.irreps)
    labels, tr_rows, tr_given = _labels_of_pairs(task, g, dev)
    cls = torch.as_tensor(g.tokens, device=dev)  # the group's classes among the model's outputs

    # ----- weights: embeddings and unembedding (token / class axis first) ---------------------------
    emb = model.operand_embeddings().detach().double()  # [2, p, d]: what each operand's token feeds forward
    unembed = model.neuron_out_weights().detach().double()  # [n, p]: hidden -> logits
    share_x, share_y = _shares(tb.power(emb[0], dim=0).sum(1)), _shares(tb.power(emb[1], dim=0).sum(1))
    share_u = _shares(tb.power(unembed.T, dim=0).sum(1))
    u_cls = unembed[:, cls]  # [n, |G|]

    sums = _pass_over_pairs(model, g, labels, tr_rows, u_cls, cls)
    hidden = _hidden_shares(sums, g, tb)
    sims = _logit_similarities(sums, g)
    key = [rep.name for rep, s in zip(g.irreps[1:], sims[1:]) if s > KEY_SIMILARITY]
    restricted, excluded = _restricted_and_excluded(model, g, sums, key, labels, tr_rows, tr_given, u_cls)

    test_acc, test_loss = _test_metrics(model, task, dev)
    values = {
        rep.name: {
            "x_embed": float(share_x[i]),
            "y_embed": float(share_y[i]),
            "unembed": float(share_u[i]),
            "hidden_x": float(hidden["hidden_x"][i]),
            "hidden_y": float(hidden["hidden_y"][i]),
            "hidden_xy": float(hidden["hidden_xy"][i]),
            "logit_similarity": sims[i],
            "restricted_loss": float(restricted[i]),
            "excluded_loss": float(excluded[i]),
        }
        for i, rep in enumerate(g.irreps)
    }
    hidden_layer = f"the neurons at {model.neuron_hook} (at the answer position)"
    notes = f"hidden = {hidden_layer}; restricted and excluded logits through the neuron path only (no biases)"
    if g.order < task.p:
        notes += "; 0 is not in the group: pairs with a 0 operand and the class 0 are left out"
    n_pairs = n_g * n_g
    return RepMetrics(
        group=g.name,
        family=model_family(model),
        irreps=values,
        key_irreps=key,
        key_irreps_by_embedding=embedding_key_irreps(model, task),
        test_acc=test_acc,
        test_loss=test_loss,
        loss=float(sums.ce_model) / n_pairs,
        neuron_path_loss=float(sums.ce_path) / n_pairs,
        restricted_loss=float(restricted[R]),
        excluded_loss=float(excluded[R]),
        logit_explained=float(sum(s * s for s in sims[1:])),
        chance_loss=math.log(n_g),
        irrep_dims={r.name: r.dim for r in g.irreps},
        key_rule=f"logit_similarity > {KEY_SIMILARITY} (Chughtai et al.)",
        n_pairs=n_pairs,
        notes=notes,
    )


@dataclass
class _PairSums:
    """What one pass over every pair (x, y) keeps: sums of the hidden activations H (overall, by x, by y,
    by label), of |H|^2, of the centred logits by label and of their squares, the two cross-entropies,
    and the training pairs' hidden rows when they fit in memory (None: recomputed)."""

    sum_h: torch.Tensor  # [n]
    sum_h2: torch.Tensor  # []
    s_x: torch.Tensor  # [|G|, n]
    s_y: torch.Tensor  # [|G|, n]
    s_lab: torch.Tensor  # [|G|, n]
    s_logit: torch.Tensor  # [|G| (label), |G| (class)]
    logit_sq: torch.Tensor  # []
    ce_model: torch.Tensor  # []
    ce_path: torch.Tensor  # []
    pairs: torch.Tensor  # [|G|^2, 2]
    h_train: torch.Tensor | None  # [n_train, n]


def _pass_over_pairs(model, g, labels, tr_rows, u_cls, cls) -> _PairSums:
    """Pass 1: hidden activations and logits over every pair, in chunks, reduced to `_PairSums`."""
    dev, n_g, n_h = u_cls.device, g.order, u_cls.shape[0]

    def zeros(*shape):
        return torch.zeros(*shape, dtype=torch.float64, device=dev)

    sums = _PairSums(
        sum_h=zeros(n_h), sum_h2=zeros(()), s_x=zeros(n_g, n_h), s_y=zeros(n_g, n_h), s_lab=zeros(n_g, n_h),
        s_logit=zeros(n_g, n_g), logit_sq=zeros(()), ce_model=zeros(()), ce_path=zeros(()),
        pairs=_pairs(g, dev), h_train=None,
    )  # fmt: skip
    u32 = u_cls.float()
    train_pos = torch.full((n_g * n_g,), -1, dtype=torch.long, device=dev)  # row -> position among training rows
    train_pos[tr_rows] = torch.arange(len(tr_rows), device=dev)
    if len(tr_rows) * n_h <= CACHE_ELEMENTS:  # keep them: the second pass needs no forward pass
        sums.h_train = torch.zeros(len(tr_rows), n_h, device=dev)
    for rows, h32, logits in _hidden_and_logits(model, sums.pairs):
        r = torch.arange(rows.start, rows.stop, device=dev)
        x, y, lab = r // n_g, r % n_g, labels[rows]
        if sums.h_train is not None:
            pos = train_pos[rows]
            sums.h_train[pos[pos >= 0]] = h32[pos >= 0]
        sums.ce_path += F.cross_entropy(h32 @ u32, lab, reduction="none").double().sum()
        h = h32.double()
        sums.sum_h += h.sum(0)
        sums.sum_h2 += (h * h).sum()
        sums.s_x.index_add_(0, x, h)
        sums.s_y.index_add_(0, y, h)
        sums.s_lab.index_add_(0, lab, h)
        lg = logits[:, cls].double()
        lc = lg - lg.mean(-1, keepdim=True)
        sums.logit_sq += (lc * lc).sum()
        sums.s_logit.index_add_(0, lab, lc)
        sums.ce_model += F.cross_entropy(lg, lab, reduction="sum")
    return sums


def _hidden_shares(sums: _PairSums, g, tb) -> dict[str, torch.Tensor]:
    """The share of the centred hidden activations' norm that each irrep carries as a function of x, of y
    and of x*y ([R] each)."""
    n_g = g.order
    n_pairs = n_g * n_g
    mean_h = sums.sum_h / n_pairs
    hc_sq = sums.sum_h2 - n_pairs * (mean_h * mean_h).sum()  # ||H - mean||^2
    hidden = {}
    for name, s in (("hidden_x", sums.s_x), ("hidden_y", sums.s_y), ("hidden_xy", sums.s_lab)):
        marginal = s / n_g - mean_h  # [|G|, n]: the mean of H_c over the pairs sharing x (y, f(x, y))
        pw = n_g * tb.power(_on_tokens(marginal, g, tb), dim=0).sum(1)
        hidden[name] = pw / hc_sq if hc_sq > 0 else torch.zeros_like(pw)
    return hidden


def _logit_similarities(sums: _PairSums, g) -> list[float]:
    """The cosine similarity of the centred logits with tr rho(x y z^-1) = chi(x y z^-1), per irrep."""
    n_g, dev = g.order, sums.s_logit.device
    z_inv = torch.as_tensor(g.table[:, g.inverses], device=dev)  # [w, z] -> w z^-1
    sims = []
    for rep in g.irreps:
        chi = rep.character.to(dev)
        inner = (sums.s_logit * chi[z_inv]).sum()
        t_norm = math.sqrt(n_g**3 * float((chi * chi).sum()) / n_g)
        denom = math.sqrt(float(sums.logit_sq)) * t_norm
        sims.append(float(inner) / denom if denom > 0 else 0.0)
    return sims


def _restricted_and_excluded(model, g, sums: _PairSums, key, labels, tr_rows, tr_given, u_cls):
    """([R + 1], [R + 1]) restricted and excluded losses per irrep and, last, over the key irreps."""
    # Projecting H onto the span of (x, y) -> rho(f(x, y))_ij gives a function of f(x, y) alone:
    # F_rho[w] = (Q_rho Q_rho^T S)[w] / |G|, S[w] the sum of H over the pairs with label w.
    n_g, R, dev = g.order, len(g.irreps), u_cls.device
    Q, idx = g.basis
    Q, idx = Q.to(dev), idx.to(dev)
    coef = Q.T @ sums.s_lab / n_g  # [|G|, n]
    per_irrep = torch.stack([Q[:, idx == i] @ coef[idx == i] for i in range(R)])  # [R, |G|, n]
    key_mask = torch.tensor([r.name in key for r in g.irreps], device=dev)
    restricted_h = torch.cat([per_irrep, per_irrep[key_mask].sum(0, keepdim=True)])  # [R + 1, |G|, n]
    restricted_logits = restricted_h @ u_cls  # [R + 1, |G| (label w), |G| (class)]
    w = torch.arange(n_g, device=dev)
    restricted = F.cross_entropy(restricted_logits.reshape(-1, n_g), w.repeat(R + 1), reduction="none")
    restricted = restricted.reshape(R + 1, n_g).mean(1)  # each label is |G| pairs' label: the mean over pairs
    excluded = torch.zeros(R + 1, dtype=torch.float64, device=dev)
    if not len(tr_rows):
        return restricted, excluded.fill_(float("nan"))
    h_train, u32 = sums.h_train, u_cls.float()
    chunks = (
        ((slice(i, i + PAIR_CHUNK), h_train[i : i + PAIR_CHUNK]) for i in range(0, len(tr_rows), PAIR_CHUNK))
        if h_train is not None
        else ((rows, h) for rows, h, _ in _hidden_and_logits(model, sums.pairs[tr_rows]))
    )
    cut_logits = restricted_logits.float()
    for rows, h in chunks:
        path = h @ u32  # [c, |G|], float32 as the model computes its logits
        lab, given = labels[tr_rows[rows]], tr_given[rows]
        for i in range(R + 1):  # one irrep at a time: [c, |G|] stays small for S6
            ce = F.cross_entropy(path - cut_logits[i, lab], given, reduction="none")
            excluded[i] += ce.double().sum()
    return restricted, excluded / len(tr_rows)


def _on_tokens(m: torch.Tensor, g, tb) -> torch.Tensor:
    """[|G|, k] indexed by element -> [p, k] indexed by token (zeros outside the group), for `TaskBasis.power`."""
    out = torch.zeros(g.n_tokens, *m.shape[1:], dtype=m.dtype, device=m.device)
    out[torch.as_tensor(g.tokens, device=m.device)] = m
    return out
