"""Rules-and-facts learners, measured side by side in one run.

(1) Kernel ridge with the ReLU arc-cosine kernel and (2) random-feature ridge (ReLU, p = n / 2, primal):
    studies.raf's torch path (float64, on --device) against a plain NumPy / SciPy float64 reference of
    the same maths (Gram matrix, Cholesky solve, test predictions), at n = 4096 and 16384 training
    samples (d = --dim, n_test = 4096, epsilon = 0.2); predictions checked to agree.
(3) Two-layer networks (width --width, d = 100, alphas 1, 2, 4 x --seeds seeds, full-batch Adam for
    --steps steps): `train_two_layer_sweep` (seeds batched; on cuda all alphas in one padded run, on a
    CPU one run per alpha) against `train_two_layer` called once per (alpha, seed), model-steps per second.

Each timing is the best of --repeats runs (the NumPy reference and the per-model loop run once).

    python -m studies.raf.bench --device cpu                  # this CPU (minutes at n = 16384)
    python -m studies.raf.bench --device cuda --sizes 4096 16384 32768
    python -m studies.raf.bench --device cuda --json out/raf.json   # also every figure as JSON
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--dim", type=int, default=1000, help="input dimension d")
    ap.add_argument("--threads", type=int, default=None, help="torch and BLAS threads (default: the libraries')")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--skip", nargs="*", default=[], choices=["kernel", "rf", "two_layer"])
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    return ap.parse_args()


ARGS = parse()
if ARGS.threads:  # BLAS reads these when NumPy is first imported
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402

from interp.train_config import TrainConfig  # noqa: E402
from studies.raf import RAFSpec, make_data, make_kernel, train_two_layer, train_two_layer_sweep  # noqa: E402
from studies.raf.learners import RandomFeatures, fit_features, fit_kernel  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_of(fn, repeats: int, device: str):
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best, out


# ----- the NumPy float64 references ----------------------------------------------------------------
def numpy_arccos_gram(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    d = x1.shape[1]
    n1, n2 = np.linalg.norm(x1, axis=1) / np.sqrt(d), np.linalg.norm(x2, axis=1) / np.sqrt(d)
    norms = np.outer(n1, n2)
    cos = np.clip(x1 @ x2.T / d / norms, -1.0, 1.0)
    theta = np.arccos(cos)
    return norms * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)


def numpy_kernel_ridge(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, lam: float) -> np.ndarray:
    K = numpy_arccos_gram(x, x)
    K[np.diag_indices_from(K)] += lam
    dual = scipy.linalg.cho_solve(scipy.linalg.cho_factor(K, lower=True), y)
    return numpy_arccos_gram(x_test, x) @ dual


def numpy_rf_ridge(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, F: np.ndarray, lam: float) -> np.ndarray:
    p, d = F.shape
    z = np.maximum(x @ F.T / np.sqrt(d), 0) / np.sqrt(p)
    A = z.T @ z
    A[np.diag_indices_from(A)] += lam
    a = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, lower=True), z.T @ y)
    return np.maximum(x_test @ F.T / np.sqrt(d), 0) / np.sqrt(p) @ a


# ----- (1) and (2) ----------------------------------------------------------------------------------
def bench_closed_form(n: int, args) -> dict:
    spec = RAFSpec(alpha=n / args.dim, epsilon=0.2, d=args.dim, n_test=4096)
    data = make_data(spec, 1, args.device)
    x, y, xt = (t[0].cpu().numpy() for t in (data.x_train, data.y_train, data.x_test))
    lam = 1e-3
    figures = {"n": n, "d": args.dim}
    if "kernel" not in args.skip:
        kernel = make_kernel("arccos")
        t_ours, fit = best_of(lambda: fit_kernel(data, kernel, lam, "square"), args.repeats, args.device)
        t_ref, ref = best_of(lambda: numpy_kernel_ridge(x, y, xt, lam), 1, args.device)
        err = np.abs(fit.h_test[0].cpu().numpy() - ref).max()
        print(
            f"kernel ridge (arc-cosine) n={n} d={args.dim}: studies.raf ({args.device}) {t_ours:.2f}s   "
            f"NumPy reference {t_ref:.2f}s   ratio {t_ref / t_ours:.2f}x   (max |diff| {err:.1e})",
            flush=True,
        )
        figures["kernel_ridge"] = {"ours_s": t_ours, "numpy_s": t_ref, "ratio": t_ref / t_ours, "max_diff": float(err)}
        del fit, ref
    if "rf" not in args.skip:
        features = RandomFeatures(data, n // 2, "relu")
        F = features.F[0].cpu().numpy()
        t_ours, fit = best_of(lambda: fit_features(data, features, lam, "square"), args.repeats, args.device)
        t_ref, ref = best_of(lambda: numpy_rf_ridge(x, y, xt, F, lam), 1, args.device)
        err = np.abs(fit.h_test[0].cpu().numpy() - ref).max()
        print(
            f"random features ridge n={n} p={n // 2} d={args.dim}: studies.raf ({args.device}) {t_ours:.2f}s   "
            f"NumPy reference {t_ref:.2f}s   ratio {t_ref / t_ours:.2f}x   (max |diff| {err:.1e})",
            flush=True,
        )
        figures["random_features"] = {"p": n // 2, "ours_s": t_ours, "numpy_s": t_ref, "ratio": t_ref / t_ours}
        figures["random_features"]["max_diff"] = float(err)
    return figures


# ----- (3) ----------------------------------------------------------------------------------------
def bench_two_layer(args) -> dict:
    cfg = TrainConfig(
        steps=args.steps, lr=1e-3, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0,
        eval_every=args.steps,
    )  # fmt: skip
    kappa = args.width / 100
    specs = [RAFSpec(a, 0.2, d=100, n_test=2000) for a in (1.0, 2.0, 4.0)]
    jobs = [(s, kappa) for s in specs]
    pad = args.device.startswith("cuda")  # one padded run on a GPU, one run per alpha on a CPU
    sweep = lambda: train_two_layer_sweep(jobs, seeds=args.seeds, lam=0.0, config=cfg, device=args.device, pad=pad)  # noqa: E731
    datas = [make_data(s, args.seeds, args.device) for s in specs]
    one_by_one = lambda: [  # noqa: E731
        train_two_layer(dt.select(i), kappa, lam=0.0, config=cfg) for dt in datas for i in range(args.seeds)
    ]
    t_batched, nets = best_of(sweep, args.repeats, args.device)
    t_loop, singles = best_of(one_by_one, 1, args.device)
    M = len(specs) * args.seeds
    diff = max(
        (nets[j].W[i] - singles[j * args.seeds + i].W[0]).abs().max().item()
        for j in range(len(specs))
        for i in range(args.seeds)
    )
    print(
        f"two-layer sweep, {M} networks (alpha 1/2/4 x {args.seeds} seeds, width {args.width}, d=100, "
        f"{args.steps} Adam steps): batched {M * args.steps / t_batched:,.0f} model-steps/s   "
        f"one at a time {M * args.steps / t_loop:,.0f} model-steps/s   ratio {t_loop / t_batched:.2f}x   "
        f"(max |W batched - W alone| {diff:.1e}: float32 rounding amplified by Adam; the tests check float64 equality)",
        flush=True,
    )
    return {
        "networks": M,
        "width": args.width,
        "steps": args.steps,
        "batched_model_steps_per_s": M * args.steps / t_batched,
        "one_at_a_time_model_steps_per_s": M * args.steps / t_loop,
        "ratio": t_loop / t_batched,
        "max_weight_diff": diff,
    }


def main() -> None:
    args = ARGS
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, device {args.device}, torch threads {torch.get_num_threads()}"
    )
    if not args.device.startswith("cuda"):
        print("GPU figures: not measured (no --device cuda); the ratios below compare CPU with CPU.")
    figures = {"device": args.device, "torch": torch.__version__, "numpy": np.__version__, "closed_form": []}
    for n in args.sizes:
        figures["closed_form"].append(bench_closed_form(n, args))
    if "two_layer" not in args.skip:
        figures["two_layer"] = bench_two_layer(args)
    if args.json:
        from interp.files import atomic_write_json

        atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
