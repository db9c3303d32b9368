"""Symmetric and alternating groups and their irreps: Young's orthogonal form and its restriction.

Elements are permutations of {0..n-1} in array form (p[i] is the image of i). Two conventions:

- grokscope's ("S3".."S6", "A3".."A6"; the S5 operations' since the first release): elements in
  lexicographic order of their array forms (S_n; for A_n the even ones), x*y = x o y, i.e.
  (x*y)[i] = x[y[i]] (y applied first).
- Chughtai et al.'s ("S3[chughtai]".."S6[chughtai]", "A5[chughtai]"), used by their published
  checkpoints: elements in SymPy's `SymmetricGroup(n).generate()` order (for A_5,
  `PermutationGroup(Permutation(0,1,2,3,4), Permutation(1,2)(3,4)).generate()`), x*y = SymPy's
  `x * y`, i.e. (x*y)[i] = y[x[i]] (x applied first).

Irreps of S_n are indexed by partitions of n: Young's orthogonal form on standard Young tableaux
gives real orthogonal matrices for the adjacent transpositions, and every element's matrix follows
from a word in them. Names: "trivial" for (n), "sign" for (1^n), and the partition otherwise, e.g.
"(4,1)" (the standard irrep), "(2,2,1)", "(3,1,1)". Under x-first composition the matrices are
transposed (rho'(x) = rho(x)^T = rho(x^-1) is then a homomorphism); characters are the same.

Irreps of A_n are the restrictions of S_n's: lambda and its conjugate lambda' restrict to the same
irrep, named by the larger of the two ("trivial", "(4,1)", "(3,2)" for A_5). A self-conjugate
lambda restricts to two conjugate pieces of half the dimension: when they are real (A_5's (3,1,1))
they are "(3,1,1)+" and "(3,1,1)-", "+" being the one with the larger character at the permutation
whose cycles have the lengths of lambda's diagonal hooks (for A_5: the 5-cycle [1,2,3,4,0], where
"(3,1,1)+" has (1 + sqrt 5) / 2); when they are a complex-conjugate pair (A_4's (2,2): the two 1-d
irreps over C with values omega, omega^2 on 3-cycles) they form one real 2-d irrep of complex kind,
named by the partition, "(2,2)".
"""

from __future__ import annotations

import hashlib
import itertools
import math
from functools import cache

import numpy as np
import torch

from interp.errors import SpecError
from interp.groups.core import FiniteGroup, Irrep, make_irrep

GROKSCOPE, CHUGHTAI = "grokscope", "chughtai"
LAWS = {
    GROKSCOPE: "(x*y)[i] = x[y[i]] (y applied first; x o y as functions)",
    CHUGHTAI: "(x*y)[i] = y[x[i]] (x applied first; SymPy's x * y)",
}
# sha256 (first 16 hex digits) of the element orders SymPy 1.14 generates, which are Chughtai et al.'s
# (the identity is element 20 of their S5, as in their checkpoints). A SymPy that generates another
# order would silently relabel every element of their checkpoints, so it is refused instead.
CHUGHTAI_ORDER_SHA = {
    "S3": "dc272365197d018f",
    "S4": "5587cd8931edad9b",
    "S5": "89f150bf7d8b1f13",
    "S6": "aae04e05b789d10f",
    "A5": "2b3db02a74c37c78",
}


