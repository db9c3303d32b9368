"""Power et al. 2022: steps to 99% test accuracy against the training fraction, per operation.

Transformers are trained on several binary operations mod p at several training fractions; for each
run the first evaluated step at which training and test accuracy reach 99% are recorded, with the
gap between them (the grokking delay). Power et al.: the steps needed rise steeply as the fraction
falls toward 25-30%; symmetric operations need less data; x^3 + xy^2 + y never generalises.

    python examples/grokking_vs_fraction.py --quick   # p = 31, 1-layer d_model 32, 3 ops x 3 fractions x 3 seeds, CPU
    python examples/grokking_vs_fraction.py           # p = 97, 2-layer d_model 128, 10 ops x 9 fractions x 3 seeds, GPU
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

from interp import Task, TaskSpec
from interp.models import TransformerConfig
from interp.report import figures
from interp.report.html import Page
from interp.report.study import Study, parse_args
from interp.train import TrainConfig, TrainResult, train_many
from probes.memorization import first_step_reaching

FULL_OPS = (
    "x+y",
    "x-y",
    "x*y",
    "x/y",
    "x/y if y odd else x-y",
    "x^2+y^2",
    "x^2+xy+y^2",
    "x^2+xy+y^2+x",
    "x^3+xy",
    "x^3+xy^2+y",
)
DEFINITION = (
    "first evaluated step with accuracy >= 0.99 (None: not within the run); medians over seeds count "
    "a run that never got there as slower than any that did (None when most never did)"
)


@dataclass(frozen=True)
class Settings:
    """The transformer, AdamW's schedule (weight decay 1) and the grid of operations, fractions and seeds."""

    p: int
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    lr: float
    steps: int
    eval_every: int
    batch: bool  # Power et al.'s minibatches of min(512, n_train / 2); False: full batch
    ops: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]  # offsets added to --seed

    @classmethod
    def quick(cls) -> Settings:
        """The CPU setting (--quick). p = 23 leaves test sets of ~100 pairs where 99% allows one error;
        p = 31 is steadier."""
        return cls(
            p=31,
            n_layers=1,
            d_model=32,
            n_heads=4,
            d_head=8,
            d_mlp=128,
            lr=3e-3,
            steps=1500,
            eval_every=20,
            batch=False,
            ops=("x+y", "x-y", "x^2+y^2"),
            fractions=(0.4, 0.8),
            seeds=(0, 1, 2),
        )

    @classmethod
    def full(cls) -> Settings:
        """Power et al.'s scale (a GPU)."""
        return cls(
            p=97,
            n_layers=2,
            d_model=128,
            n_heads=4,
            d_head=32,
            d_mlp=512,
            lr=1e-3,
            steps=100000,
            eval_every=200,
            batch=True,
            ops=FULL_OPS,
            fractions=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
            seeds=(0, 1, 2),
        )


