"""The memorisation measures of generated samples (probes.samples) against direct NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from interp.errors import ShapeError, SpecError
from probes.samples import copy_fraction, frechet_distance, memorization_summary, nearest_distance_ratio, nearest_points


@pytest.fixture(scope="module")
def clouds():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 5))
    copies = train[rng.integers(0, 60, 40)] + 0.01 * rng.normal(size=(40, 5))  # near-copies
    samples = np.concatenate([copies, rng.normal(size=(160, 5))])
    return samples, train


def numpy_ratios(samples: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = np.sqrt(((samples[:, None, :] - train[None, :, :]) ** 2).sum(-1))  # [n, m]
    order = np.sort(dist, axis=1)
    return order[:, 0] / order[:, 1], dist.argmin(axis=1)


def test_copy_fraction_matches_a_direct_numpy_computation(clouds):
    samples, train = clouds
    ratios, nearest = numpy_ratios(samples, train)
    res = copy_fraction(samples, train)
    copied = ratios < 1 / 3
    assert res.fraction == pytest.approx(copied.mean())
    assert res.n_copied == copied.sum() and res.n_samples == 200 and res.n_train == 60
    assert np.allclose(res.ratios.numpy(), ratios, atol=1e-5)
    assert res.n_distinct_nearest == len(np.unique(nearest))
    assert res.n_distinct_copied == len(np.unique(nearest[copied]))
    assert res.median_ratio == pytest.approx(np.median(ratios), abs=1e-5)


def test_bootstrap_stderr_matches_resampling_the_samples(clouds):
    samples, train = clouds
    res = copy_fraction(samples, train, n_boot=1000, seed=3)
    copied = numpy_ratios(samples, train)[0] < 1 / 3
    rng = np.random.default_rng(1)
    boot = copied[rng.integers(0, len(copied), (1000, len(copied)))].mean(axis=1)  # the textbook bootstrap
    assert res.stderr == pytest.approx(boot.std(ddof=1), rel=0.15)
    f = copied.mean()
    assert res.stderr == pytest.approx(np.sqrt(f * (1 - f) / len(copied)), rel=0.15)


def test_nearest_points_is_the_same_in_chunks_and_exact_for_copies():
    train = torch.randn(50, 4, generator=torch.Generator().manual_seed(0)) * 100  # large norms: cdist's cancellation
    queries = train[:20] + 1e-4
    whole = nearest_points(queries, train, k=2)
    chunked = nearest_points(queries, train, k=2, chunk_size=7)
    assert torch.equal(whole.indices, chunked.indices)
    assert torch.equal(whole.indices[:, 0], torch.arange(20))
    exact = (queries - train[:20]).norm(dim=1)  # ~2e-4, where |x|^2 + |y|^2 - 2 x.y in float32 is all rounding
    assert torch.allclose(whole.distances[:, 0], exact, rtol=1e-6)


def test_frechet_distance_matches_the_formula_with_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(400, 6)) + 0.5
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    res = frechet_distance(a, b)
    assert res.distance == pytest.approx(expected, rel=1e-6)
    assert float(res) == res.distance and res.dim == 6
    assert frechet_distance(a, a).distance == pytest.approx(0.0, abs=1e-8)


def test_nearest_distance_ratio_is_medians_of_direct_distances(clouds):
    samples, train = clouds
    fresh = np.random.default_rng(5).normal(size=(100, 5))
    d_s = np.sqrt(((samples[:, None] - train[None]) ** 2).sum(-1)).min(1)
    d_f = np.sqrt(((fresh[:, None] - train[None]) ** 2).sum(-1)).min(1)
    res = nearest_distance_ratio(samples, train, fresh)
    assert res.ratio == pytest.approx(np.median(d_s) / np.median(d_f), rel=1e-5)
    summary = memorization_summary(samples, train, fresh)
    assert summary.copy.fraction == copy_fraction(samples, train).fraction
    assert summary.to_dict()["frechet"]["distance"] == pytest.approx(frechet_distance(samples, fresh).distance)


def test_images_are_compared_as_flat_vectors():
    train = torch.randn(10, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    res = copy_fraction(train[:3].clone(), train)
    assert res.fraction == 1.0 and res.n_distinct_copied == 3


def test_data_with_nans_is_refused_with_the_rows_named():
    train = np.random.default_rng(0).normal(size=(10, 3))
    train[4, 1] = np.nan
    with pytest.raises(SpecError, match=r"NaN.*first rows \[4\].*Drop or impute"):
        copy_fraction(np.zeros((5, 3)), train)
    with pytest.raises(SpecError, match="infinite"):
        frechet_distance(np.full((5, 3), np.inf), np.zeros((5, 3)))


def test_fewer_than_two_training_points_is_refused():
    with pytest.raises(ShapeError, match="1 point.*second-nearest"):
        copy_fraction(np.zeros((5, 3)), np.zeros((1, 3)))


def test_mismatched_dimensions_are_refused():
    with pytest.raises(ShapeError, match="samples has 4 values per point but train_data has 3"):
        copy_fraction(np.zeros((5, 4)), np.zeros((10, 3)))
    with pytest.raises(ShapeError, match="expected points as rows"):
        copy_fraction(np.zeros(5), np.zeros((10, 3)))
    with pytest.raises(SpecError, match="threshold"):
        copy_fraction(np.zeros((5, 3)), np.ones((10, 3)), threshold=0.0)