# ----- permutations ------------------------------------------------------------------------------
@cache
def lex_permutations(n: int) -> np.ndarray:
    """[n!, n] every permutation of {0..n-1} in array form, lexicographic order."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)


def lex_rank(perms: np.ndarray) -> np.ndarray:
    """[N] the lexicographic rank of each permutation [N, n] among all n! (its row in `lex_permutations`)."""
    perms = np.asarray(perms, dtype=np.int64)
    N, n = perms.shape
    rank = np.zeros(N, dtype=np.int64)
    for i in range(n):
        smaller_later = (perms[:, i + 1 :] < perms[:, i : i + 1]).sum(1)  # Lehmer code digit
        rank += smaller_later * math.factorial(n - 1 - i)
    return rank


def parity(perms: np.ndarray) -> np.ndarray:
    """[N] 0 for even, 1 for odd permutations [N, n] (the parity of the inversion count)."""
    perms = np.asarray(perms)
    inv = (perms[:, :, None] > perms[:, None, :]) & np.triu(np.ones((perms.shape[1],) * 2, dtype=bool), 1)
    return (inv.sum((1, 2)) % 2).astype(np.int64)


def compose_table(perms: np.ndarray, convention: str) -> np.ndarray:
    """[N, N] the index of x*y among `perms` [N, n] (which must be closed under composition)."""
    N, n = perms.shape
    x, y = perms[:, None, :], perms[None, :, :]
    if convention == GROKSCOPE:
        prod = np.take_along_axis(np.broadcast_to(x, (N, N, n)), np.broadcast_to(y, (N, N, n)), axis=2)  # x[y[i]]
    else:
        prod = np.take_along_axis(np.broadcast_to(y, (N, N, n)), np.broadcast_to(x, (N, N, n)), axis=2)  # y[x[i]]
    where = np.full(math.factorial(n), -1, dtype=np.int64)
    where[lex_rank(perms)] = np.arange(N)
    out = where[lex_rank(prod.reshape(-1, n))].reshape(N, N)
    if (out < 0).any():
        raise ValueError("the permutations are not closed under composition")
    return out


def order_sha(perms: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(perms, dtype=np.int64).tobytes()).hexdigest()[:16]


def chughtai_elements(name: str, n: int) -> np.ndarray:
    """[|G|, n] Chughtai et al.'s element order, generated by SymPy (checked against the pinned order)."""
    from sympy.combinatorics import Permutation, PermutationGroup
    from sympy.combinatorics.named_groups import SymmetricGroup

    if name.startswith("A"):
        gens = PermutationGroup(Permutation(0, 1, 2, 3, 4), Permutation(1, 2)(3, 4))
    else:
        gens = SymmetricGroup(n)
    perms = np.array([p.array_form for p in gens.generate()], dtype=np.int64).reshape(-1, n)
    pinned = CHUGHTAI_ORDER_SHA.get(name)
    if pinned and order_sha(perms) != pinned:
        import sympy

        raise SpecError(
            f"{name}[chughtai]",
            "element order",
            order_sha(perms),
            f"the order Chughtai et al.'s checkpoints use (sha {pinned}, generated by SymPy 1.14)",
            f"SymPy {sympy.__version__} generates {name} in another order; install sympy==1.14 to read their checkpoints.",
        )
    return perms


# ----- Young's orthogonal form -------------------------------------------------------------------
def partitions(n: int) -> list[tuple[int, ...]]:
    """Partitions of n in reverse lexicographic order: (n), (n-1, 1), ..., (1, ..., 1)."""

    def gen(m, largest):
        if m == 0:
            yield ()
            return
        for first in range(min(m, largest), 0, -1):
            for rest in gen(m - first, first):
                yield (first, *rest)

    return list(gen(n, n))


def conjugate(lam: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sum(1 for part in lam if part > i) for i in range(lam[0]))


def partition_name(lam: tuple[int, ...]) -> str:
    if len(lam) == 1:
        return "trivial"
    if all(part == 1 for part in lam):
        return "sign"
    return "(" + ",".join(map(str, lam)) + ")"


def standard_tableaux(lam: tuple[int, ...]) -> list[tuple[tuple[int, int], ...]]:
    """Every standard Young tableau of shape lam, as the (row, column) box of each value 0..n-1."""
    n = sum(lam)
    out = []

    def fill(rows: list[int], boxes: list[tuple[int, int]]):
        k = len(boxes)
        if k == n:
            out.append(tuple(boxes))
            return
        for r in range(len(lam)):
            c = rows[r]
            if c < lam[r] and (r == 0 or rows[r - 1] > c):  # the box (r, c) keeps rows and columns increasing
                rows[r] += 1
                fill(rows, boxes + [(r, c)])
                rows[r] -= 1

    fill([0] * len(lam), [])
    return out


def young_generators(lam: tuple[int, ...]) -> list[torch.Tensor]:
    """rho(s_i) [d, d] for the adjacent transpositions s_i = (i, i+1), i = 0..n-2, in Young's orthogonal
    form: rho(s_i) e_T = e_T / r + sqrt(1 - 1 / r^2) e_{s_i T}, with r = c(i+1) - c(i) the axial distance
    (content c = column - row of a value's box) and s_i T the tableau with i and i+1 swapped."""
    tabs = standard_tableaux(lam)
    where = {t: j for j, t in enumerate(tabs)}
    n, d = sum(lam), len(tabs)
    gens = []
    for i in range(n - 1):
        m = torch.zeros(d, d, dtype=torch.float64)
        for j, t in enumerate(tabs):
            (ri, ci), (rj, cj) = t[i], t[i + 1]
            r = (cj - rj) - (ci - ri)
            m[j, j] = 1.0 / r
            if abs(r) > 1:
                swapped = list(t)
                swapped[i], swapped[i + 1] = t[i + 1], t[i]
                m[where[tuple(swapped)], j] = math.sqrt(1.0 - 1.0 / r**2)
        gens.append(m)
    return gens


