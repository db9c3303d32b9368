"""Training data for the diffusion studies: Bonnaire et al.'s Gaussian mixture, user arrays, image files
(`load_images`: .npy / .npz, read without unpickling), sklearn's digits.

Data are float32 tensors [n, *shape]: vectors [n, d] or images [n, C, H, W] ([n, H, W] is read as one
channel). Nothing is downloaded.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from interp.device import resolve_device
from interp.errors import ShapeError, SpecError
from probes.samples import as_real_tensor, check_finite
from studies.diffusion.checks import check_real, check_seed

IMAGE_CHANNELS = (1, 3)  # grayscale or RGB
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B for grayscale=True


def gaussian_mixture(n: int, d: int = 8, seed: int = 0, *, mean: float = 1.0, std: float = 1.0) -> torch.Tensor:
    """n points [n, d] of the two-component mixture 1/2 N(+mean 1, std^2 I) + 1/2 N(-mean 1, std^2 I) (docs/papers.md, B.5)."""
    for name, v in (("n", n), ("d", d)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SpecError("gaussian_mixture", name, v, "a positive int")
    mean = check_real("gaussian_mixture", "mean", mean)
    std = check_real("gaussian_mixture", "std", std, positive=True)
    g = torch.Generator().manual_seed(check_seed("gaussian_mixture", seed))
    signs = torch.randint(0, 2, (n, 1), generator=g).float() * 2 - 1  # [n, 1], +-1
    return signs * mean + std * torch.randn(n, d, generator=g)  # [n, d]


def as_training_data(data, *, name: str = "data", device=None, min_points: int = 2) -> torch.Tensor:
    """`data` as a float32 tensor [n, *shape] on `device`: vectors [n, d], images [n, H, W] -> [n, 1, H, W] or [n, C, H, W]."""
    data = as_real_tensor(data, name)
    if data.ndim not in (2, 3, 4):
        raise ShapeError(
            f"{name} has shape {tuple(data.shape)}: expected vectors [n, d] or images [n, H, W] / [n, C, H, W]. "
            "Stack the points along the first axis."
        )
    dev = resolve_device(device) if device is not None else data.device
    data = data.detach().to(dev, torch.float32)
    if data.ndim == 3:
        data = data[:, None]  # [n, 1, H, W]
    if data.shape[0] < min_points:
        raise ShapeError(
            f"{name} has {data.shape[0]} point(s): at least {min_points} are needed (a diffusion model of one point "
            "is that point, and the copy fraction needs a second-nearest training point). Pass more points."
        )
    check_finite(data, name)
    return data.contiguous()


def measured_sigma_data(data: torch.Tensor) -> float:
    """EDM's sigma_data for `data` [n, ...]: the root-mean-square per-coordinate standard deviation."""
    return float(data.reshape(data.shape[0], -1).var(dim=0).mean().sqrt().clamp_min(1e-3))


def digits(n: int | None = None, *, seed: int = 0) -> torch.Tensor:
    """sklearn's bundled 8x8 digits (1797 images, shipped with scikit-learn: no download) as [n, 1, 8, 8] in [-1, 1].

    `n` picks a random subset (seeded); None keeps all."""
    images = torch.as_tensor(load_digits().images, dtype=torch.float32) / 8.0 - 1.0  # [1797, 8, 8], 0..16 -> -1..1
    if n is not None:
        images = images[subset_index(images.shape[0], n, seed, "digits")]
    return images[:, None]  # [n, 1, 8, 8]


