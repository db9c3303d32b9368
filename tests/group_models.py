"""Analytic networks on groups, whose Fourier structure is known exactly (for the probes' tests).

- `irrep_mlp(group, irrep)`: a quadratic MLP that computes 4 s^3 chi(x y z^-1) for one irrep rho of
  dimension d, with 2 d^3 neurons: neuron (i, j, k, +-) has u(x) = s rho(x)_ij, v(y) = +-s rho(y)_jk,
  w(z) = +-s rho(z)_ik. The cross term 2 u v w summed over i, j, k is 2 s^3 tr(rho(xy) rho(z)^T) =
  2 s^3 chi(x y z^-1) (rho orthogonal); the +- pairs cancel the u^2 and v^2 terms. Every neuron lies in
  rho's isotypic component: IPR 1, dominant irrep rho.
- `discrete_log_mlp(p)`: Gromov's analytic network for addition mod p - 1, relabelled through the
  discrete logarithm: x*y mod p on the nonzero residues (token 0 left at zero).
"""

from __future__ import annotations

import itertools

import torch

from interp import Task, TaskSpec
from interp.groups import group
from interp.models import MLPConfig, build_model
from probes.gromov import gromov_mlp


@torch.no_grad()
def irrep_mlp(group_name: str, irrep: str, scale: float = 2.0, frac_train: float = 0.5):
    """(model, task): the analytic MLP of `irrep` on the composition task "G:x*y"."""
    g = group(group_name)
    rho = g.irrep(irrep).matrices.float() * scale  # [|G|, d, d]
    d = rho.shape[-1]
    triples = list(itertools.product(range(d), repeat=3))
    width = 2 * len(triples)
    model = build_model(MLPConfig(p=g.order, width=width, act="quad"), seed=0)
    for m, (i, j, k) in enumerate(triples):
        for sign, row in ((1.0, m), (-1.0, m + len(triples))):
            model.U[row] = rho[:, i, j]
            model.V[row] = sign * rho[:, j, k]
            model.W[:, row] = sign * rho[:, i, k]
    task = Task(TaskSpec(op=f"{group_name}:x*y", p=g.order, frac_train=frac_train, seed=0))
    return model.eval(), task


@torch.no_grad()
def discrete_log_mlp(p: int, width: int = 120, op: str = "x*y"):
    """(model, task): Gromov's network on Z_(p-1) read through the discrete log base the smallest
    primitive root: u_m(a) = u'_m(log a) for a != 0 (0 for a = 0), and so on; x*y mod p on nonzero pairs."""
    z = group(f"Z{p}*")
    base = gromov_mlp(p - 1, width, seed=1, op="x+y" if op == "x*y" else "x-y")
    log = torch.empty(p - 1, dtype=torch.long)  # log[residue - 1]
    log[torch.as_tensor(z.cyclic_order)] = torch.arange(p - 1)
    model = build_model(MLPConfig(p=p, width=width, act="quad"), seed=0)
    model.U.zero_()
    model.V.zero_()
    model.W.zero_()
    model.U[:, 1:] = base.U[:, log]
    model.V[:, 1:] = base.V[:, log]
    model.W[1:] = base.W[log]
    return model.eval(), Task(TaskSpec(op=op, p=p, frac_train=0.5, seed=0))
