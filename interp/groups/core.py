"""A finite group on the indices 0..|G|-1 (a task's element order) and its real irreducible representations.

`FiniteGroup` holds the concrete elements, the multiplication table, inverses, identity, conjugacy
classes and element orders; its irreps are computed once, on first use, by the constructor of its
family (`interp.groups.families`, `interp.groups.symmetric`).

Every irrep is real and orthogonal: rho(g) [d, d] with rho(g) rho(h) = rho(gh) and rho(g)^T = rho(g^-1).
Over the reals an irreducible representation is of one of two kinds here (no quaternionic ones occur
in these groups): "real" (absolutely irreducible: its d^2 matrix coefficients g -> rho(g)_ij span a
d^2-dimensional space of functions on G), or "complex" (the realification of a pair of complex
conjugate irreps, such as C_n's 2-d rotations or A_4's (2,2): its coefficients span d^2 / 2
dimensions). The spans of the irreps are orthogonal and together span every function on G
(sum of span dimensions = |G|); `FiniteGroup.basis` is an orthonormal basis adapted to them, the
group's Fourier basis (for C_n it is the real Fourier basis).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from interp.errors import SpecError

# The largest group grokscope builds a task on: its |G|^2 pair table is as large as the largest Z_p's.
MAX_GROUP_ORDER = 3000
KINDS = ("real", "complex")


@dataclass(frozen=True, eq=False)
class Irrep:
    """One real irreducible representation of a group, in the group's element order.

    name: stable and documented ("trivial", "sign", "freq_k", a partition such as "(4,1)", ...).
    matrices: [|G|, d, d] float64, orthogonal. character: [|G|] float64, the trace of each matrix.
    kind: "real" (coefficients span d^2 functions) or "complex" (the realification of a conjugate pair
    of complex irreps: d^2 / 2). description: what it is, in words.
    """

    name: str
    dim: int
    matrices: torch.Tensor = field(repr=False)  # [|G|, d, d] float64
    character: torch.Tensor = field(repr=False)  # [|G|] float64
    kind: str = "real"
    description: str = ""

    @property
    def span_dim(self) -> int:
        """Dimension of the span of the matrix coefficients g -> rho(g)_ij (the isotypic component of
        the functions on G): d^2 for a real irrep, d^2 / 2 for a complex one."""
        return self.dim * self.dim if self.kind == "real" else self.dim * self.dim // 2


def make_irrep(name: str, matrices: torch.Tensor, kind: str = "real", description: str = "") -> Irrep:
    """An `Irrep` from its matrices [|G|, d, d] (the character is their trace)."""
    m = matrices.to(torch.float64).contiguous()
    if kind not in KINDS:
        raise ValueError(f"irrep kind {kind!r} is not one of {KINDS}")
    return Irrep(name, int(m.shape[-1]), m, torch.diagonal(m, dim1=1, dim2=2).sum(-1), kind, description)


class FiniteGroup:
    """A finite group whose elements are the indices 0..|G|-1, in a task's element order.

    name: e.g. "S4", "D13", "C59", "Z31*". elements: each element's concrete form (a permutation in
    array form p[i] = image of i for S_n and A_n, (t, e) for r^t s^e in D_n, the integer for C_n, Z_p
    and Z_p^*). table[g, h]: the index of g*h under `law` (described in words). tokens[g]: the task's
    token (and class) id of element g; the identity map except for Z_p^*, whose elements 1..p-1 are
    tokens 1..p-1 of a task with p tokens (0 is a token outside the group). cyclic_order: for a cyclic
    group, the index of gen^k for k = 0..|G|-1 (its Fourier basis is the real Fourier basis in that
    order), else None.
    """

    def __init__(
        self,
        name: str,
        elements: tuple,
        table: np.ndarray,
        *,
        law: str,
        irreps: Callable[[FiniteGroup], list[Irrep]],
        tokens: np.ndarray | None = None,
        n_tokens: int | None = None,
        cyclic_order: np.ndarray | None = None,
        description: str = "",
    ):
        n = len(elements)
        table = np.ascontiguousarray(table, dtype=np.int64)
        if table.shape != (n, n):
            raise ValueError(f"{name}: a multiplication table of shape {table.shape} for {n} elements")
        self.name = name
        self.elements = tuple(elements)
        self.order = n
        self.table = table  # [n, n] int64: table[g, h] = index of g*h
        self.law = law
        self.description = description
        self.tokens = np.arange(n, dtype=np.int64) if tokens is None else np.asarray(tokens, dtype=np.int64)
        self.n_tokens = n if n_tokens is None else int(n_tokens)
        self.cyclic_order = None if cyclic_order is None else np.asarray(cyclic_order, dtype=np.int64)
        self._irreps_fn = irreps
        ident = np.flatnonzero((table == np.arange(n)[None, :]).all(axis=1))
        if len(ident) != 1:
            raise ValueError(f"{name}: the table has no unique identity")
        self.identity = int(ident[0])
        rows, cols = np.nonzero(table == self.identity)  # g * h = e
        if len(rows) != n:
            raise ValueError(f"{name}: not every element has one inverse")
        inv = np.empty(n, dtype=np.int64)
        inv[rows] = cols
        self.inverses = inv  # [n] int64

    # ----- structure --------------------------------------------------------------------------
    @property
    def is_abelian(self) -> bool:
        return bool((self.table == self.table.T).all())

    @cached_property
    def class_of(self) -> np.ndarray:
        """[|G|] int64: each element's conjugacy class, numbered by first appearance in element order."""
        h = np.arange(self.order)
        conj = self.table[self.table[h[:, None], h[None, :]], self.inverses[h][:, None]]  # [h, g]: h g h^-1
        rep = conj.min(axis=0)  # smallest index in each element's class
        _, first, labels = np.unique(rep, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))  # renumber classes by first appearance
        return order[labels].astype(np.int64)

    @property
    def conjugacy_classes(self) -> list[list[int]]:
        """The conjugacy classes as lists of element indices (the identity's class first)."""
        classes: dict[int, list[int]] = {}
        for g, c in enumerate(self.class_of.tolist()):
            classes.setdefault(c, []).append(g)
        return [classes[c] for c in sorted(classes)]

    @cached_property
    def element_orders(self) -> np.ndarray:
        """[|G|] int64: the order of each element (the least k >= 1 with g^k = e)."""
        g = np.arange(self.order)
        power, orders = g.copy(), np.zeros(self.order, dtype=np.int64)
        for k in range(1, self.order + 1):
            done = (power == self.identity) & (orders == 0)
            orders[done] = k
            if (orders > 0).all():
                break
            power = self.table[power, g]
        return orders

    # ----- representations --------------------------------------------------------------------
    @cached_property
    def irreps(self) -> tuple[Irrep, ...]:
        """Every real irreducible representation, "trivial" first; computed once per group."""
        return tuple(self._irreps_fn(self))

    @property
    def irrep_names(self) -> list[str]:
        return [r.name for r in self.irreps]

    def irrep(self, name: str) -> Irrep:
        for r in self.irreps:
            if r.name == name:
                return r
        raise SpecError(f"{self.name}.irrep", "name", name, f"one of {self.irrep_names}")

    @cached_property
    def basis(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q [|G|, |G|] float64 with orthonormal columns, irrep_index [|G|] long): the group's Fourier
        basis, columns grouped by irrep in `irreps` order, column j spanning part of the matrix
        coefficients of irrep irrep_index[j]. For a real irrep the columns are sqrt(d / |G|) rho(g)_ij
        themselves (orthonormal by Schur's relations); for a complex one an orthonormal basis of their
        span (its d^2 / 2 leading left singular vectors)."""
        n = self.order
        cols, index = [], []
        for i, r in enumerate(self.irreps):
            coef = r.matrices.reshape(n, r.dim * r.dim) * (r.dim / n) ** 0.5  # [|G|, d^2]
            if r.kind == "complex":
                u, _, _ = torch.linalg.svd(coef, full_matrices=False)
                coef = u[:, : r.span_dim]
            cols.append(coef)
            index += [i] * coef.shape[1]
        Q = torch.cat(cols, dim=1)
        if Q.shape != (n, n):
            raise ValueError(f"{self.name}: the irreps' spans have total dimension {Q.shape[1]}, not |G| = {n}")
        return Q, torch.tensor(index, dtype=torch.long)

    def __repr__(self) -> str:
        return f"FiniteGroup({self.name}, order {self.order})"
