"""Training speed, measured side by side in one run.

(1) A sweep of MLPs (default 32: p = 97, width 512, full batch, 4 seeds x 2 noise levels x 4 weight
    decays) trained as one batched computation with `train_many`, against the same models trained one
    after another with `train`: models x steps per second, and the ratio. Also the achieved matmul
    throughput of the batched sweep as a fraction of this device's torch.mm peak (float32).
(2) Our transformer training loop (`train`, Nanda et al.'s config: p = 113, d_model 128, 4 heads,
    d_mlp 512, 30% of pairs, full-batch AdamW) against a plain loop over a TransformerLens
    HookedTransformer of the same architecture: steps per second. Both loops evaluate on the whole
    table at the same steps. HookedTransformer left TransformerLens in 4.0, so this part runs in an
    interpreter that has TransformerLens 3.x (--tl-python, default /work/venv_tl3/bin/python), with
    this repository on sys.path; both loops run in that same process (same torch).

(1b) The same for small MLPs (p = 23, width 128), where per-step overhead, not arithmetic, dominates.

Each timing is end to end (setup, training, the evaluations at the first and last step), best of
--repeats runs, interleaved. Usage:

    python bench/bench_train.py --steps 4            # CPU: keep it short
    python bench/bench_train.py --device cuda --steps 200 --models 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def matmul_peak_flops(device: str, n: int = 2048, reps: int = 3) -> float:
    """Float32 torch.mm throughput of this device (FLOP/s), best of `reps`."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = min(_timed(lambda: a @ b, device) for _ in range(reps))
    return 2 * n**3 / best


# ----- (1) batched vs one at a time ---------------------------------------------------------------
def sweep_jobs(n_models: int, p: int, width: int, steps: int, device: str):
    from interp import TaskSpec
    from interp.models import MLPConfig
    from interp.train import TrainConfig

    jobs = []
    seeds, noises, wds = range(4), (0.0, 0.3), (0.0, 0.1, 1.0, 5.0)
    for seed in seeds:
        for noise in noises:
            for wd in wds:
                spec = TaskSpec(op="x+y", p=p, frac_train=0.5, label_noise=noise, seed=seed)
                cfg = TrainConfig(
                    steps=steps, lr=1e-3, weight_decay=wd, eval_every=max(1, steps), seed=seed, device=device
                )
                jobs.append((MLPConfig(p=p, width=width), spec, cfg))
    return (jobs * (n_models // len(jobs) + 1))[:n_models]


def mlp_step_flops(p: int, width: int, n_train: int, n_all: int, steps: int) -> float:
    """Matmul FLOPs of one model's run: per step the output layer forward, and its two backward
    products (6 B width p; the first layer is a row lookup), plus two evaluations on the table."""
    return 6.0 * n_train * width * p * steps + 2 * 2.0 * n_all * width * p


def bench_batched(args, p: int, width: int, steps: int) -> dict:
    from interp import Task
    from interp.train import train, train_many

    jobs = sweep_jobs(args.models, p, width, steps, args.device)
    tasks = {spec: Task(spec) for _, spec, _ in jobs}  # built once, outside the timings
    jobs = [(m, tasks[spec], c) for m, spec, c in jobs]
    train_many(jobs[:2], out=None)  # warm-up: allocator, BLAS threads
    n_seq = args.sequential_models or len(jobs)
    batched, sequential = [], []
    for _ in range(args.repeats):
        batched.append(_timed(lambda: train_many(jobs, out=None), args.device))
        sequential.append(_timed(lambda: [train(*job) for job in jobs[:n_seq]], args.device))
    model_steps = len(jobs) * steps
    t_b, t_s = min(batched), min(sequential) * len(jobs) / n_seq
    task = next(iter(tasks.values()))
    flops = mlp_step_flops(p, width, task.n_train, len(task.inputs), steps) * len(jobs)
    peak = matmul_peak_flops(args.device)
    return {
        "models": len(jobs),
        "p": p,
        "width": width,
        "steps": steps,
        "batched_s": t_b,
        "sequential_s": t_s,
        "sequential_measured_models": n_seq,
        "batched_model_steps_per_s": model_steps / t_b,
        "sequential_model_steps_per_s": model_steps / t_s,
        "speedup": t_s / t_b,
        "achieved_gflops": flops / t_b / 1e9,
        "peak_gflops": peak / 1e9,
        "matmul_fraction": flops / t_b / peak,
    }


# ----- (2) our transformer vs TransformerLens -----------------------------------------------------
def bench_transformer_here(steps: int, repeats: int, device: str) -> dict:
    """Both loops in this interpreter (it must have TransformerLens < 4)."""
    import torch.nn.functional as F
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp import Task, TaskSpec
    from interp.models import TransformerConfig
    from interp.train import TrainConfig, train

    task = Task(TaskSpec(op="x+y", p=113, frac_train=0.3))
    mc = TransformerConfig(p=113)
    cfg = TrainConfig(
        steps=steps, lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), eval_every=max(1, steps), device=device
    )

    def ours():
        train(mc, task, cfg)

    tokens = task.tokens().to(device)
    x_train, y_train = tokens[task.train_idx.to(device)], task.train_labels.to(device)
    labels = task.labels.to(device)

    def theirs():
        torch.manual_seed(0)
        model = HookedTransformer(HookedTransformerConfig(**mc.hooked_transformer_config(), seed=0)).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / 10, 1.0))

        def evaluate():  # the same work as ours: every pair of the table, loss in float64
            with torch.no_grad():
                F.cross_entropy(model(tokens)[:, -1].double(), labels).item()

        evaluate()
        for _ in range(steps):
            loss = F.cross_entropy(model(x_train)[:, -1].to(torch.float64), y_train)
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
        evaluate()

    ours()  # warm-up
    theirs()
    t_ours, t_tl = [], []
    for _ in range(repeats):
        t_ours.append(_timed(ours, device))
        t_tl.append(_timed(theirs, device))
    import transformer_lens

    try:
        from importlib import metadata

        tl_version = metadata.version("transformer-lens")
    except Exception:  # noqa: BLE001
        tl_version = getattr(transformer_lens, "__version__", "?")
    return {
        "steps": steps,
        "ours_steps_per_s": steps / min(t_ours),
        "tl_steps_per_s": steps / min(t_tl),
        "speedup": min(t_tl) / min(t_ours),
        "transformer_lens": tl_version,
        "torch": torch.__version__,
    }