@cache
def symmetric_irreps_lex(n: int) -> dict[tuple[int, ...], torch.Tensor]:
    """{partition: [n!, d, d] float64} Young's orthogonal form of every irrep of S_n, for the
    permutations in lexicographic order, as a homomorphism for x o y (rho(x o y) = rho(x) rho(y)).
    Built breadth-first over the Cayley graph of the adjacent transpositions (one batched matmul per
    generator and level)."""
    perms = lex_permutations(n)
    N = len(perms)
    table = compose_table(perms, GROKSCOPE)
    gen_idx = []
    for i in range(n - 1):
        s = np.arange(n)
        s[[i, i + 1]] = s[[i + 1, i]]
        gen_idx.append(int(lex_rank(s[None])[0]))
    lams = partitions(n)
    gens = {lam: young_generators(lam) for lam in lams}
    mats = {lam: torch.zeros(N, len(gens[lam][0]), len(gens[lam][0]), dtype=torch.float64) for lam in lams}
    identity = int(lex_rank(np.arange(n)[None])[0])
    for lam in lams:
        mats[lam][identity] = torch.eye(mats[lam].shape[1], dtype=torch.float64)
    seen = np.zeros(N, dtype=bool)
    seen[identity] = True
    frontier = np.array([identity])
    while len(frontier):
        new_frontier = []
        for k, s in enumerate(gen_idx):
            nxt = table[frontier, s]  # g o s_k
            fresh = ~seen[nxt]
            if not fresh.any():
                continue
            src, dst = frontier[fresh], nxt[fresh]
            dst, first = np.unique(dst, return_index=True)
            src = src[first]
            for lam in lams:
                mats[lam][dst] = mats[lam][src] @ gens[lam][k]
            seen[dst] = True
            new_frontier.append(dst)
        frontier = np.concatenate(new_frontier) if new_frontier else np.array([], dtype=np.int64)
    return mats


def diagonal_hooks(lam: tuple[int, ...]) -> list[int]:
    """The lengths of the diagonal hooks of lam (the cycle type on which a self-conjugate lam's two
    restricted pieces differ)."""
    lam_c = conjugate(lam)
    return [lam[i] - i + lam_c[i] - i - 1 for i in range(len(lam)) if lam[i] > i]


def cycle_permutation(n: int, lengths: list[int]) -> np.ndarray:
    """The permutation in array form with consecutive cycles (0 1 .. l1-1)(l1 .. l1+l2-1)..."""
    p, start = np.arange(n), 0
    for length in lengths:
        block = np.arange(start, start + length)
        p[block] = np.roll(block, -1)
        start += length
    return p


def split_restriction(lam, mats_all: torch.Tensor, odd_gens: list[torch.Tensor]):
    """The commutant of a self-conjugate lam restricted to A_n: T with T rho(s) = -rho(s) T for the odd
    generators s (one intertwiner of rho and rho (x) sign, unique up to scale). T symmetric: T^2 > 0, the
    restriction splits into T's +-1 eigenspaces (bases [d, d/2] each); T antisymmetric: a complex pair.
    Returns (basis_plus, basis_minus) or None for a complex pair."""
    d = mats_all.shape[-1]
    eye = torch.eye(d, dtype=torch.float64)
    # T s + s T = 0 for each generator s, row-major vec: (I kron s^T + s kron I) vec(T) = 0
    system = torch.cat([torch.kron(eye, s.T.contiguous()) + torch.kron(s, eye) for s in odd_gens])
    _, sv, vh = torch.linalg.svd(system)
    T = vh[-1].reshape(d, d)
    if sv[-2] < 1e-8 or sv[-1] > 1e-8:
        raise ValueError(f"{partition_name(lam)}: the intertwiner with the sign twist is not unique")
    if torch.allclose(T, -T.T, atol=1e-10):
        return None
    if not torch.allclose(T, T.T, atol=1e-10):
        raise ValueError(f"{partition_name(lam)}: the intertwiner is neither symmetric nor antisymmetric")
    vals, vecs = torch.linalg.eigh(T)
    return vecs[:, vals > 0], vecs[:, vals < 0]


