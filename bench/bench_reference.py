"""How closely the stacked engine follows the reference loop and torch.optim, measured.

(1) BatchedOptimizer against torch.optim (AdamW, Adam, SGD with momentum) given the same gradients
    (spread over seven orders of magnitude) for --opt-steps steps: max |ours - torch| / max |w|, in
    units of the dtype's eps, in float32 and float64.
(2) `train` (the stacked engine) against `train_reference` (torch.optim, one model, a plain loop) for
    an MLP and a small transformer, three optimizers, full batch and minibatches, in float64 and
    float32: the largest weight difference (b_K left out: it has no effect on any output, see
    tests/test_train_reference.py) and the largest difference of any loss in the metrics history.
(3) The same in float32 over --steps, with a control: the reference against itself summing each
    batch in reverse order (the same maths, other rounding).

The tolerances of tests/test_train_reference.py are set from these numbers. Usage:

    python bench/bench_reference.py                   # the test's settings
    python bench/bench_reference.py --p 23 --batch 64 --steps 500
    python bench/bench_reference.py --device cuda --json out/reference.json   # (2) and (3) on a GPU
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from interp import Task, TaskSpec  # noqa: E402
from interp.models import MLPConfig, TransformerConfig  # noqa: E402
from interp.train import TrainConfig, train  # noqa: E402
from interp.train.reference import loss_difference, optimizer_drift, train_reference, weight_difference  # noqa: E402

OPTIMIZERS = {
    "adamw": dict(optimizer="adamw", lr=3e-3, weight_decay=1.0),
    "adam": dict(optimizer="adam", lr=3e-3, weight_decay=1e-2),
    "sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3),
}


def engine_against_reference(
    models: dict, task: Task, steps: int, dtype: str, batch: int, control: bool, device: str = "cpu", optimizers=None
) -> list[dict]:
    """Print the weight and loss differences of `train` and `train_reference` for every case; with
    `control`, also those of the reference and the reference with its training pairs reordered. Returns
    them, one dict per case."""
    rows = []
    for model_name, mc in models.items():
        for opt_name in optimizers or OPTIMIZERS:
            opt = OPTIMIZERS[opt_name]
            for batch_size in (None, batch):
                cfg = TrainConfig(
                    steps=steps, eval_every=max(1, steps // 6), batch_size=batch_size, dtype=dtype, device=device, **opt
                )
                engine, reference = train(mc, task, cfg), train_reference(mc, task, cfg)
                row = dict(dtype=dtype, steps=steps, model=model_name, optimizer=opt_name, batch=batch_size)
                row.update(weights=weight_difference(engine.model, reference.model))
                row.update(losses=loss_difference(engine.history, reference.history))
                line = (
                    f"  {dtype} {steps} steps {model_name:11} {opt_name:5} batch={batch_size or 'full':4}: "
                    f"weights {row['weights']:.1e}, losses {row['losses']:.1e}"
                )
                if control:
                    itself = train_reference(mc, task, cfg, reverse_batches=True)
                    row.update(control_weights=weight_difference(itself.model, reference.model))
                    row.update(control_losses=loss_difference(itself.history, reference.history))
                    line += (
                        "; reference vs reference summing each batch in reverse: "
                        f"weights {row['control_weights']:.1e}, losses {row['control_losses']:.1e}"
                    )
                print(line, flush=True)
                rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=17)
    ap.add_argument("--steps", type=int, default=300, help="steps of the float64 comparison and the control")
    ap.add_argument("--float32-steps", type=int, default=20)
    ap.add_argument("--opt-steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="device of (2) and (3); (1) runs on the CPU")
    ap.add_argument("--models", nargs="+", choices=["mlp", "transformer"], default=["mlp", "transformer"])
    ap.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS))
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    figures = {"device": args.device, "torch": torch.__version__, "optimizer_drift_eps": {}}
    print(f"(1) BatchedOptimizer vs torch.optim, {args.opt_steps} steps, max |diff| / max |w| in eps:")
    for dtype in (torch.float32, torch.float64):
        drift = {k: optimizer_drift(k, dtype, args.opt_steps) for k in OPTIMIZERS}
        figures["optimizer_drift_eps"][str(dtype).removeprefix("torch.")] = drift
        row = ", ".join(f"{k} {v:.2f}" for k, v in drift.items())
        print(f"  {dtype}: {row}", flush=True)
    task = Task(TaskSpec(op="x+y", p=args.p, frac_train=0.5, label_noise=0.1, seed=0))
    models = {
        "mlp": MLPConfig(p=args.p, width=64),
        "transformer": TransformerConfig(p=args.p, d_model=32, n_heads=2, d_mlp=64, n_layers=1),
    }
    models = {name: mc for name, mc in models.items() if name in args.models}
    print("(2) train vs train_reference, max |weight diff| (b_K left out) and max |loss diff| over the history:")
    dev, opts = args.device, args.optimizers
    rows = engine_against_reference(models, task, args.steps, "float64", args.batch, False, dev, opts)
    rows += engine_against_reference(models, task, args.float32_steps, "float32", args.batch, False, dev, opts)
    figures["engine_vs_reference"] = rows
    print("(3) float32 over --steps, with the control: the reference against itself summing each batch in reverse:")
    rows = engine_against_reference(models, task, args.steps, "float32", args.batch, True, dev, opts)
    figures["float32_with_control"] = rows
    if args.json:
        from interp.files import atomic_write_json

        atomic_write_json(args.json, figures)


if __name__ == "__main__":
    main()
