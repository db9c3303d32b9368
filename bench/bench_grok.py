"""One full-setting grokking run, timed: Nanda et al.'s one-layer transformer on (a + b) mod 113.

The zoo's GPU recipe `grok-transformer-gpu` (docs/papers.md, G.2: p = 113, 30% of the pairs, d_model
128, 4 heads, d_mlp 512, full-batch AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), float64 loss, up
to 40k steps) trained in chunks of --chunk steps, each resuming the last (`train(..., resume=True)`:
the same run as one call asked for that many steps), until the model has grokked (training and test
accuracy >= --threshold at the last evaluation), the recipe's steps are done, or the next chunk would
pass --time-limit. Figures: the steps and the wall time to memorise (training accuracy >= 99%) and to
generalise (test accuracy >= 99%), the grokking delay, steps per second, the final accuracies and the
learning curve. Nanda et al. see test accuracy jump around step 10k.

    python bench/bench_grok.py --device cuda --json out/grok.json          # the full setting, a few minutes
    python bench/bench_grok.py --device cpu --recipe grok-transformer      # the zoo's CPU-scale version (p = 53)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from interp.device import resolve_device  # noqa: E402
from interp.files import atomic_write_json  # noqa: E402
from interp.train import train  # noqa: E402
from interp.zoo.recipes import recipe  # noqa: E402
from probes.memorization import generalization_time, grokking_delay, memorization_time  # noqa: E402


def grok(args, run_dir: Path) -> dict:
    r = recipe(args.recipe)
    device = str(resolve_device(args.device))
    max_steps = args.max_steps or r.train.steps
    base = dataclasses.replace(
        r.train, eval_every=args.eval_every, checkpoint_every=None, checkpoint_log=0, device=device
    )  # no weight files between chunks: the resume state carries the run
    wall_at = {}  # step -> wall seconds since the start, at each evaluation

    def clock(_job, entry):
        wall_at[entry["step"]] = time.perf_counter() - start

    start = time.perf_counter()
    done, chunks, result, stopped = 0, [], None, "max_steps"
    while done < max_steps:
        steps = min(done + args.chunk, max_steps)
        t = time.perf_counter()
        result = train(
            r.model, r.task, dataclasses.replace(base, steps=steps), out=run_dir, resume=done > 0, callback=clock
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        chunks.append({"steps": steps - done, "wall_s": time.perf_counter() - t})
        done = steps
        last = result.history[-1]
        print(
            f"step {done:6d}: train acc {last['train_acc']:.4f}, test acc {last['test_acc']:.4f}, "
            f"test loss {last['test_loss']:.3g}, {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        if last["train_acc"] >= args.threshold and last["test_acc"] >= args.threshold:
            stopped = "grokked"
            break
        per_step = sum(c["wall_s"] for c in chunks) / done
        if time.perf_counter() - start + per_step * min(args.chunk, max_steps - done) > args.time_limit:
            stopped = "time_limit"
            break
    wall = time.perf_counter() - start
    history = result.history
    t_mem = memorization_time(history, threshold=args.threshold)
    t_gen = generalization_time(history, threshold=args.threshold)
    delay = grokking_delay(history)
    final = history[-1]
    return {
        "recipe": r.name,
        "device": device,
        "torch": torch.__version__,
        "task_spec": r.task.to_dict(),
        "model_config": r.model.to_dict(),
        "train_config": dataclasses.replace(base, steps=done).to_dict(),
        "threshold": args.threshold,
        "grokked": stopped == "grokked",
        "stopped": stopped,
        "steps": done,
        "wall_s": wall,
        "steps_per_s": done / wall,
        "chunks": chunks,
        "memorization_step": t_mem,
        "generalization_step": t_gen,
        "wall_s_to_memorize": wall_at.get(t_mem),
        "wall_s_to_generalize": wall_at.get(t_gen),
        "grokking_delay": delay.to_dict(),
        "final": {k: final[k] for k in ("step", "train_acc", "test_acc", "train_loss", "test_loss", "weight_norm")},
        "curve": [
            {k: h[k] for k in ("step", "train_acc", "test_acc", "train_loss", "test_loss")}
            for h in history
            if h["step"] % (args.eval_every * args.curve_every) == 0 or h is final
        ],
        "reference": "Nanda et al. 2023: memorisation by epoch ~1.4k, test accuracy jumps around epoch 10k (docs/papers.md, G.2)",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recipe", default="grok-transformer-gpu", help="a zoo recipe (interp-zoo list)")
    ap.add_argument("--max-steps", type=int, default=None, help="at most this many steps (default: the recipe's)")
    ap.add_argument("--chunk", type=int, default=2000, help="steps per train call; grokking is checked after each")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--curve-every", type=int, default=5, help="keep every k-th evaluation in the JSON's curve")
    ap.add_argument("--threshold", type=float, default=0.99)
    ap.add_argument(
        "--time-limit", type=float, default=float("inf"), help="seconds: no chunk starts that would pass it"
    )
    ap.add_argument("--out", type=Path, default=None, help="the run directory (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    if args.out is not None:
        figures = grok(args, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="grokscope-grok-") as tmp:
            figures = grok(args, Path(tmp) / "run")
    print(
        f"{figures['recipe']} on {figures['device']}: {'grokked' if figures['grokked'] else 'did not grok'} "
        f"({figures['stopped']}) after {figures['steps']} steps in {figures['wall_s']:.1f} s "
        f"({figures['steps_per_s']:.0f} steps/s); train acc >= {args.threshold} at step {figures['memorization_step']}, "
        f"test acc at step {figures['generalization_step']} ({figures['wall_s_to_generalize'] or float('nan'):.1f} s); "
        f"final test acc {figures['final']['test_acc']:.4f}"
    )
    if args.json:
        atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
