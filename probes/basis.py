"""The real Fourier basis of Z_p and DFT helpers (re-exported by `probes.fourier`).

Frequencies are folded: frequency k in 0..p//2 stands for the pair (k, p - k) of the DFT, i.e. for
the span of {cos_k, sin_k} in the real basis; "power at k" is the squared norm of the projection
onto that span (Parseval: the powers of a vector sum to its squared norm).
"""

from __future__ import annotations

import math

import torch

from interp.errors import SpecError

__all__ = [
    "fourier_basis",
    "basis_frequencies",
    "basis_labels",
    "n_frequencies",
    "project_frequencies",
    "dft",
    "frequency_power",
    "ipr",
    "unit_max",
    "random_ipr",
]


def fourier_basis(p: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Real orthonormal Fourier basis of Z_p, [p, p], one basis vector per row.

    Row order: row 0 = constant 1/sqrt(p); rows 2k-1, 2k = cos(2 pi k x / p), sin(2 pi k x / p)
    (each normalised to unit norm) for k = 1..(p-1)//2; for even p the last row is cos(pi x) / sqrt(p).
    `basis_frequencies(p)` gives the frequency of each row and `basis_labels(p)` their names.
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise SpecError("fourier_basis", "p", p, "an int >= 2")
    x = torch.arange(p, dtype=torch.float64, device=device)
    k = torch.arange(1, (p - 1) // 2 + 1, dtype=torch.float64, device=device)
    angle = 2 * math.pi * k[:, None] * x[None, :] / p  # [K, p]
    pairs = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).reshape(-1, p)  # [2K, p]: cos_1, sin_1, ...
    rows = [torch.ones(1, p, dtype=torch.float64, device=device), pairs]
    if p % 2 == 0:
        rows.append(torch.cos(math.pi * x)[None])
    basis = torch.cat(rows, dim=0)
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype)


def basis_frequencies(p: int, device=None) -> torch.Tensor:
    """[p] long: the folded frequency of each row of `fourier_basis(p)` (0, 1, 1, 2, 2, ...)."""
    return torch.div(torch.arange(p, device=device) + 1, 2, rounding_mode="floor")


def basis_labels(p: int) -> list[str]:
    """Names of the rows of `fourier_basis(p)`: "const", "cos 1", "sin 1", ..."""
    names = ["const"]
    for k in range(1, (p - 1) // 2 + 1):
        names += [f"cos {k}", f"sin {k}"]
    if p % 2 == 0:
        names.append(f"cos {p // 2}")
    return names


def n_frequencies(p: int) -> int:
    """Number of folded frequencies 0..p//2 (the length of an rfft)."""
    return p // 2 + 1


def dft(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Complex DFT X_k = sum_n x_n exp(-2 pi i k n / p) for k = 0..p//2 (`torch.fft.rfft`)."""
    return torch.fft.rfft(x.float() if not x.is_floating_point() else x, dim=dim)


def _fold_weights(p: int, device, dtype) -> torch.Tensor:
    """Weight of |X_k|^2 / p in the folded power: 1 at k = 0 (and k = p/2), 2 elsewhere."""
    w = torch.full((n_frequencies(p),), 2.0, device=device, dtype=dtype)
    w[0] = 1.0
    if p % 2 == 0:
        w[-1] = 1.0
    return w


def frequency_power(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Folded power per frequency along `dim` (length p -> p//2 + 1): the squared norm of the
    projection of x onto span{cos_k, sin_k} (onto the constant for k = 0), = w_k |X_k|^2 / p with
    w_k = 2 except at k = 0 and k = p/2. Sums to ||x||^2."""
    p = x.shape[dim]
    X = dft(x, dim=dim)
    power = X.real**2 + X.imag**2
    w = _fold_weights(p, power.device, power.dtype) / p
    shape = [1] * power.ndim
    shape[dim] = -1
    return power * w.reshape(shape)


def ipr(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Inverse participation ratio of the DFT amplitudes along `dim` (Doshi et al. 2024):
    IPR(v) = (||v_hat||_4 / ||v_hat||_2)^4 = sum_k |X_k|^4 / (sum_k |X_k|^2)^2 with
    v_hat = |rfft(v)| (frequencies 0..p//2, the constant included). 1 for a pure cosine, about
    2 / (p/2) for Gaussian noise; a zero vector gets 0. Scale-free: each vector is divided by its
    largest entry first, so weight-decayed neurons of norm ~1e-20 do not underflow in float32."""
    X = dft(unit_max(x, dim), dim=dim)
    a2 = X.real**2 + X.imag**2  # |X_k|^2
    num = (a2 * a2).sum(dim)
    den = a2.sum(dim) ** 2
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def unit_max(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """x divided by max |x| along `dim` (zero vectors stay zero): spectra shares and IPR are
    scale-invariant, and this keeps tiny vectors out of float underflow."""
    x = x.float() if not x.is_floating_point() else x
    scale = x.abs().amax(dim=dim, keepdim=True)
    return x / torch.where(scale > 0, scale, torch.ones_like(scale))


def random_ipr(p: int) -> float:
    """Expected IPR of a Gaussian random vector of length p (the untrained baseline): with
    n_c complex and n_r real rfft bins, E|X|^4 = 2 (E|X|^2)^2 for complex and 3 (E x^2)^2 for real
    bins, so IPR ~ (2 n_c + 3 n_r) / (n_c + n_r)^2. About 0.042 at p = 97 (Doshi et al.: ~0.04)."""
    n_r = 1 + (p % 2 == 0)
    n_c = n_frequencies(p) - n_r
    return (2 * n_c + 3 * n_r) / (n_c + n_r) ** 2


def grid_cell_power(acts: torch.Tensor) -> torch.Tensor:
    """[p, p, n] activations over (a, b) -> [n, F, F] power of the centred activation in each cell
    {cos/sin_ka} x {cos/sin_kb} of folded frequencies (the 2-D real Fourier transform B A B^T,
    squared and summed within the cell). Computed with one batched fft2:
    cell(fa, fb) = sum over ka in {fa, p - fa}, kb in {fb, p - fb} of |X(ka, kb)|^2 / p^2."""
    p = acts.shape[0]
    a = acts.float().permute(2, 0, 1)  # [n, p, p]
    a = a - a.mean((1, 2), keepdim=True)
    X = torch.fft.fft2(a)  # [n, p, p]
    power = (X.real**2 + X.imag**2) / (p * p)
    k = torch.arange(p, device=acts.device)
    fold = torch.nn.functional.one_hot(torch.minimum(k, p - k), n_frequencies(p)).float()  # [p, F]
    return fold.T @ power @ fold  # [n, F, F]


def project_frequencies(x: torch.Tensor, keep: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthogonal projection of x along `dim` (length p) onto the span of the real Fourier modes of
    the kept folded frequencies: keep is a bool mask [F] or [..., F] broadcast against rfft(x).
    Implemented as irfft(rfft(x) * keep): for k in 1..(p-1)//2 that is the span{cos_k, sin_k}
    projection; k = 0 is the constant."""
    p = x.shape[dim]
    X = dft(x.movedim(dim, -1))
    out = torch.fft.irfft(X * keep.to(X.real.dtype), n=p, dim=-1)
    return out.movedim(-1, dim).to(x.dtype)
