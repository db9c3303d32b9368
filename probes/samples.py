"""Memorisation measures for generated samples (docs/papers.md, B.2), batched on the device.

- `copy_fraction`: f_mem, the fraction of samples whose nearest training point is closer than 1/3 of
  the second-nearest (Yoon et al. 2023, Gu et al. 2023, Bonnaire et al. 2025), with a bootstrap
  standard error and the number of distinct training points hit.
- `frechet_distance`: the Frechet distance between Gaussian fits of two point clouds (FID without
  the Inception network: the quality measure for toy data).
- `nearest_distance_ratio`: the median nearest-training distance of the samples over that of fresh
  data (about 1 for generalisation, much below 1 for copying).
- `memorization_summary`: all of the above in one result.

Points are rows: arrays or tensors [n, ...] (images are flattened; distances are Euclidean in data
space). Nearest neighbours are found with chunked `torch.cdist` + `topk` and their distances then
recomputed exactly from the differences, so near-copies get exact d1 values, not the cancellation
noise of the |x|^2 + |y|^2 - 2 x.y formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from interp.device import resolve_device
from interp.errors import ShapeError, SpecError
from interp.results import Result

__all__ = [
    "COPY_THRESHOLD",
    "CopyFraction",
    "FrechetDistance",
    "NearestDistanceRatio",
    "NearestPoints",
    "SampleMemorization",
    "copy_fraction",
    "frechet_distance",
    "memorization_summary",
    "nearest_distance_ratio",
    "nearest_points",
]

COPY_THRESHOLD = 1.0 / 3.0
# entries of one [chunk, n_train] distance block: 16 MB on a CPU (small blocks stay near the cache),
# 256 MB on a GPU (fewer launches)
_CHUNK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 26}


def as_real_tensor(x, name: str) -> torch.Tensor:
    """`x` (array, list or tensor) as a real-valued tensor, or a ShapeError naming `name` and what it was."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name}: could not read a {type(x).__name__} as an array of numbers ({exc}).") from exc
    if x.is_complex() or x.dtype == torch.bool:
        raise ShapeError(f"{name} has dtype {x.dtype}: expected real numbers. Convert to float first.")
    return x


def as_points(x, name: str, *, device=None, min_rows: int = 1) -> torch.Tensor:
    """`x` ([n, ...] array or tensor) as a float32 [n, D] tensor on `device`; refuses NaN, inf and too few rows."""
    x = as_real_tensor(x, name)
    if x.ndim < 2:
        raise ShapeError(
            f"{name} has shape {tuple(x.shape)}: expected points as rows, [n, d] (vectors) or [n, ...] (images). "
            "Reshape one point to [1, d], or a flat list of scalars to [n, 1]."
        )
    dev = resolve_device(device) if device is not None else x.device
    x = x.detach().to(dev, torch.float32).reshape(x.shape[0], -1)  # [n, D]
    if x.shape[0] < min_rows:
        raise ShapeError(
            f"{name} has {x.shape[0]} point(s): at least {min_rows} are needed"
            + (
                " (the copy fraction compares the nearest with the second-nearest training point)"
                if min_rows == 2
                else ""
            )
            + ". Pass more points."
        )
    check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise a SpecError naming the rows of `x` that hold NaN or infinite values."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = torch.nonzero(bad.reshape(x.shape[0], -1).any(dim=1)).flatten()
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise SpecError(
            name,
            "values",
            f"{n_nan} NaN and {n_inf} infinite entries in {rows.numel()} row(s), first rows {rows[:5].tolist()}",
            "finite numbers only",
            "Drop or impute those rows before measuring or training.",
        )


