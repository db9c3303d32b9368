"""Batched probes vs a straightforward per-neuron loop, measured side by side in one run.

1. Classifying every neuron of a p = 113, d_mlp = 512 transformer (Nanda et al.'s size) from its
   activations over the 113^2 grid: 2-D spectrum, 3x3-block shares, IPR.
2. Frequency filtration of a width-4097 MLP at p = 113 (the coexistence paper's largest width):
   dominant frequency of each neuron and projection of u, v, w onto it.

Random-init models (speed does not depend on training). Both paths are checked to agree.
Run: python bench/bench_probes.py [--device cpu|cuda] [--repeats N]
"""

from __future__ import annotations

import argparse
import time

import torch

from interp.models import MLPConfig, TransformerConfig, build_model
from probes.extraction import filter_mlp
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
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)

    # 1. transformer neuron classification
    tf = build_model(TransformerConfig(p=113, d_model=128, n_heads=4, d_head=32, d_mlp=512), seed=0, device=dev)
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
    print(f"transformer p=113 d_mlp=512 ({dev}): activations over the grid {t_fwd:.3f}s (shared)")
    print(
        f"  spectra + block shares, batched fft2: {t_batched:.4f}s   per-neuron loop: {t_loop:.3f}s   "
        f"ratio {t_loop / t_batched:.0f}x   (agree: {agree})"
    )
    print(
        f"  whole classify_neurons (forward included): {t_cls:.3f}s vs forward + loop {t_fwd + t_loop:.3f}s   "
        f"ratio {(t_fwd + t_loop) / t_cls:.1f}x"
    )

    # 2. MLP frequency filtration
    mlp = build_model(MLPConfig(p=113, width=4097), seed=0, device=dev)
    t_b, (g, _, _, _, _, _) = timed(lambda: filter_mlp(mlp), args.repeats, dev)
    t_l, g_loop = timed(lambda: loop_filtration(mlp), 1, dev)
    g_vecs = torch.cat([g.neuron_in_weights(), g.neuron_out_weights()[:, None]], dim=1).detach()
    agree = bool(torch.allclose(g_vecs, g_loop, atol=1e-5))
    print(
        f"MLP p=113 width=4097 ({dev}): filtration (G and R built) batched {t_b:.4f}s   per-neuron loop {t_l:.3f}s   "
        f"ratio {t_l / t_b:.0f}x   (agree: {agree})"
    )


if __name__ == "__main__":
    main()
