"""Chughtai et al.'s measurements (`probes.representations.rep_metrics`) against their literal form, and
S6 within a laptop's memory.

1. S5, Chughtai et al.'s MLP size (width 128, |G| = 120, 14,400 pairs): `rep_metrics` against the
   definitions computed the literal way, one irrep at a time with the full pair-by-pair matrices (an
   orthonormal basis of the [|G|^2, d^2] coefficient functions by SVD, the [|G|^2, |G|] trace tensor,
   the projected hidden layer), as their code does. Both are checked to agree.
2. S6 (720 elements, irreps up to 16-d): building the group and its irreps, then `rep_metrics` of an MLP
   (width 128) and of Chughtai et al.'s transformer (d_model 128, 4 heads, d_mlp 512) over all 518,400
   pairs, with the process's peak resident memory. The literal way would hold a [518400, 720] trace
   tensor per irrep (3.0 GB in float64) and a [518400, 256] basis for the 16-d irrep (1.1 GB).

Random-init models (speed does not depend on training).
Run: python bench/bench_groups.py [--device cpu|cuda] [--skip-s6]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from interp import Task, TaskSpec
from interp.groups import group
from interp.models import MLPConfig, TransformerConfig, build_model
from probes.representations import rep_metrics


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: kilobytes


def literal(model, task) -> dict:
    """logit similarity, hidden_xy share and restricted / excluded loss per irrep, the literal way."""
    g = group(task.spec.op[:-4])
    n = g.order
    pairs = task.inputs
    labels = task.labels
    with torch.no_grad():
        logits, cache = model.run_with_cache(pairs)
        H = cache["hook_post"].double()
        L = logits.double()
    U = model.W.T.detach().double()  # [hidden, |G|]
    Hc = H - H.mean(0)
    Lc = L - L.mean(1, keepdim=True)
    table, inv = torch.as_tensor(g.table), torch.as_tensor(g.inverses)
    tr = task.train_idx
    out = {}
    for r in g.irreps:
        coef = r.matrices[labels].reshape(n * n, -1)  # [|G|^2, d^2]
        basis = torch.linalg.svd(coef, full_matrices=False)[0][:, : r.span_dim]
        T = r.character[table[labels][:, inv]]  # [|G|^2, |G|] trace tensor
        proj = basis @ (basis.T @ H)
        out[r.name] = {
            "logit_similarity": float(F.cosine_similarity(Lc.reshape(-1), T.reshape(-1), dim=0)),
            "hidden_xy": float((basis.T @ Hc).pow(2).sum() / Hc.pow(2).sum()),
            "restricted_loss": float(F.cross_entropy(proj @ U, labels)),
            "excluded_loss": float(F.cross_entropy(((H - proj) @ U)[tr], task.train_labels)),
        }
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-s6", action="store_true", help="only the S5 comparison")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)

    t_group, _ = timed(lambda: group("S5").irreps)
    task = Task(TaskSpec(op="S5:x*y", p=120, frac_train=0.5, seed=1))
    mlp = build_model(MLPConfig(p=120, width=128, act="relu"), seed=0).to(dev)
    t_ours, ours = timed(lambda: rep_metrics(mlp, task))
    t_ours2, ours = timed(lambda: rep_metrics(mlp, task))  # the group and its irreps cached
    t_lit, lit = timed(lambda: literal(mlp.cpu(), task))
    worst = max(abs(ours.irreps[k][m] - v) for k, d in lit.items() for m, v in d.items())
    print(f"S5 MLP (width 128, 14,400 pairs): S5 and its irreps built in {t_group:.2f}s")
    print(
        f"  rep_metrics (all 9 measures x 7 irreps, key irreps, totals): {t_ours:.2f}s first call, {t_ours2:.2f}s cached"
    )
    print(f"  literal per-irrep computation (4 of the measures): {t_lit:.2f}s   ratio {t_lit / t_ours2:.1f}x")
    print(f"  largest difference between the two: {worst:.2e}")
    if args.skip_s6:
        return
    t_group, g = timed(lambda: group("S6"))
    t_irreps, _ = timed(lambda: g.irreps)
    t_basis, _ = timed(lambda: g.basis)
    print(f"S6: table {t_group:.2f}s, 11 irreps (dims up to 16) {t_irreps:.2f}s, Fourier basis {t_basis:.2f}s")
    task = Task(TaskSpec(op="S6:x*y", p=720, frac_train=0.4, seed=1))
    print(f"  task of 518,400 pairs built; peak RSS so far {peak_rss_gb():.2f} GB")
    mlp = build_model(MLPConfig(p=720, width=128, act="relu"), seed=0).to(dev)
    t_mlp, _ = timed(lambda: rep_metrics(mlp, task))
    print(f"  rep_metrics, MLP width 128: {t_mlp:.1f}s, peak RSS {peak_rss_gb():.2f} GB")
    tf = build_model(TransformerConfig(p=720, d_model=128, n_heads=4, d_head=32, d_mlp=512), seed=0).to(dev)
    t_tf, _ = timed(lambda: rep_metrics(tf, task))
    print(f"  rep_metrics, transformer d_mlp 512: {t_tf:.1f}s, peak RSS {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