def check_same_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise a ShapeError when two [n, D] point sets differ in D."""
    if a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"{name_a} has {a.shape[1]} values per point but {name_b} has {b.shape[1]}: distances need points of "
            f"one space. Pass {name_a} and {name_b} of the same data shape (images are flattened, so C*H*W must agree)."
        )


@dataclass(frozen=True)
class NearestPoints(Result):
    """The k nearest rows of a reference set for each query row, with exact Euclidean distances."""

    distances: torch.Tensor = field(repr=False)  # [n_query, k], ascending
    indices: torch.Tensor = field(repr=False)  # [n_query, k] long, rows of the reference set


def nearest_points(queries, reference, *, k: int = 2, device=None, chunk_size: int | None = None) -> NearestPoints:
    """The `k` nearest reference points of every query point (chunked cdist + topk, exact distances)."""
    q, r = _query_and_reference(queries, reference, k, device)
    return _nearest(q, r, k, chunk_size)


def _query_and_reference(queries, reference, k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    dev = resolve_device(device) if device is not None else None
    q = as_points(queries, "samples", device=dev)
    r = as_points(reference, "train_data", device=q.device, min_rows=k)
    check_same_dim(q, r, "samples", "train_data")
    return q, r


def _nearest(q: torch.Tensor, r: torch.Tensor, k: int, chunk_size: int | None) -> NearestPoints:
    chunk = chunk_size or max(1, _CHUNK_ELEMENTS.get(q.device.type, 1 << 22) // r.shape[0])
    dist, idx = [], []
    for start in range(0, q.shape[0], chunk):
        block = q[start : start + chunk]  # [c, D]
        approx = torch.cdist(block, r)  # [c, m]; fast, inexact for near-copies
        nearest = approx.topk(k, dim=1, largest=False).indices  # [c, k]
        exact = (block[:, None, :] - r[nearest]).norm(dim=-1)  # [c, k], exact
        order = exact.argsort(dim=1)
        dist.append(exact.gather(1, order))
        idx.append(nearest.gather(1, order))
    return NearestPoints(distances=torch.cat(dist), indices=torch.cat(idx))


@dataclass(frozen=True)
class CopyFraction(Result):
    """f_mem = fraction of samples with d1/d2 < threshold, its bootstrap standard error, and diagnostics."""

    fraction: float
    stderr: float  # bootstrap over samples (n_boot resamples)
    threshold: float
    n_samples: int
    n_train: int
    n_copied: int
    n_distinct_nearest: int  # distinct training points that are some sample's nearest neighbour
    n_distinct_copied: int  # ... among the copied samples only
    median_ratio: float  # median d1/d2 (fresh data in the data's intrinsic dimension: near 1)
    median_nearest_distance: float  # median d1
    n_boot: int
    ratios: torch.Tensor = field(repr=False)  # [n_samples] d1/d2
    nearest_index: torch.Tensor = field(repr=False)  # [n_samples] long, the nearest training point


def bootstrap_stderr(n_hits: int, n: int, *, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error of a fraction of 0/1 outcomes.

    Resampling n outcomes with replacement from n_hits ones and n - n_hits zeros gives a
    Binomial(n, n_hits / n) count, so drawing that count is the bootstrap itself, without the
    [n_boot, n] index matrix."""
    if n_boot < 2:
        return float("nan")
    counts = np.random.default_rng(seed).binomial(n, n_hits / n, size=n_boot)  # [n_boot]
    return float(np.std(counts / n, ddof=1))


def copy_fraction(
    samples,
    train_data,
    *,
    threshold: float = COPY_THRESHOLD,
    n_boot: int = 1000,
    seed: int = 0,
    device=None,
    chunk_size: int | None = None,
) -> CopyFraction:
    """Fraction of samples that copy a training point: nearest / second-nearest training distance < threshold."""
    if not 0.0 < threshold <= 1.0:
        raise SpecError("copy_fraction", "threshold", threshold, "a ratio in (0, 1]", "The standard value is 1/3.")
    q, r = _query_and_reference(samples, train_data, 2, device)
    near = _nearest(q, r, 2, chunk_size)
    d1, d2 = near.distances[:, 0], near.distances[:, 1]  # [n] each
    ratios = torch.where(d2 > 0, d1 / d2.clamp_min(1e-30), torch.ones_like(d1))  # duplicates in train: no copy claim
    copied = ratios < threshold  # [n] bool
    n, n_copied = ratios.numel(), int(copied.sum())
    nearest = near.indices[:, 0]
    return CopyFraction(
        fraction=n_copied / n,
        stderr=bootstrap_stderr(n_copied, n, n_boot=n_boot, seed=seed),
        threshold=float(threshold),
        n_samples=n,
        n_train=r.shape[0],
        n_copied=n_copied,
        n_distinct_nearest=int(nearest.unique().numel()),
        n_distinct_copied=int(nearest[copied].unique().numel()),
        median_ratio=float(ratios.quantile(0.5)),
        median_nearest_distance=float(d1.quantile(0.5)),
        n_boot=n_boot,
        ratios=ratios.cpu(),
        nearest_index=nearest.cpu(),
    )


