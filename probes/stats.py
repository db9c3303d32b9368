"""Small statistics used by the probes: Otsu's threshold, Ashman's D, the Gini coefficient."""

from __future__ import annotations

import math

import torch

__all__ = [
    "gini",
    "gmm2",
    "otsu_split",
]


def otsu_split(values: torch.Tensor) -> tuple[float, float]:
    """Otsu's threshold of a 1-D sample, computed exactly over every split of the sorted values.

    Maximises the between-class variance w0 * w1 * (mu0 - mu1)^2 (Otsu 1979). Returns
    (threshold, ashman_d): the threshold is the midpoint between the two values at the best split,
    and Ashman's D = sqrt(2) |mu0 - mu1| / sqrt(s0^2 + s1^2) of the two classes measures how
    bimodal the sample is (D > 2: clean separation). Fewer than 2 distinct values -> (nan, 0).
    """
    x = values.detach().double().flatten().sort().values
    x = x[torch.isfinite(x)]
    n = x.numel()
    if n < 2 or x[0] == x[-1]:
        return float("nan"), 0.0
    c1 = torch.cumsum(x, 0)[:-1]  # sum of the lower class for splits after i = 1..n-1
    c2 = torch.cumsum(x * x, 0)[:-1]
    i = torch.arange(1, n, dtype=x.dtype, device=x.device)
    tot, tot2 = x.sum(), (x * x).sum()
    mu0, mu1 = c1 / i, (tot - c1) / (n - i)
    between = (i / n) * ((n - i) / n) * (mu0 - mu1) ** 2
    between = torch.where(x[1:] > x[:-1], between, torch.full_like(between, -1.0))  # split between equal values: no
    j = int(between.argmax())
    k = j + 1  # size of the lower class
    var0 = (c2[j] / k - mu0[j] ** 2).clamp_min(0)
    var1 = ((tot2 - c2[j]) / (n - k) - mu1[j] ** 2).clamp_min(0)
    denom = math.sqrt(float(var0 + var1))
    d = math.inf if denom == 0 else math.sqrt(2.0) * abs(float(mu1[j] - mu0[j])) / denom
    return float((x[j] + x[j + 1]) / 2), d


def gini(values: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Gini coefficient along `dim`: G = 2 sum_i i g_(i) / (n sum g) - (n + 1) / n over ascending
    g_(1) <= ... <= g_(n), i = 1..n (the form Nanda et al. use for Fourier norms). 0: all equal;
    (n-1)/n: one non-zero value."""
    g = values.double().movedim(dim, -1).sort(dim=-1).values
    n = g.shape[-1]
    i = torch.arange(1, n + 1, dtype=g.dtype, device=g.device)
    total = g.sum(-1).clamp_min(torch.finfo(g.dtype).tiny)
    return 2 * (g * i).sum(-1) / (n * total) - (n + 1) / n


def gmm2(x: torch.Tensor, iters: int = 200) -> dict:
    """Two-component 1-D Gaussian mixture fitted by EM (initialised from Otsu's split), with the BIC
    of one and of two components and Ashman's D of the fitted components.

    Returns dict(weights, means, stds (component 0 = lower mean), bic1, bic2, ashman_d, boundary):
    boundary is the point between the means where the two weighted densities are equal
    (the 2-component decision rule). BIC = k ln n - 2 ln L with k = 2 (one) and 5 (two components).
    """
    x = x.detach().double().flatten()
    x = x[torch.isfinite(x)]
    n = x.numel()
    nan = float("nan")
    if n < 4 or float(x.std()) == 0.0:
        return dict(
            weights=[nan, nan], means=[nan, nan], stds=[nan, nan], bic1=nan, bic2=nan, ashman_d=0.0, boundary=nan
        )
    var_floor = (1e-3 * float(x.std())) ** 2
    ll1 = torch.distributions.Normal(x.mean(), x.std(unbiased=False)).log_prob(x).sum()
    t, _ = otsu_split(x)
    low = x <= t
    resp = torch.stack([low, ~low], dim=1).double()  # [n, 2]
    for _ in range(iters):
        nk = resp.sum(0).clamp_min(1e-12)
        w = nk / n
        mu = (resp * x[:, None]).sum(0) / nk
        var = ((resp * (x[:, None] - mu) ** 2).sum(0) / nk).clamp_min(var_floor)
        logp = torch.log(w) - 0.5 * torch.log(2 * torch.pi * var) - 0.5 * (x[:, None] - mu) ** 2 / var  # [n, 2]
        resp = torch.softmax(logp, dim=1)
    ll2 = torch.logsumexp(logp, dim=1).sum()
    order = torch.argsort(mu)
    w, mu, var = w[order], mu[order], var[order]
    sd = var.sqrt()
    d = math.sqrt(2.0) * float(mu[1] - mu[0]) / float((var[0] + var[1]).sqrt())
    # equal weighted densities between the means: scan a fine grid (robust for unequal variances)
    grid = torch.linspace(float(mu[0]), float(mu[1]), 2001, dtype=torch.float64)
    dens = torch.log(w) - torch.log(sd) - 0.5 * (grid[:, None] - mu) ** 2 / var  # [g, 2]
    above = dens[:, 1] >= dens[:, 0]
    boundary = float(grid[int(above.nonzero()[0])]) if bool(above.any()) else float(mu[1])
    return dict(
        weights=w.tolist(),
        means=mu.tolist(),
        stds=sd.tolist(),
        bic1=float(2 * math.log(n) - 2 * ll1),
        bic2=float(5 * math.log(n) - 2 * ll2),
        ashman_d=d,
        boundary=boundary,
    )