def train(s: Settings, seed: int, device: str) -> tuple[list[dict], list[TrainResult]]:
    """One transformer per (operation, fraction, seed); returns a row per run and the runs."""
    jobs, rows = [], []
    model = TransformerConfig(
        p=s.p, n_layers=s.n_layers, d_model=s.d_model, n_heads=s.n_heads, d_head=s.d_head, d_mlp=s.d_mlp
    )
    for op in s.ops:
        for frac in s.fractions:
            for run_seed in (seed + k for k in s.seeds):
                task = Task(TaskSpec(op, s.p, frac, seed=run_seed))
                batch = min(512, task.n_train // 2) if s.batch else None
                cfg = TrainConfig(
                    steps=s.steps,
                    lr=s.lr,
                    weight_decay=1.0,
                    batch_size=batch,
                    eval_every=s.eval_every,
                    seed=run_seed,
                    device=device,
                )
                jobs.append((model, task, cfg))
                rows.append({"op": op, "frac_train": frac, "seed": run_seed, "n_train": task.n_train})
    return rows, train_many(jobs)


def median_steps(values) -> int | None:
    """Median of first-reaching steps, a run that never got there counting as slower than all."""
    ranked = sorted(float("inf") if v is None else v for v in values)
    m = statistics.median_high(ranked)
    return None if m == float("inf") else int(m)


def measure(s: Settings, rows: list[dict], runs: list[TrainResult]) -> dict:
    """Per run: the first steps at 99% train and test accuracy and their gap; per (operation, fraction):
    medians over seeds and the mean final test accuracy."""
    for row, run in zip(rows, runs):
        e_train, e_test = (
            first_step_reaching(run, "train_acc", threshold=0.99),
            first_step_reaching(run, "test_acc", threshold=0.99),
        )
        row.update(
            steps_to_train_99=e_train,
            steps_to_test_99=e_test,
            grokking_delay=(max(0, e_test - e_train) if e_test is not None and e_train is not None else None),
            final_train_acc=run.final["train_acc"],
            final_test_acc=run.final["test_acc"],
            status=run.status,
        )
    summary = []
    for op in s.ops:
        for frac in s.fractions:
            mine = [r for r in rows if r["op"] == op and r["frac_train"] == frac]
            summary.append(
                {
                    "op": op,
                    "frac_train": frac,
                    "n_train": mine[0]["n_train"],
                    "median_steps_to_train_99": median_steps(r["steps_to_train_99"] for r in mine),
                    "median_steps_to_test_99": median_steps(r["steps_to_test_99"] for r in mine),
                    "n_generalised": sum(r["steps_to_test_99"] is not None for r in mine),
                    "n_seeds": len(mine),
                    "mean_final_test_acc": statistics.fmean(r["final_test_acc"] for r in mine),
                }
            )
    return {"runs": rows, "summary": summary, "definition": DEFINITION}


def render(page: Page, s: Settings, results: dict) -> None:
    """One section: steps to generalise per operation, final test accuracy, and every run in a table."""
    rows, summary = results["runs"], results["summary"]
    sec = page.section("Steps to generalise")
    sec.text(
        f"{s.n_layers}-layer transformer (d_model {s.d_model}, {s.n_heads} heads), AdamW lr {s.lr}, weight decay 1, "
        f"{s.steps} steps, p = {s.p}, {len(s.seeds)} seeds (medians). Where most seeds never reach 99% test "
        "accuracy the point is drawn at the run length, hollow."
    )
    fig = figures.figure("Steps to 99% test accuracy", "training fraction", "steps", height=420)
    for op in s.ops:
        mine = [r for r in summary if r["op"] == op]
        steps = [r["median_steps_to_test_99"] for r in mine]
        fig.add_scatter(
            x=[r["frac_train"] for r in mine],
            y=[v if v is not None else s.steps for v in steps],
            mode="lines+markers",
            name=op,
            marker={"symbol": ["circle" if v is not None else "circle-open" for v in steps], "size": 9},
        )
    fig.update_yaxes(type="log")
    sec.figure(fig)
    labels = [f"{r['op']} @ {r['frac_train']}" for r in summary]
    means = {"test accuracy": [r["mean_final_test_acc"] for r in summary]}
    sec.figure(figures.bars("Final test accuracy (mean over seeds)", labels, means, y_title="accuracy"))
    columns = ("op", "frac_train", "seed", "n_train", "steps_to_train_99", "steps_to_test_99", "grokking_delay")
    sec.table(
        [
            "operation",
            "fraction",
            "seed",
            "train pairs",
            "steps to 99% train",
            "steps to 99% test",
            "delay",
            "final test",
        ],
        [[r[c] for c in columns] + [r["final_test_acc"]] for r in rows],
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the study (--quick on a CPU) and write out/grokking_vs_fraction/grokking_vs_fraction.{json,html}."""
    args = parse_args("grokking_vs_fraction", "Power et al.: steps to generalise against the training fraction.", argv)
    s = Settings.quick() if args.quick else Settings.full()
    title = "Power et al.: steps to 99% test accuracy by training fraction and operation"
    study = Study("grokking_vs_fraction", title, args)
    study.results["settings"] = dataclasses.asdict(s)
    study.log(f"training {len(s.ops) * len(s.fractions) * len(s.seeds)} transformers ({s.steps} steps each)")
    rows, runs = train(s, args.seed, args.device)
    study.results.update(measure(s, rows, runs))
    render(study.page, s, study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
