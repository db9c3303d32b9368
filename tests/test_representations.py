"""Chughtai et al.'s measurements (`rep_metrics`) against a literal re-computation of their definitions
(full pair-by-pair matrices, projectors built from characters, SVD bases), on MLPs and transformers,
and against networks whose answer is known (one irrep computes the rule)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from group_models import discrete_log_mlp, irrep_mlp

from interp import Task, TaskSpec, evaluate
from interp.errors import SpecError
from interp.groups import group_of
from interp.models import MLPConfig, TransformerConfig, build_model
from probes.representations import MEASURES, rep_metrics


def span_basis(coef: torch.Tensor, rank: int) -> torch.Tensor:
    """An orthonormal basis of the column span of coef [N, k] (its leading left singular vectors)."""
    u, _, _ = torch.linalg.svd(coef, full_matrices=False)
    return u[:, :rank]


def share(P: torch.Tensor, M: torch.Tensor) -> float:
    """||P M||^2 / ||M||^2 for the projector P [|G|, |G|] and M [|G|, k]."""
    return float((P @ M).pow(2).sum() / M.pow(2).sum())


def reference(model, task) -> dict:
    """Every measure of `rep_metrics`, computed the slow way from the definitions."""
    g = group_of(task)
    n = g.order
    tok = torch.as_tensor(g.tokens)
    elem = {int(t): i for i, t in enumerate(g.tokens)}
    rows = [(x, y) for x in range(n) for y in range(n)]
    pairs = torch.tensor([[int(tok[x]), int(tok[y])] for x, y in rows])
    label_of = {(int(a), int(b)): int(c) for (a, b), c in zip(task.inputs.tolist(), task.labels.tolist())}
    labels = torch.tensor([elem[label_of[(int(tok[x]), int(tok[y]))]] for x, y in rows])
    hook = model.neuron_hook
    with torch.no_grad():
        if model.cfg.family == "transformer":
            logits, cache = model.run_with_cache(model.pair_tokens(pairs))
            logits, H = logits[:, -1].double(), cache[hook][:, -1].double()
            E_x = E_y = model.embed.W_E[: task.p].double()
        else:
            logits, cache = model.run_with_cache(pairs)
            logits, H = logits.double(), cache[hook].double()
            E_x, E_y = model.U.T.double(), model.V.T.double()
        U = model.neuron_out_weights().double()[:, tok]  # [n_hidden, |G|]
    L = logits[:, tok]
    train = [(elem.get(int(a), -1), elem.get(int(b), -1)) for a, b in task.train_inputs.tolist()]
    given = [elem.get(int(c), -1) for c in task.train_labels.tolist()]
    keep = [i for i, (x, y) in enumerate(train) if x >= 0 and y >= 0 and given[i] >= 0]
    tr_rows = torch.tensor([train[i][0] * n + train[i][1] for i in keep])
    tr_given = torch.tensor([given[i] for i in keep])
    Hc = H - H.mean(0)
    Lc = L - L.mean(1, keepdim=True)
    inv = torch.as_tensor(g.inverses)
    table = torch.as_tensor(g.table)
    xs, ys = torch.tensor([x for x, _ in rows]), torch.tensor([y for _, y in rows])
    out, sims, spans_xy = {}, {}, {}
    for r in g.irreps:
        c = 1.0 if r.kind == "real" else 2.0
        P = r.dim / (c * n) * r.character[table[:, inv]]  # the isotypic projector on functions on G
        flat = r.matrices.reshape(n, -1)
        b_x = span_basis(flat[xs], r.span_dim)
        b_y = span_basis(flat[ys], r.span_dim)
        b_xy = span_basis(flat[labels], r.span_dim)
        spans_xy[r.name] = b_xy
        T = r.character[table[labels][:, inv]]  # [pairs, z]: chi(f(x, y) z^-1)
        sim = float(F.cosine_similarity(Lc.reshape(-1), T.reshape(-1), dim=0))
        sims[r.name] = sim
        proj = b_xy @ (b_xy.T @ H)
        out[r.name] = {
            "x_embed": share(P, E_x[tok]),
            "y_embed": share(P, E_y[tok]),
            "unembed": share(P, U.T),
            "hidden_x": float((b_x.T @ Hc).pow(2).sum() / Hc.pow(2).sum()),
            "hidden_y": float((b_y.T @ Hc).pow(2).sum() / Hc.pow(2).sum()),
            "hidden_xy": float((b_xy.T @ Hc).pow(2).sum() / Hc.pow(2).sum()),
            "logit_similarity": sim,
            "restricted_loss": float(F.cross_entropy(proj @ U, labels)),
            "excluded_loss": float(F.cross_entropy(((H - proj) @ U)[tr_rows], tr_given)),
        }
    key = [name for name in out if name != "trivial" and sims[name] > 0.005]
    proj = sum((spans_xy[k] @ (spans_xy[k].T @ H) for k in key), torch.zeros_like(H))
    totals = {
        "restricted_loss": float(F.cross_entropy(proj @ U, labels)),
        "excluded_loss": float(F.cross_entropy(((H - proj) @ U)[tr_rows], tr_given)),
        "loss": float(F.cross_entropy(L, labels)),
        "neuron_path_loss": float(F.cross_entropy(H @ U, labels)),
        "logit_explained": sum(s * s for k, s in sims.items() if k != "trivial"),
    }
    return {"irreps": out, "key_irreps": key, **totals}


def noisy_mlp(p: int, op: str, **task_kwargs):
    task = Task(TaskSpec(op=op, p=p, frac_train=0.5, seed=0, **task_kwargs))
    return build_model(MLPConfig(p=p, width=40, act="relu", bias=True), seed=2), task


CASES = {
    "S4 MLP, random weights": lambda: noisy_mlp(24, "S4:x*y"),
    "A4 MLP (a complex irrep), 30% label noise": lambda: noisy_mlp(12, "A4:x*y", label_noise=0.3),
    "S4 in Chughtai et al.'s order": lambda: noisy_mlp(24, "S4[chughtai]:x*y"),
    "D5 transformer": lambda: (
        build_model(TransformerConfig(p=10, d_model=16, n_heads=2, d_head=8, d_mlp=24), seed=1),
        Task(TaskSpec(op="D5:x*y", p=10, frac_train=0.6, seed=3)),
    ),
    "x-y mod 11": lambda: noisy_mlp(11, "x-y"),
    "x/y mod 13 with noise (Z_13^*)": lambda: noisy_mlp(13, "x/y", label_noise=0.4),
    "S5 conjugation x y x^-1": lambda: noisy_mlp(120, "S5:x*y*x^-1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rep_metrics_match_a_literal_computation_of_the_definitions(case):
    model, task = CASES[case]()
    ours, ref = rep_metrics(model, task), reference(model, task)
    assert list(ours.irreps) == list(ref["irreps"])
    for name, values in ref["irreps"].items():
        assert set(ours.irreps[name]) == set(MEASURES)
        for measure, expect in values.items():
            assert ours.irreps[name][measure] == pytest.approx(expect, rel=1e-6, abs=1e-9), (name, measure)
    assert ours.key_irreps == ref["key_irreps"]
    for total in ("restricted_loss", "excluded_loss", "loss", "neuron_path_loss", "logit_explained"):
        assert getattr(ours, total) == pytest.approx(ref[total], rel=1e-6, abs=1e-9), total
    assert ours.chance_loss == pytest.approx(math.log(group_of(task).order))
    assert ours.test_acc == evaluate(model, task)["test_acc"]
    d = ours.to_dict()
    assert set(d["irreps"][ours.key_irreps[0] if ours.key_irreps else "trivial"]) == set(MEASURES)


@pytest.mark.parametrize("name,irrep", [("S4", "(3,1)"), ("A5", "(3,1,1)-"), ("D13", "freq_5")])
def test_a_network_computing_one_irreps_trace_has_it_as_its_only_key_irrep(name, irrep):
    """Chughtai et al.'s picture, exactly: logits = 4 s^3 chi(x y z^-1) for one irrep."""
    model, task = irrep_mlp(name, irrep)
    r = rep_metrics(model, task)
    assert r.key_irreps == [irrep] and r.key_irreps_by_embedding == [irrep]
    assert r.irreps[irrep]["logit_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert r.logit_explained == pytest.approx(1.0, abs=1e-6)
    for m in ("x_embed", "y_embed", "unembed"):
        assert r.irreps[irrep][m] == pytest.approx(1.0, abs=1e-6)
    assert r.test_acc == 1.0
    assert r.restricted_loss == pytest.approx(r.loss, abs=1e-3)  # the key irrep carries the whole rule
    assert r.excluded_loss == pytest.approx(r.chance_loss, rel=1e-3)  # without it: chance
    train_loss = rep_metrics(model, task).irreps["trivial"]["excluded_loss"]
    for k, v in r.irreps.items():  # cutting any other irrep costs nothing (the training loss stays)
        if k != irrep:
            assert v["excluded_loss"] == pytest.approx(train_loss, rel=1e-6) and train_loss < 2e-3


def test_multiplication_mod_p_is_measured_on_the_nonzero_residues():
    model, task = discrete_log_mlp(13, width=60)
    r = rep_metrics(model, task)
    assert r.group == "Z13*" and r.n_pairs == 144 and "0 is not in the group" in r.notes
    assert r.logit_explained > 0.9 and len(r.key_irreps) >= 1
    assert r.irreps["trivial"]["hidden_xy"] == pytest.approx(0.0, abs=1e-12)


def test_rep_metrics_refuse_a_task_on_no_group_and_a_model_without_its_task():
    model = build_model(MLPConfig(p=13, width=8), seed=0)
    with pytest.raises(SpecError, match="x\\^2\\+y\\^2"):
        rep_metrics(model, Task(TaskSpec(op="x^2+y^2", p=13)))
    with pytest.raises(SpecError, match="task"):
        rep_metrics(model)
