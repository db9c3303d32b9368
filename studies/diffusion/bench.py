"""Diffusion and distillation, measured side by side in one run.

1. The copy fraction of 10k samples against 5k training points (d = 8): `probes.samples.copy_fraction`
   (chunked cdist + topk on the device) against a NumPy loop over samples (one distance row, a
   partition for the two nearest, per sample). Both are checked to agree.
2. Teacher training steps per second (EDM loss, MLP 128 x 3, batch 256) and consistency-distillation
   steps per second (two teacher passes for the Heun step, the EMA target, the student) on this device.

Run: python -m studies.diffusion.bench [--device cpu|cuda] [--threads N] [--steps 300] [--json PATH]
(--points N: N training points and 2N samples in 1, for a quick check.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from interp.device import resolve_device
from interp.files import atomic_write_json
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


def bench_copy_fraction(device: torch.device, repeats: int, points: int = 5000) -> dict:
    train = gaussian_mixture(points, 8, seed=0)
    copies = 3 * points // 5
    samples = torch.cat(  # 2 * points (10k): 30% near-copies, 70% fresh
        [train[:copies] + 0.01 * torch.randn(copies, 8), gaussian_mixture(2 * points - copies, 8, seed=1)]
    )
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
    print(
        f"copy fraction, {2 * points / 1000:g}k samples x {points / 1000:g}k training points "
        f"(f_mem {res.fraction:.4f}, both agree):"
    )
    print(f"  batched ({device}) {best:.3f} s   NumPy loop {loop:.3f} s   ratio {loop / best:.1f}x")
    return {
        "samples": 2 * points,
        "train_points": points,
        "f_mem": res.fraction,
        "batched_s": best,
        "numpy_loop_s": loop,
    }


def bench_steps(device: torch.device, steps: int) -> dict:
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
    return {"steps": steps, "teacher_steps_per_s": teacher_rate, "distillation_steps_per_s": cd_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=5000, help="training points of the copy-fraction timing")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {device}")
    figures = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    figures["copy_fraction"] = bench_copy_fraction(device, args.repeats, args.points)
    figures["training"] = bench_steps(device, args.steps)
    if args.json:
        atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
