"""Diffusion and distillation, measured side by side in one run.

1. The copy fraction of 10k samples against 5k training points (d = 8): `probes.samples.copy_fraction`
   (chunked cdist + topk on the device) against a NumPy loop over samples (one distance row, a
   partition for the two nearest, per sample). Both are checked to agree.
2. Teacher training steps per second (EDM loss, MLP 128 x 3, batch 256) and consistency-distillation
   steps per second (two teacher passes for the Heun step, the EMA target, the student) on this device.

Run: python -m studies.diffusion.bench [--device cpu|cuda] [--threads N] [--steps 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from interp.device import resolve_device
from probes.samples import copy_fraction
from studies.diffusion import DenoiserConfig, consistency_distill, gaussian_mixture, train_denoiser


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def numpy_copy_fraction(samples: np.ndarray, train: np.ndarray, threshold: float = 1 / 3) -> float:
    """The straightforward version: one row of distances per sample."""
    copied = 0
    for x in samples:
        d = np.sqrt(((train - x) ** 2).sum(axis=1))  # [m]
        d1, d2 = np.partition(d, 1)[:2]
        copied += d1 / d2 < threshold
    return copied / len(samples)


def bench_copy_fraction(device: torch.device, repeats: int) -> None:
    train = gaussian_mixture(5000, 8, seed=0)
    samples = torch.cat([train[:3000] + 0.01 * torch.randn(3000, 8), gaussian_mixture(7000, 8, seed=1)])  # 10k
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        res = copy_fraction(samples, train, device=device)
        sync(device)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    ref = numpy_copy_fraction(samples.numpy(), train.numpy())
    loop = time.perf_counter() - t
    assert abs(ref - res.fraction) < 1e-9, (ref, res.fraction)
    print(f"copy fraction, 10k samples x 5k training points (f_mem {res.fraction:.4f}, both agree):")
    print(f"  batched ({device}) {best:.3f} s   NumPy loop {loop:.3f} s   ratio {loop / best:.1f}x")


def bench_steps(device: torch.device, steps: int) -> None:
    data = gaussian_mixture(64, 8, seed=0)
    train_denoiser(data, DenoiserConfig(), steps=20, lr=1e-3, seed=0, device=device)  # warm-up
    sync(device)
    t = time.perf_counter()
    teacher = train_denoiser(data, DenoiserConfig(), steps=steps, lr=1e-3, seed=0, device=device)
    sync(device)
    teacher_rate = steps / (time.perf_counter() - t)
    t = time.perf_counter()
    consistency_distill(teacher, data, steps=steps, lr=1e-4, seed=0, device=device)
    sync(device)
    cd_rate = steps / (time.perf_counter() - t)
    print(f"steps per second on {device} (MLP 128 x 3, batch 256, d = 8):")
    print(
        f"  teacher (EDM loss) {teacher_rate:.0f}/s   consistency distillation {cd_rate:.0f}/s   ratio {teacher_rate / cd_rate:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {device}")
    bench_copy_fraction(device, args.repeats)
    bench_steps(device, args.steps)


if __name__ == "__main__":
    main()