def bench_transformer(args) -> dict:
    try:
        from transformer_lens import HookedTransformer  # noqa: F401

        return bench_transformer_here(args.tf_steps, args.repeats, args.device)
    except ImportError:
        pass
    if not Path(args.tl_python).exists():
        return {"skipped": f"no TransformerLens 3.x interpreter at {args.tl_python} (pass --tl-python)"}
    cmd = [args.tl_python, __file__, "--tl-child", "--tf-steps", str(args.tf_steps), "--repeats", str(args.repeats)]
    cmd += ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if res.returncode != 0:
        return {"skipped": f"the TransformerLens 3.x run failed: {res.stderr.strip().splitlines()[-1:]}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----- report -------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=4, help="training steps per model in (1)")
    ap.add_argument("--tf-steps", type=int, default=20, help="training steps in (2)")
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--small-steps", type=int, default=100, help="steps of the small-MLP sweep (p=23, width 128)")
    ap.add_argument(
        "--sequential-models", type=int, default=None, help="time only this many one-at-a-time runs and scale up"
    )
    ap.add_argument("--tl-python", default="/work/venv_tl3/bin/python")
    ap.add_argument("--skip", choices=["batched", "transformer"], action="append", default=[])
    ap.add_argument("--tl-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tl_child:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(bench_transformer_here(args.tf_steps, args.repeats, args.device)))
        return 0

    from interp.device import resolve_device

    args.device = str(resolve_device(args.device))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"== grokscope training benchmark: device {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average {load:.1f} =="
    )
    figures = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(), "sweeps": []}
    if "batched" not in args.skip:
        sweeps = [(args.p, args.width, args.steps)] + ([(23, 128, args.small_steps)] if args.small_steps else [])
        for k, (p, width, steps) in enumerate(sweeps):
            r = bench_batched(args, p, width, steps)
            figures["sweeps"].append(r)
            print(f"({1 if k == 0 else '1b'}) {r['models']} MLPs, p={p}, width {width}, full batch, {steps} steps each")
            print(
                f"    train_many, one batched computation : {r['batched_model_steps_per_s']:9.2f} model-steps/s ({r['batched_s']:.1f} s)"
            )
            note = (
                ""
                if r["sequential_measured_models"] == r["models"]
                else f", {r['sequential_measured_models']} timed and scaled"
            )
            print(
                f"    train, one model after another      : {r['sequential_model_steps_per_s']:9.2f} model-steps/s ({r['sequential_s']:.1f} s{note})"
            )
            target = "  (target: >= 4x on a 2-core CPU, >= 20x on a GPU)" if k == 0 else ""
            print(f"    speed-up                            : {r['speedup']:9.2f}x{target}")
            print(
                f"    matmul throughput of the sweep      : {r['achieved_gflops']:9.1f} GFLOP/s = "
                f"{100 * r['matmul_fraction']:.0f}% of torch.mm float32 peak ({r['peak_gflops']:.1f} GFLOP/s)"
            )
    if "transformer" not in args.skip:
        r = bench_transformer(args)
        figures["transformer"] = r
        print(
            f"(2) transformer p=113, d_model 128, 4 heads, d_mlp 512, 30% of pairs, full-batch AdamW, {args.tf_steps} steps"
        )
        if "skipped" in r:
            print(f"    skipped: {r['skipped']}")
        else:
            print(f"    grokscope train                     : {r['ours_steps_per_s']:9.2f} steps/s")
            print(
                f"    TransformerLens {r['transformer_lens']:<6} HookedTransformer : {r['tl_steps_per_s']:9.2f} steps/s"
            )
            print(
                f"    speed-up                            : {r['speedup']:9.2f}x  (target: >= 1.5x on CPU; torch {r['torch']})"
            )
    if args.json:
        from interp.files import atomic_write_json

        atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