def _lookup(group_perms: np.ndarray, mats_lex: torch.Tensor, convention: str) -> torch.Tensor:
    """The matrices [|G|, d, d] of the group's elements (array forms [|G|, n]) in its convention."""
    m = mats_lex[torch.as_tensor(lex_rank(group_perms))]
    return m.transpose(1, 2).contiguous() if convention == CHUGHTAI else m


def symmetric_irreps(perms: np.ndarray, convention: str) -> list[Irrep]:
    """Every irrep of S_n for the elements `perms` [n!, n] in the given convention, partitions in
    reverse lexicographic order (trivial first, sign last)."""
    n = perms.shape[1]
    out = []
    for lam, mats in symmetric_irreps_lex(n).items():
        out.append(
            make_irrep(
                partition_name(lam),
                _lookup(perms, mats, convention),
                description=f"Young's orthogonal form of the Specht module of the partition {lam}",
            )
        )
    return out


def alternating_irreps(perms: np.ndarray, convention: str) -> list[Irrep]:
    """Every irrep of A_n (the restrictions of S_n's, split where lambda is self-conjugate)."""
    n = perms.shape[1]
    all_mats = symmetric_irreps_lex(n)
    out = []
    for lam, mats in all_mats.items():
        lam_c = conjugate(lam)
        if lam_c > lam:  # restricts to the same irrep as its conjugate, named by the larger one
            continue
        rest = _lookup(perms, mats, convention)
        if lam_c != lam:
            out.append(make_irrep(partition_name(lam), rest, description=f"the restriction of S_{n}'s {lam}"))
            continue
        split = split_restriction(lam, mats, young_generators(lam))
        if split is None:
            out.append(
                make_irrep(
                    partition_name(lam),
                    rest,
                    kind="complex",
                    description=(
                        f"the restriction of S_{n}'s self-conjugate {lam}: irreducible over R, the realification "
                        "of a pair of complex-conjugate irreps"
                    ),
                )
            )
            continue
        pieces = [torch.einsum("da,gde,eb->gab", b, rest, b) for b in split]  # B^T rho(g) B
        probe = cycle_permutation(n, diagonal_hooks(lam))
        at = int(np.flatnonzero((perms == probe).all(1))[0])
        pieces.sort(key=lambda m: -float(torch.diagonal(m[at]).sum()))
        for sign, m in zip("+-", pieces):
            out.append(
                make_irrep(
                    partition_name(lam) + sign,
                    m,
                    description=(
                        f"one of the two pieces of S_{n}'s self-conjugate {lam} restricted to A_{n} "
                        f"('{sign}': the {'larger' if sign == '+' else 'smaller'} character at the permutation {probe.tolist()})"
                    ),
                )
            )
    return out


# ----- the groups --------------------------------------------------------------------------------
def symmetric_group(n: int, convention: str = GROKSCOPE) -> FiniteGroup:
    """S_n (3 <= n <= 6) in grokscope's or Chughtai et al.'s element order and law."""
    name = f"S{n}"
    perms = lex_permutations(n) if convention == GROKSCOPE else chughtai_elements(name, n)
    suffix = "" if convention == GROKSCOPE else "[chughtai]"
    order = "lexicographic order" if convention == GROKSCOPE else "SymPy's SymmetricGroup(n).generate() order"
    return FiniteGroup(
        name + suffix,
        tuple(tuple(int(v) for v in p) for p in perms),
        compose_table(perms, convention),
        law=LAWS[convention],
        irreps=lambda g: symmetric_irreps(perms, convention),
        description=f"the symmetric group on {n} points, {order}",
    )


def alternating_group(n: int, convention: str = GROKSCOPE) -> FiniteGroup:
    """A_n (3 <= n <= 6; Chughtai et al.'s convention for n = 5 only, as in their code)."""
    name = f"A{n}"
    if convention == GROKSCOPE:
        lex = lex_permutations(n)
        perms = lex[parity(lex) == 0]
        order = "the even permutations in lexicographic order"
    else:
        perms = chughtai_elements(name, n)
        order = "the order SymPy generates from Permutation(0,1,2,3,4) and Permutation(1,2)(3,4)"
    return FiniteGroup(
        name + ("" if convention == GROKSCOPE else "[chughtai]"),
        tuple(tuple(int(v) for v in p) for p in perms),
        compose_table(perms, convention),
        law=LAWS[convention],
        irreps=lambda g: alternating_irreps(perms, convention),
        description=f"the alternating group on {n} points, {order}",
    )
