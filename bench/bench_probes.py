"""Batched probes vs a straightforward per-neuron loop, measured side by side in one run.

1. Classifying every neuron of a p = 113, d_mlp = 512 transformer (Nanda et al.'s size) from its
   activations over the 113^2 grid: 2-D spectrum, 3x3-block shares, IPR.
2. Frequency filtration of a width-4097 MLP at p = 113 (the coexistence paper's largest width):
   dominant frequency of each neuron and projection of u, v, w onto it.

Random-init models (speed does not depend on training). Both paths are checked to agree.
Run: python bench/bench_probes.py [--device cpu|cuda] [--repeats N] [--json PATH]
(--p, --d-mlp and --width shrink the models, for a quick check.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from circuits.filtration import filter_mlp
from interp.files import atomic_write_json
from interp.models import MLPConfig, TransformerConfig, build_model
from probes.fourier import (
    basis_frequencies,
    classify_neurons,
    fourier_basis,
    grid_cell_power,
    n_frequencies,
    neuron_activation_grid,
    neuron_spectra,
)


def timed(fn, repeats: int, device) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


# ----- the straightforward versions ------------------------------------------------------------
def loop_block_shares(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per neuron: centre, B A B^T, then for each frequency the 3x3-block share (Python loops)."""
    p, _, n = acts.shape
    basis = fourier_basis(p, device=acts.device)
    K = (p - 1) // 2
    shares, dom = torch.zeros(n), torch.zeros(n, dtype=torch.long)
    for m in range(n):
        a = acts[:, :, m] - acts[:, :, m].mean()
        coef2 = (basis @ a @ basis.T) ** 2
        total = coef2.sum()
        best, best_k = -1.0, 0
        for k in range(1, K + 1):
            idx = [0, 2 * k - 1, 2 * k]
            s = float(coef2[idx][:, idx].sum() / total) if total > 0 else 0.0
            if s > best:
                best, best_k = s, k
        shares[m], dom[m] = best, best_k
    return shares, dom


def loop_filtration(model) -> torch.Tensor:
    """Per neuron: basis coefficients of u, v, w, dominant frequency, projection (Python loop)."""
    p = model.p
    basis = fourier_basis(p, device=model.U.device)
    freq = basis_frequencies(p, device=model.U.device)
    vecs = torch.cat([model.neuron_in_weights(), model.neuron_out_weights()[:, None]], dim=1).detach()
    out = torch.empty_like(vecs)
    for m in range(vecs.shape[0]):
        coef = vecs[m] @ basis.T  # [3, p]
        power = torch.zeros(3, n_frequencies(p), device=vecs.device).index_add_(1, freq, coef**2)
        share = (power / power.sum(1, keepdim=True)).mean(0)
        k = int(share[1:].argmax()) + 1
        rows = basis[freq == k]
        out[m] = (coef[:, freq == k]) @ rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--p", type=int, default=113)
    ap.add_argument("--d-mlp", type=int, default=512, help="the transformer's neurons")
    ap.add_argument("--width", type=int, default=4097, help="the MLP's neurons")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)

    # 1. transformer neuron classification
    p = args.p
    tf = build_model(TransformerConfig(p=p, d_model=128, n_heads=4, d_head=32, d_mlp=args.d_mlp), seed=0, device=dev)
    t_fwd, acts = timed(lambda: neuron_activation_grid(tf), args.repeats, dev)
    t_batched, cell = timed(lambda: grid_cell_power(acts), args.repeats, dev)
    t_loop, (shares, dom) = timed(lambda: loop_block_shares(acts), 1, dev)
    spec = neuron_spectra(tf)
    # the two argmaxes may pick different frequencies only on exact ties (flat spectra)
    at_loop_choice = spec.power.gather(1, dom[:, None])[:, 0]
    agree = bool(torch.allclose(spec.dominant_frac, shares, atol=1e-5)) and bool(
        torch.allclose(at_loop_choice, shares, atol=1e-5)
    )
    t_cls, _ = timed(lambda: classify_neurons(tf), args.repeats, dev)
    print(f"transformer p={p} d_mlp={args.d_mlp} ({dev}): activations over the grid {t_fwd:.3f}s (shared)")
    print(
        f"  spectra + block shares, batched fft2: {t_batched:.4f}s   per-neuron loop: {t_loop:.3f}s   "
        f"ratio {t_loop / t_batched:.0f}x   (agree: {agree})"
    )
    print(
        f"  whole classify_neurons (forward included): {t_cls:.3f}s vs forward + loop {t_fwd + t_loop:.3f}s   "
        f"ratio {(t_fwd + t_loop) / t_cls:.1f}x"
    )
    transformer = dict(p=p, d_mlp=args.d_mlp, grid_forward_s=t_fwd, batched_s=t_batched, loop_s=t_loop)
    transformer.update(ratio=t_loop / t_batched, agree=agree, classify_s=t_cls, classify_ratio=(t_fwd + t_loop) / t_cls)
    figures = {"device": str(dev), "torch": torch.__version__, "transformer": transformer}

    # 2. MLP frequency filtration
    mlp = build_model(MLPConfig(p=p, width=args.width), seed=0, device=dev)
    t_b, (g, _, _, _, _, _) = timed(lambda: filter_mlp(mlp), args.repeats, dev)
    t_l, g_loop = timed(lambda: loop_filtration(mlp), 1, dev)
    g_vecs = torch.cat([g.neuron_in_weights(), g.neuron_out_weights()[:, None]], dim=1).detach()
    agree = bool(torch.allclose(g_vecs, g_loop, atol=1e-5))
    print(
        f"MLP p={p} width={args.width} ({dev}): filtration (G and R built) batched {t_b:.4f}s   per-neuron loop {t_l:.3f}s   "
        f"ratio {t_l / t_b:.0f}x   (agree: {agree})"
    )
    figures["filtration"] = {
        "p": p,
        "width": args.width,
        "batched_s": t_b,
        "loop_s": t_l,
        "ratio": t_l / t_b,
        "agree": agree,
    }
    if args.json:
        atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
