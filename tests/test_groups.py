"""Finite groups and their real irreps: every irrep is a homomorphism to 1e-10, characters are
orthogonal, the irreps' spans fill the functions on G, and the names match the characters computed
independently (Murnaghan-Nakayama for S_n, the known table of A_5)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch

from interp import Task, TaskSpec
from interp.errors import SpecError
from interp.groups import MAX_GROUP_ORDER, group, group_of
from interp.groups.symmetric import CHUGHTAI_ORDER_SHA, order_sha

GROUPS = [
    "C7", "C8", "C59", "D5", "D6", "D13", "Z31*", "Z2*", "S3", "S4", "S5", "S6", "A4", "A5", "A6",
    "S4[chughtai]", "S5[chughtai]", "S6[chughtai]", "A5[chughtai]",
]  # fmt: skip


def generators(g) -> list[int]:
    """A generating set of `g`: the adjacent transpositions of S_n, (1 2 3) and (i i+1 i+2) for A_n,
    r and s for D_n, the cyclic generator otherwise."""
    if g.cyclic_order is not None:
        return [int(g.cyclic_order[1 % g.order])]
    if g.name.startswith("D"):
        return [g.elements.index((1, 0)), g.elements.index((0, 1))]
    n = len(g.elements[0])
    out = []
    for i in range(n - (1 if g.name.startswith("S") else 2)):
        p = list(range(n))
        if g.name.startswith("S"):
            p[i], p[i + 1] = p[i + 1], p[i]
        else:
            p[i], p[i + 1], p[i + 2] = p[i + 1], p[i + 2], p[i]
        out.append(g.elements.index(tuple(p)))
    return out


def check_homomorphism(g, rows) -> float:
    """max |rho(x) rho(h) - rho(xh)| over x in rows, every h and every irrep."""
    worst = 0.0
    table = torch.as_tensor(g.table)
    for r in g.irreps:
        lhs = torch.einsum("xij,hjk->xhik", r.matrices[rows], r.matrices)
        worst = max(worst, float((lhs - r.matrices[table[rows]]).abs().max()))
    return worst


@pytest.mark.parametrize("name", GROUPS)
def test_every_irrep_is_an_orthogonal_homomorphism_to_1e_10(name):
    g = group(name)
    rows = torch.arange(g.order) if g.order <= 120 else torch.tensor(generators(g))
    # on every pair when |G| <= 120; for S6 / A6 on generators x every element, which implies it on all pairs
    assert check_homomorphism(g, rows) < 1e-10
    rand = torch.randint(0, g.order, (64,), generator=torch.Generator().manual_seed(0))
    assert check_homomorphism(g, rand) < 1e-10
    for r in g.irreps:
        eye = torch.eye(r.dim, dtype=torch.float64)
        assert torch.allclose(r.matrices @ r.matrices.transpose(1, 2), eye.expand_as(r.matrices), atol=1e-10)
        assert torch.allclose(r.matrices[torch.as_tensor(g.inverses)], r.matrices.transpose(1, 2), atol=1e-10)
        assert torch.allclose(r.matrices[g.identity], eye, atol=1e-12)
        assert r.matrices.shape == (g.order, r.dim, r.dim) and r.character.shape == (g.order,)


@pytest.mark.parametrize("name", GROUPS)
def test_characters_are_orthogonal_and_the_irreps_span_every_function_on_the_group(name):
    g = group(name)
    chi = torch.stack([r.character for r in g.irreps])  # [R, |G|]
    kind = torch.tensor([1.0 if r.kind == "real" else 2.0 for r in g.irreps], dtype=torch.float64)
    # <chi_i, chi_j> = delta_ij for real irreps, 2 for the realification of a complex pair
    assert torch.allclose(chi @ chi.T / g.order, torch.diag(kind), atol=1e-10)
    # every complex irrep over C appears once: real irreps + 2 * complex ones = number of conjugacy classes
    assert int(kind.sum()) == len(g.conjugacy_classes)
    assert sum(r.span_dim for r in g.irreps) == g.order  # isotypic dimensions sum to |G|
    Q, idx = g.basis
    assert torch.allclose(Q.T @ Q, torch.eye(g.order, dtype=torch.float64), atol=1e-10)
    table_inv = torch.as_tensor(g.table[:, g.inverses])  # [g, h] -> g h^-1
    for i, r in enumerate(g.irreps):
        Qr = Q[:, idx == i]
        assert Qr.shape[1] == r.span_dim
        # the span of the coefficients is the isotypic component: projector (d / c|G|) chi(g h^-1)
        c = 1.0 if r.kind == "real" else 2.0
        assert torch.allclose(Qr @ Qr.T, r.dim / (c * g.order) * r.character[table_inv], atol=1e-10)
        # each coefficient function lies in it
        coef = r.matrices.reshape(g.order, -1)
        assert torch.allclose(Qr @ (Qr.T @ coef), coef, atol=1e-10)
    assert g.irreps[0].name == "trivial" and torch.all(g.irreps[0].character == 1)


# ----- names against independently computed characters ---------------------------------------------
def cycle_type(p) -> tuple[int, ...]:
    seen, out = set(), []
    for i in range(len(p)):
        if i in seen:
            continue
        length, j = 0, i
        while j not in seen:
            seen.add(j)
            j = p[j]
            length += 1
        out.append(length)
    return tuple(sorted(out, reverse=True))


@cache
def murnaghan_nakayama(lam: tuple[int, ...], mu: tuple[int, ...]) -> int:
    """chi_lam(mu) by removing border strips of length mu[0] (the Murnaghan-Nakayama rule, on beta-sets)."""
    if not mu:
        return 1 if sum(lam) == 0 else 0
    k, rest = mu[0], mu[1:]
    m = len(lam)
    beta = [lam[i] + m - 1 - i for i in range(m)]  # distinct, decreasing
    total = 0
    for i, b in enumerate(beta):
        if b - k < 0 or (b - k) in beta:
            continue
        new = sorted([x for j, x in enumerate(beta) if j != i] + [b - k], reverse=True)
        height = sum(1 for x in beta if b - k < x < b)
        lam_new = tuple(x - (m - 1 - j) for j, x in enumerate(new))
        total += (-1) ** height * murnaghan_nakayama(tuple(v for v in lam_new if v > 0), rest)
    return total


def partition_of(name: str, n: int) -> tuple[int, ...]:
    if name == "trivial":
        return (n,)
    if name == "sign":
        return (1,) * n
    return tuple(int(v) for v in name.strip("()").split(","))


@pytest.mark.parametrize("name", ["S3", "S4", "S5", "S6", "S4[chughtai]", "S5[chughtai]", "S6[chughtai]"])
def test_symmetric_group_irreps_are_named_by_their_partitions(name):
    g = group(name)
    n = len(g.elements[0])
    types = [cycle_type(p) for p in g.elements]
    lams = {partition_of(r.name, n) for r in g.irreps}
    assert len(lams) == len(g.irreps)  # one irrep per partition of n
    for r in g.irreps:
        lam = partition_of(r.name, n)
        expect = torch.tensor([murnaghan_nakayama(lam, mu) for mu in types], dtype=torch.float64)
        assert torch.allclose(r.character, expect, atol=1e-10), r.name
        assert r.kind == "real"
    fixed = torch.tensor([sum(p[i] == i for i in range(n)) for p in g.elements], dtype=torch.float64)
    assert torch.allclose(g.irrep(f"({n - 1},1)").character, fixed - 1)  # the standard irrep


def test_alternating_group_a5_has_the_known_character_table():
    phi = (1 + 5**0.5) / 2
    for name in ("A5", "A5[chughtai]"):
        g = group(name)
        assert g.irrep_names == ["trivial", "(4,1)", "(3,2)", "(3,1,1)+", "(3,1,1)-"]
        c5 = g.elements.index((1, 2, 3, 4, 0))  # the 5-cycle (0 1 2 3 4)
        c5sq = g.elements.index((2, 3, 4, 0, 1))  # its square, in the other class of 5-cycles
        rows = {
            (0, 1, 2, 3, 4): [1, 4, 5, 3, 3],
            (1, 0, 3, 2, 4): [1, 0, 1, -1, -1],
            (1, 2, 0, 3, 4): [1, 1, -1, 0, 0],
        }
        for perm, values in rows.items():
            i = g.elements.index(perm)
            assert [round(float(r.character[i]), 10) for r in g.irreps] == values
        chars = [float(r.character[c5]) for r in g.irreps]
        assert chars == pytest.approx([1, -1, 0, phi, 1 - phi])
        assert [float(r.character[c5sq]) for r in g.irreps] == pytest.approx([1, -1, 0, 1 - phi, phi])


def test_a4_has_a_complex_two_dimensional_irrep_for_its_pair_of_one_dimensional_complex_irreps():
    g = group("A4")
    assert [(r.name, r.dim, r.kind) for r in g.irreps] == [
        ("trivial", 1, "real"),
        ("(3,1)", 3, "real"),
        ("(2,2)", 2, "complex"),
    ]
    r = g.irrep("(2,2)")
    three_cycle = g.elements.index((1, 2, 0, 3))
    assert float(r.character[three_cycle]) == pytest.approx(-1.0)  # omega + omega^2
    assert r.span_dim == 2


def test_cyclic_dihedral_and_multiplicative_groups_have_their_documented_elements_laws_and_irreps():
    c = group("C8")
    assert c.elements == tuple(range(8)) and c.table[5, 6] == 3
    assert c.irrep_names == ["trivial", "freq_1", "freq_2", "freq_3", "sign"]
    assert torch.allclose(
        c.irrep("freq_1").matrices[2], torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64), atol=1e-12
    )
    d = group("D13")
    assert d.order == 26 and d.elements[13 + 4] == (4, 1)  # element n + t is r^t s
    r, s = d.elements.index((1, 0)), d.elements.index((0, 1))
    assert d.table[s, r] == d.table[d.inverses[r], s]  # s r = r^-1 s
    assert d.irrep_names == ["trivial", "sign", *[f"freq_{k}" for k in range(1, 7)]]
    assert group("D6").irrep_names == ["trivial", "sign", "r_sign", "rs_sign", "freq_1", "freq_2"]
    z = group("Z31*")
    assert z.elements == tuple(range(1, 31)) and z.tokens.tolist() == list(range(1, 31)) and z.n_tokens == 31
    assert z.elements[z.table[6, 9]] == (7 * 10) % 31
    gen = z.elements[z.cyclic_order[1]]
    assert gen == 3  # the smallest primitive root mod 31
    assert [z.elements[i] for i in z.cyclic_order] == [pow(3, j, 31) for j in range(30)]
    legendre = torch.tensor([1.0 if pow(a, 15, 31) == 1 else -1.0 for a in range(1, 31)], dtype=torch.float64)
    assert torch.equal(z.irrep("sign").character, legendre)


def test_symmetric_groups_follow_their_element_order_and_law():
    ours, theirs = group("S5"), group("S5[chughtai]")
    assert ours.identity == 0 and theirs.identity == 20  # Chughtai et al.'s S5: the identity is element 20
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.integers(0, 120, 2)
        x, y = ours.elements[a], ours.elements[b]
        assert ours.elements[ours.table[a, b]] == tuple(x[y[i]] for i in range(5))  # y first
        x, y = theirs.elements[a], theirs.elements[b]
        assert theirs.elements[theirs.table[a, b]] == tuple(y[x[i]] for i in range(5))  # x first (SymPy's x*y)
    for name, sha in CHUGHTAI_ORDER_SHA.items():
        g = group(f"{name}[chughtai]")
        assert order_sha(np.array(g.elements)) == sha
    a5 = group("A5[chughtai]")
    assert a5.elements[:3] == ((0, 1, 2, 3, 4), (1, 2, 3, 4, 0), (2, 3, 4, 0, 1))


def test_group_structure_conjugacy_classes_and_element_orders():
    g = group("S4")
    sizes = sorted(len(c) for c in g.conjugacy_classes)
    assert sizes == [1, 3, 6, 6, 8]
    assert sorted(np.bincount(g.element_orders).tolist()) == sorted([0, 1, 9, 8, 6])
    assert sorted(len(c) for c in group("A5").conjugacy_classes) == [1, 12, 12, 15, 20]
    assert group("Z31*").element_orders.max() == 30 and group("D13").is_abelian is False


def test_group_of_each_task():
    assert group_of(Task(TaskSpec(op="x+y", p=31))).name == "C31"
    assert group_of(TaskSpec(op="x-y", p=24)).name == "C24"
    assert group_of(TaskSpec(op="x*y", p=31)).name == "Z31*"
    assert group_of(TaskSpec(op="x/y", p=31)).name == "Z31*"
    assert group_of(TaskSpec(op="S5:x*y*x^-1", p=120)).name == "S5"
    assert group_of(TaskSpec(op="D13:x*y", p=26)).name == "D13"
    with pytest.raises(SpecError, match=r"x\^2\+y\^2.*basis='additive'"):
        group_of(TaskSpec(op="x^2+y^2", p=31))
    with pytest.raises(SpecError, match="not a group under multiplication"):
        group_of(TaskSpec(op="x*y", p=12))


def test_unknown_or_too_large_groups_are_refused_with_the_known_ones_or_the_limit():
    with pytest.raises(SpecError, match=r"C<n>.*D<n>.*S3\.\.S6"):
        group("Q8")
    with pytest.raises(SpecError, match=f"at most {MAX_GROUP_ORDER} elements.*S7 has 5,040"):
        group("S7")
    with pytest.raises(SpecError, match="p prime"):
        group("Z12*")
    with pytest.raises(SpecError, match="A5\\[chughtai\\]"):
        group("A4[chughtai]")
    assert group("S4") is group("S4")  # built once
    assert math.factorial(6) == group("S6").order
