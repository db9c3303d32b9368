"""A task's own Fourier basis for the probes: power per irrep, projection onto irreps, IPR.

Every probe that reads a spectrum asks `task_basis(model, task)` for the basis of the task's group
(`interp.groups.group_of`): Z_p for x+y and x-y, Z_p^* for x*y and x/y, S5 for the S5 operations, G for
"G:x*y". Operations that are no group's (the polynomial ones) are refused with a SpecError that names
the alternative: basis="additive", the per-operand spectra in Z_p's additive Fourier basis, which is
what they are and nothing more. A bare model without a task is read in Z_p's additive basis (its
tokens are residues mod p unless a task says otherwise).

Irreps are indexed as in `FiniteGroup.irreps`, the trivial one first. For a cyclic group (C_n = Z_n,
Z_p^*) the index is the folded frequency k of the real Fourier basis taken along gen^0, gen^1, ...
(the discrete logarithm for Z_p^*), and every quantity is computed with the FFT exactly as for Z_p: on
x+y and x-y the numbers are grokscope's frequency spectra, unchanged. For a non-abelian group the
power of a function f on G in irrep rho is ||Q_rho^T f||^2, Q_rho an orthonormal basis of the span of
rho's matrix coefficients (`FiniteGroup.basis`): the share of f in rho's isotypic component. Powers
sum to ||f||^2 over the group's elements.

Tokens outside the group (token 0 of x*y and x/y, which is 0 and not in Z_p^*) are left out of every
spectrum, share and IPR; a projection leaves them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from interp.errors import SpecError
from interp.groups import FiniteGroup, group_name_of, group_of
from interp.groups.registry import ADDITIVE_OPS
from probes.basis import frequency_power, grid_cell_power, ipr, random_ipr

__all__ = [
    "ADDITIVE_OPS",
    "BASES",
    "TaskBasis",
    "additive_basis",
    "cyclic_names",
    "group_basis",
    "task_basis",
]

BASES = ("group", "additive")
CELL_CHUNK_ELEMENTS = 2**26  # [neurons, |G|, |G|] elements per chunk of the 2-D transform of a non-abelian group


def cyclic_names(n: int) -> list[str]:
    """The irreps of a cyclic group of order n by frequency: trivial, freq_1, ..., sign (even n)."""
    names = ["trivial"] + [f"freq_{k}" for k in range(1, (n + 1) // 2)]
    return names + (["sign"] if n % 2 == 0 else [])


@dataclass(frozen=True, eq=False)
class TaskBasis:
    """The Fourier basis of a task's group, over the task's p tokens.

    name: the group ("C31", "Z31*", "S4", ...); additive: Z_p's additive basis (x+y, x-y, a bare model,
    or basis="additive"); names: the irreps, index = position (= frequency for cyclic groups); tokens:
    the task's token of each element in the order the transforms read them (gen^0, gen^1, ... for
    cyclic groups; element order otherwise); n_tokens: the task's p.
    """

    name: str
    additive: bool
    names: list[str]
    tokens: torch.Tensor  # [|G|] long
    n_tokens: int
    group: FiniteGroup | None = field(default=None, repr=False)  # None for Z_p's additive basis

    @property
    def order(self) -> int:
        return len(self.tokens)

    @property
    def n_irreps(self) -> int:
        return len(self.names)

    @property
    def cyclic(self) -> bool:
        return self.group is None or self.group.cyclic_order is not None

    @cached_property
    def exact(self) -> bool:
        """True when the tokens are 0..p-1 in order: Z_p's own basis, read without any reindexing."""
        return self.order == self.n_tokens and bool(torch.equal(self.tokens, torch.arange(self.order)))

    @cached_property
    def _q(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q [|G|, |G|] float64, one-hot [|G|, R] of each column's irrep) of a non-abelian group."""
        Q, idx = self.group.basis
        return Q, torch.nn.functional.one_hot(idx, self.n_irreps).to(torch.float64)

    def describe(self) -> str:
        if self.additive:
            return f"the real Fourier basis of Z_{self.n_tokens} (frequencies)"
        if self.cyclic:
            return f"the irreps of {self.name} by frequency ({self.group.description})"
        return f"the irreps of {self.name} ({self.group.description})"

    # ----- reading a function on the group out of a tensor over tokens ----------------------------
    def restrict(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """x [..., p, ...] over the task's tokens -> [..., |G|, ...] over the group's elements, in the
        order the transforms read them (x itself for Z_p)."""
        return x if self.exact else x.index_select(dim, self.tokens.to(x.device))

    def power(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Power in each irrep along `dim` (length p over tokens -> R): the squared norm of the
        projection onto the irrep's isotypic component; sums to ||x restricted to the group||^2."""
        g = self.restrict(x, dim)
        if self.cyclic:
            return frequency_power(g, dim=dim)
        Q, onehot = self._q
        moved = g.movedim(dim, -1)
        coef = moved.to(torch.float64) @ Q.to(moved.device)  # [..., |G|]
        out = (coef * coef) @ onehot.to(moved.device)  # [..., R]
        return out.to(moved.dtype if moved.is_floating_point() else torch.float32).movedim(-1, dim)

    def ipr(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """IPR of x along `dim`: for cyclic groups Doshi et al.'s IPR of the DFT amplitudes
        (`probes.basis.ipr`; unchanged for Z_p); for others sum_rho s_rho^2 of the irreps' power shares
        s_rho (1 for a function in one irrep). A zero vector gets 0."""
        if self.cyclic:
            return ipr(self.restrict(x, dim), dim=dim)
        pw = self.power(x, dim).movedim(dim, -1)
        total = pw.sum(-1)
        share = pw / total.clamp_min(torch.finfo(pw.dtype).tiny)[..., None]
        return torch.where(total > 0, (share * share).sum(-1), torch.zeros_like(total))

    def random_ipr(self) -> float:
        """Expected IPR of a Gaussian random vector on the group (the untrained baseline): `random_ipr`
        of the cyclic group's order; for others, the shares of a Gaussian vector are Dirichlet(r_rho / 2)
        (r_rho = span dimension), so E sum s^2 = sum a(a + 1) / (A (A + 1)), a = r_rho / 2, A = |G| / 2."""
        if self.cyclic:
            return random_ipr(self.order)
        a = torch.tensor([r.span_dim / 2 for r in self.group.irreps], dtype=torch.float64)
        A = self.order / 2
        return float((a * (a + 1)).sum() / (A * (A + 1)))

    def project(self, x: torch.Tensor, keep: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """x with its group part along `dim` projected onto the kept irreps (keep: bool [R], or [..., R]
        broadcast against x with `dim` moved last); tokens outside the group are left as they are."""
        g = self.restrict(x, dim).movedim(dim, -1)
        if self.cyclic:
            p = g.shape[-1]
            X = torch.fft.rfft(g.float() if not g.is_floating_point() else g, dim=-1)
            proj = torch.fft.irfft(X * keep.to(X.real.dtype), n=p, dim=-1)
        else:
            Q, _ = self._q
            Q = Q.to(g.device)
            idx = self.group.basis[1].to(g.device)
            coef = g.to(torch.float64) @ Q  # [..., |G|]
            proj = (coef * keep.to(g.device)[..., idx].to(torch.float64)) @ Q.T
        proj = proj.to(x.dtype).movedim(-1, dim)
        if self.exact:
            return proj
        out = x.clone()
        out.index_copy_(dim, self.tokens.to(x.device), proj)
        return out

    def grid(self, acts: torch.Tensor) -> torch.Tensor:
        """[p, p, ...] over (a, b) tokens -> [|G|, |G|, ...] over the group's elements (both axes)."""
        return self.restrict(self.restrict(acts, 0), 1)

    def cell_power(self, acts: torch.Tensor) -> torch.Tensor:
        """[|G|, |G|, n] activations over (a, b) elements (`grid`) -> [n, R, R] power of each neuron's
        centred activation in each pair of irreps (rho_a, rho_b): the 2-D group Fourier transform
        Q^T A Q, squared, summed within the cell. Cyclic groups: the batched fft2 of Z_p's
        `probes.fourier.grid_cell_power`; others: chunked over neurons."""
        if self.cyclic:
            return grid_cell_power(acts)
        Q, onehot = self._q
        Q, onehot = Q.to(acts.device), onehot.to(acts.device)
        n_g, n = acts.shape[0], acts.shape[-1]
        chunk = max(1, CELL_CHUNK_ELEMENTS // (n_g * n_g))
        out = []
        for i in range(0, n, chunk):
            a = acts[..., i : i + chunk].to(torch.float64).permute(2, 0, 1)  # [c, |G|, |G|]
            a = a - a.mean((1, 2), keepdim=True)
            coef = Q.T @ a @ Q  # [c, |G|, |G|]
            out.append((onehot.T @ (coef * coef) @ onehot).float())  # [c, R, R]
        return torch.cat(out)


def additive_basis(p: int) -> TaskBasis:
    """Z_p's additive real Fourier basis over p tokens (frequencies 0..p//2)."""
    return TaskBasis(f"C{p}", True, cyclic_names(p), torch.arange(p), p)


def group_basis(g: FiniteGroup) -> TaskBasis:
    """The Fourier basis of a group whose elements are a task's tokens."""
    order = torch.as_tensor(g.cyclic_order) if g.cyclic_order is not None else torch.arange(g.order)
    tokens = torch.as_tensor(g.tokens)[order]
    return TaskBasis(g.name, False, g.irrep_names, tokens, g.n_tokens, g)


def task_basis(model, task, *, where: str, basis: str = "group") -> TaskBasis:
    """The basis a probe reads `model` in: its task's group (basis="group", the default), or Z_p's
    additive basis (basis="additive", or no task). A SpecError for a task whose operation is no group's."""
    if basis not in BASES:
        raise SpecError(where, "basis", basis, f"one of {list(BASES)}")
    p = model.p
    if basis == "additive" or task is None or task.spec.op in ADDITIVE_OPS:
        return additive_basis(p)
    try:
        group_name_of(task.spec.op, task.spec.p)
    except SpecError as exc:
        raise SpecError(
            where,
            "task",
            f"{task.spec.op} mod {task.spec.p}",
            "a task on a group (its Fourier basis is the group's irreps)",
            str(exc),  # names the operation and the alternative, basis='additive'
        ) from exc
    return group_basis(group_of(task))