@dataclass(frozen=True)
class FrechetDistance(Result):
    """Frechet distance between Gaussian fits: |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)."""

    distance: float
    mean_term: float  # |mu_a - mu_b|^2
    covariance_term: float  # the trace term
    n_samples: int
    n_reference: int
    dim: int

    def __float__(self) -> float:
        return self.distance


def _gaussian_fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(dim=0)  # [D]
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)  # [D], [D, D]


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(samples, reference, *, device=None) -> FrechetDistance:
    """Frechet distance between Gaussian fits of `samples` and `reference` (float64; FID's formula in data space)."""
    dev = resolve_device(device) if device is not None else None
    a = as_points(samples, "samples", device=dev, min_rows=2).double()
    b = as_points(reference, "reference", device=a.device, min_rows=2).double()
    check_same_dim(a, b, "samples", "reference")
    mu_a, s_a = _gaussian_fit(a)
    mu_b, s_b = _gaussian_fit(b)
    root_a = _psd_sqrt(s_a)
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()  # tr (S_a^1/2 S_b S_a^1/2)^1/2
    mean_term = float(((mu_a - mu_b) ** 2).sum())
    cov_term = float(torch.trace(s_a) + torch.trace(s_b) - 2 * cross)
    return FrechetDistance(
        distance=mean_term + cov_term,
        mean_term=mean_term,
        covariance_term=cov_term,
        n_samples=a.shape[0],
        n_reference=b.shape[0],
        dim=a.shape[1],
    )


@dataclass(frozen=True)
class NearestDistanceRatio(Result):
    """Median distance to the nearest training point, samples over fresh data (about 1: generalising; << 1: copying)."""

    ratio: float
    median_samples: float
    median_fresh: float


def nearest_distance_ratio(samples, train_data, fresh, *, device=None) -> NearestDistanceRatio:
    """Median nearest-training distance of `samples` divided by that of `fresh` draws from the data distribution."""
    d_s = nearest_points(samples, train_data, k=1, device=device).distances[:, 0]
    d_f = nearest_points(fresh, train_data, k=1, device=device).distances[:, 0]
    med_s, med_f = float(d_s.quantile(0.5)), float(d_f.quantile(0.5))  # the mean of the two middle values, as NumPy
    return NearestDistanceRatio(
        ratio=med_s / med_f if med_f > 0 else float("nan"), median_samples=med_s, median_fresh=med_f
    )


@dataclass(frozen=True)
class SampleMemorization(Result):
    """Every B.2 measure of one set of samples: copy fraction, Frechet distance to fresh data, nearest-distance ratio."""

    copy: CopyFraction
    frechet: FrechetDistance | None  # None when no fresh data was given
    nearest_ratio: NearestDistanceRatio | None


def memorization_summary(
    samples,
    train_data,
    fresh=None,
    *,
    threshold: float = COPY_THRESHOLD,
    n_boot: int = 1000,
    seed: int = 0,
    device=None,
) -> SampleMemorization:
    """Copy fraction, and with `fresh` data also the Frechet distance and the nearest-distance ratio."""
    copy = copy_fraction(samples, train_data, threshold=threshold, n_boot=n_boot, seed=seed, device=device)
    if fresh is None:
        return SampleMemorization(copy=copy, frechet=None, nearest_ratio=None)
    return SampleMemorization(
        copy=copy,
        frechet=frechet_distance(samples, fresh, device=device),
        nearest_ratio=nearest_distance_ratio(samples, train_data, fresh, device=device),
    )