def subset_index(total: int, n: int, seed: int, where: str) -> torch.Tensor:
    """A seeded random choice of n of `total` rows ([n] long, in random order)."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= total:
        raise SpecError(where, "n", n, f"an int in [1, {total}] (the number of images) or None")
    return torch.randperm(total, generator=torch.Generator().manual_seed(int(seed)))[:n]


def load_images(
    path, *, n: int | None = None, seed: int = 0, grayscale: bool = False, key: str | None = None
) -> torch.Tensor:
    """Images from a local .npy / .npz file as a float32 tensor [n, C, H, W] scaled to [-1, 1].

    The array may be [N, H, W], [N, H, W, C] or [N, C, H, W] with C = 1 or 3 (a 4-D array whose axis 1
    has 1 or 3 entries is read as [N, C, H, W]); uint8 or other integers in 0..255, or floats in [0, 1],
    [-1, 1] or [0, 255]. `n` picks a seeded random subset; `grayscale` turns RGB into luminance (BT.601);
    `key` names the array inside an .npz holding several. Nothing is unpickled (allow_pickle=False)."""
    path = Path(path)
    array = _read_array(path, key)
    images = _channels_first(array, path)  # [N, C, H, W], still the file's dtype
    low, high = _pixel_range(images, path)
    if n is not None:
        images = images[subset_index(images.shape[0], n, seed, "load_images").numpy()]
    x = torch.from_numpy(np.array(images, dtype=np.float32))  # [n, C, H, W], a writable copy
    x = 2 * (x - low) / (high - low) - 1  # [low, high] -> [-1, 1]
    if grayscale and x.shape[1] == 3:
        x = torch.einsum("c,nchw->nhw", torch.tensor(LUMA), x)[:, None]  # [n, 1, H, W]
    return x.contiguous()


def _read_array(path: Path, key: str | None) -> np.ndarray:
    if not path.is_file():
        raise SpecError(
            "load_images", "path", str(path), "an existing .npy or .npz file",
            "Check the path; save images with numpy.save('images.npy', array) (the machines cannot download data sets).",
        )  # fmt: skip
    if path.suffix not in (".npy", ".npz"):
        raise SpecError("load_images", "path", str(path), "a .npy or .npz file", "Convert it with numpy.save.")
    try:
        loaded = np.load(path, mmap_mode="r" if path.suffix == ".npy" else None, allow_pickle=False)
        if path.suffix == ".npy":
            return loaded
        with loaded:
            return loaded[_npz_key(loaded.files, key, path)]
    except SpecError:  # a missing key: already says what to do
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SpecError(
            "load_images", "path", str(path), "a .npy / .npz array numpy reads without unpickling",
            f"numpy said: {type(exc).__name__}: {exc}. Re-save the images as a plain numeric array with numpy.save.",
        ) from exc  # fmt: skip


def _npz_key(files: Sequence[str], key: str | None, path: Path) -> str:
    if key is None and len(files) == 1:
        return files[0]
    if key not in files:
        raise SpecError(
            "load_images", "key", key, f"one of the arrays in {path.name}: {list(files)}", "Pass key='NAME'."
        )
    return key


def _channels_first(array: np.ndarray, path: Path) -> np.ndarray:
    shape = tuple(array.shape)
    if array.ndim == 3:
        array = array[:, None]  # [N, 1, H, W]
    elif array.ndim == 4 and shape[3] in IMAGE_CHANNELS and shape[1] not in IMAGE_CHANNELS:
        array = array.transpose(0, 3, 1, 2)  # [N, H, W, C] -> [N, C, H, W]
    if array.ndim != 4 or array.shape[1] not in IMAGE_CHANNELS or 0 in array.shape:
        raise ShapeError(
            f"{path} holds an array of shape {shape}: expected images [N, H, W], [N, H, W, C] or [N, C, H, W] "
            f"with C in {IMAGE_CHANNELS} (grayscale or RGB) and N, H, W >= 1. Drop an alpha channel, or reshape "
            "flattened images to [N, H, W] before numpy.save."
        )
    return array


def _pixel_range(images: np.ndarray, path: Path) -> tuple[float, float]:
    """The value range the file's pixels live in: (0, 255) for integers, (0, 1), (-1, 1) or (0, 255) for floats."""
    is_float = np.issubdtype(images.dtype, np.floating)
    if not (is_float or np.issubdtype(images.dtype, np.integer)):  # bool is neither
        raise SpecError(
            "load_images", "dtype", str(images.dtype), "uint8 (or other integers) or floats", f"Convert {path}."
        )
    if is_float and not np.isfinite(images).all():
        check_finite(torch.from_numpy(np.array(images, dtype=np.float32)), f"load_images({path.name})")
    low, high = float(images.min()), float(images.max())
    if not is_float or high > 1:
        if low < 0 or high > 255:
            raise SpecError(
                "load_images", "values", f"[{low:g}, {high:g}] in {path}", "pixels in 0..255 (integers or floats)",
                "Rescale the images to uint8 0..255 or floats in [0, 1] or [-1, 1].",
            )  # fmt: skip
        return 0.0, 255.0
    if low < -1:
        raise SpecError(
            "load_images", "values", f"[{low:g}, {high:g}] in {path}", "floats in [0, 1], [-1, 1] or [0, 255]",
            "Rescale the images (for example to [-1, 1]).",
        )  # fmt: skip
    return (0.0, 1.0) if low >= 0 else (-1.0, 1.0)


def held_out_split(
    data: torch.Tensor, ns: Sequence[int], *, n_reference: int, n_held_out: int = 0, seed: int = 0
) -> tuple[dict[int, torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """Nested training subsets {n: [n, ...]} of one data set [N, ...], and disjoint held-out sets: a reference
    [n_reference, ...] (for the Frechet distance) and, when n_held_out > 0, more held-out points [n_held_out, ...].

    One seeded permutation: the training subsets are its first n rows, the held-out sets its last rows."""
    total, largest = data.shape[0], max(ns)
    if min(ns) < 2 or largest + n_reference + n_held_out > total or n_reference < 2 or n_held_out < 0:
        raise SpecError(
            "held_out_split", "ns", tuple(ns),
            f"sizes >= 2 with max(ns) + n_reference ({n_reference}) + n_held_out ({n_held_out}) <= {total} points, "
            "and n_reference >= 2", "Use smaller subsets or fewer held-out points, or pass a larger data set.",
        )  # fmt: skip
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(int(seed)))  # [N]
    reference = data[perm[total - n_reference :]]
    held_out = data[perm[total - n_reference - n_held_out : total - n_reference]] if n_held_out else None
    return {n: data[perm[:n]] for n in sorted(ns)}, reference, held_out
