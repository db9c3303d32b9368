"""Batched neuron patching and batched pruning curves against one-at-a-time loops, side by side.

    python bench/bench_circuits.py [--p 113] [--d-mlp 512] [--n-pairs 128] [--device cpu] [--json PATH]

Model: a randomly initialised 1-layer transformer (Nanda et al.'s shape: d_model 128, 4 heads, d_mlp
512, p = 113); speed does not depend on training. Every timing runs the same hooks:
- loop: TransformerLens's way, one forward pass per neuron with a hook patching that neuron;
- closed_form: `activation_patch(method="closed_form")`, the last layer's neurons read linearly;
- expanded_batch: `activation_patch(method="expanded_batch")`, chunks of neurons share a forward pass.
Pruning: `prune_curve` (all 11 fractions at once) against `ablate` called once per fraction.
Each line prints the ratio loop time / batched time, and the largest difference between results.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from circuits.ablation import ablate, prune_curve, prune_masks
from circuits.patching import activation_patch, corrupt_pairs
from interp import Task, TaskSpec
from interp.files import atomic_write_json
from interp.models import TransformerConfig, build_model


def _timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def loop_neuron_patch(model, task, n_pairs: int, seed: int = 0) -> torch.Tensor:
    """One forward pass per neuron (the TransformerLens way), same pairs and metric as activation_patch."""
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    clean = task.inputs[torch.randperm(len(task.inputs), generator=gen)[:n_pairs]]
    corrupted = corrupt_pairs(task, clean, "a", seed=seed + 1)
    clean_ans = task.labels[clean[:, 0] * task.p + clean[:, 1]].to(dev)
    corr_ans = task.labels[corrupted[:, 0] * task.p + corrupted[:, 1]].to(dev)
    hook_name = model.neuron_hook
    _, cache = model.run_with_cache(model.pair_tokens(clean.to(dev)), names_filter=[hook_name])
    src = cache[hook_name]
    tokens = model.pair_tokens(corrupted.to(dev))
    ar = torch.arange(n_pairs, device=dev)
    out = []
    for i in range(model.n_neurons):

        def hook(act, hook, i=i):
            act = act.clone()
            act[..., i] = src[..., i]
            return act

        with torch.no_grad():
            lg = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)])[:, -1]
        out.append((lg[ar, clean_ans] - lg[ar, corr_ans]).mean())
    return torch.stack(out).float().cpu()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=113)
    ap.add_argument("--d-mlp", type=int, default=512)
    ap.add_argument("--n-pairs", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)

    model = build_model(TransformerConfig(p=args.p, d_mlp=args.d_mlp), seed=0, device=args.device).eval()
    task = Task(TaskSpec(op="x+y", p=args.p, frac_train=0.3, seed=0))
    n = model.n_neurons
    print(f"device={args.device} threads={torch.get_num_threads()} p={args.p} d_mlp={n} n_pairs={args.n_pairs}")

    t_loop, ref = _timed(lambda: loop_neuron_patch(model, task, args.n_pairs))
    t_closed, closed = _timed(
        lambda: activation_patch(model, task, hook="post", per="neuron", n_pairs=args.n_pairs, method="closed_form"),
        repeat=3,
    )
    t_exp, exp = _timed(
        lambda: activation_patch(model, task, hook="post", per="neuron", n_pairs=args.n_pairs, method="expanded_batch")
    )
    err_c = float((closed.values.reshape(-1) - ref).abs().max())
    err_e = float((exp.values.reshape(-1) - ref).abs().max())
    print(f"neuron patching, {n} neurons: loop {t_loop:.3f}s ({n} forward passes)")
    print(
        f"  closed_form     {t_closed:.4f}s  ({closed.n_forward_passes} patched passes)  speed-up {t_loop / t_closed:7.1f}x  max|diff| {err_c:.1e}"
    )
    print(
        f"  expanded_batch  {t_exp:.3f}s  ({exp.n_forward_passes} patched passes)  speed-up {t_loop / t_exp:7.1f}x  max|diff| {err_e:.1e}"
    )

    scores = torch.randn(n, generator=torch.Generator().manual_seed(0))
    fractions = tuple(i / 10 for i in range(11))
    masks, _ = prune_masks(scores, fractions, "ascending")
    t_seq, seq = _timed(
        lambda: [ablate(model, task, neurons=masks[i], kind="mean").metrics for i in range(len(fractions))]
    )
    t_curve, curve = _timed(lambda: prune_curve(model, task, scores=scores, fractions=fractions, kind="mean"))
    err_p = max(abs(curve.metrics["test_loss"][i] - seq[i]["test_loss"]) for i in range(len(fractions)))
    print(f"pruning curve, {len(fractions)} fractions over {len(task.inputs)} pairs (mean ablation):")
    print(
        f"  one ablate per fraction {t_seq:.3f}s   prune_curve {t_curve:.3f}s  speed-up {t_seq / t_curve:5.1f}x  max|diff test_loss| {err_p:.1e}"
    )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "device": args.device,
                "torch": torch.__version__,
                "p": args.p,
                "d_mlp": n,
                "n_pairs": args.n_pairs,
                "patching_loop_s": t_loop,
                "patching_closed_form_s": t_closed,
                "patching_closed_form_ratio": t_loop / t_closed,
                "patching_closed_form_max_diff": err_c,
                "patching_expanded_batch_s": t_exp,
                "patching_expanded_batch_ratio": t_loop / t_exp,
                "patching_expanded_batch_max_diff": err_e,
                "pruning_fractions": len(fractions),
                "pruning_one_ablate_per_fraction_s": t_seq,
                "pruning_prune_curve_s": t_curve,
                "pruning_ratio": t_seq / t_curve,
                "pruning_max_diff_test_loss": err_p,
            },
        )


if __name__ == "__main__":
    main()
