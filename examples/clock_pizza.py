"""Zhong et al. 2023, the clock and the pizza: sweep the attention rate and measure both signatures.

One-layer transformers on (a + b) mod p with tokens `a b` (no '='), no causal mask, 80% of pairs for
training. The attention rate alpha blends learned attention with uniform attention
(A' = alpha softmax(QK^T / sqrt(d_head)) + (1 - alpha) J): alpha = 0 gives the pizza, alpha = 1 the
clock. For every trained model: gradient symmetricity (pizza near 1, clock lower), distance
irrelevance (clock near 1, pizza lower) and the verdict of probes.clock_pizza.classify_circuit.

    python examples/clock_pizza.py --quick      # p = 23, d_model 32, 5 rates x 2 seeds, CPU
    python examples/clock_pizza.py              # p = 59, d_model 128, 11 rates x 3 seeds (the paper), GPU
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

from interp import TaskSpec
from interp.models import TransformerConfig
from interp.report import figures
from interp.report.html import Page
from interp.report.study import Study, parse_args
from interp.train import TrainConfig, TrainResult, train_many
from probes.clock_pizza import classify_circuit

VERDICTS = ("clock", "pizza", "neither")
PUBLISHED = {  # Zhong et al.'s figures for their two reference models
    "pizza": {"gradient_symmetricity": 0.994, "distance_irrelevance": 0.17},
    "clock": {"gradient_symmetricity": 0.33, "distance_irrelevance": 0.85},
}


@dataclass(frozen=True)
class Settings:
    """The one-layer transformer, AdamW's schedule (weight decay 2) and the attention rates swept."""

    p: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    lr: float
    steps: int
    rates: tuple[float, ...]  # attention rates alpha
    seeds: tuple[int, ...]  # offsets added to --seed

    @classmethod
    def quick(cls) -> Settings:
        """The CPU setting: the scaled-down recipe probes.clock_pizza's thresholds were calibrated on."""
        return cls(
            p=23,
            d_model=32,
            n_heads=4,
            d_head=8,
            d_mlp=64,
            lr=1e-2,
            steps=400,
            rates=(0.0, 0.25, 0.5, 0.75, 1.0),
            seeds=(0, 1),
        )

    @classmethod
    def full(cls) -> Settings:
        """Zhong et al.'s setting (a GPU)."""
        return cls(
            p=59,
            d_model=128,
            n_heads=4,
            d_head=32,
            d_mlp=512,
            lr=1e-3,
            steps=20000,
            rates=tuple(i / 10 for i in range(11)),
            seeds=(0, 1, 2),
        )


def train(s: Settings, seed: int, device: str) -> tuple[list[dict], list[TrainResult]]:
    """One transformer per (attention rate, seed); returns a row per model and the runs."""
    jobs, rows = [], []
    for rate in s.rates:
        for run_seed in (seed + k for k in s.seeds):
            model = TransformerConfig(
                p=s.p,
                n_layers=1,
                d_model=s.d_model,
                n_heads=s.n_heads,
                d_head=s.d_head,
                d_mlp=s.d_mlp,
                attention_rate=rate,
                eq_token=False,
                causal=False,
            )
            cfg = TrainConfig(
                steps=s.steps, lr=s.lr, weight_decay=2.0, eval_every=max(1, s.steps // 20), seed=run_seed, device=device
            )
            jobs.append((model, TaskSpec("x+y", s.p, 0.8, seed=run_seed), cfg))
            rows.append({"attention_rate": rate, "seed": run_seed})
    return rows, train_many(jobs)


def measure(s: Settings, rows: list[dict], runs: list[TrainResult]) -> dict:
    """Per model: both signatures and the verdict; per rate: their medians, the verdict counts and
    the mean test accuracy."""
    for row, run in zip(rows, runs):
        verdict = classify_circuit(run.model, run.task)
        row.update(
            test_acc=verdict.test_acc,
            train_acc=run.final["train_acc"],
            gradient_symmetricity=verdict.gradient_symmetricity,
            distance_irrelevance=verdict.distance_irrelevance,
            verdict=verdict.verdict,
        )
    summary = []
    for rate in s.rates:
        group = [r for r in rows if r["attention_rate"] == rate]
        summary.append(
            {
                "attention_rate": rate,
                "median_symmetricity": statistics.median(r["gradient_symmetricity"] for r in group),
                "median_distance_irrelevance": statistics.median(r["distance_irrelevance"] for r in group),
                "verdicts": {v: sum(r["verdict"] == v for r in group) for v in VERDICTS},
                "mean_test_acc": statistics.fmean(r["test_acc"] for r in group),
            }
        )
    return {"models": rows, "by_rate": summary, "published": PUBLISHED}


def render(page: Page, s: Settings, results: dict) -> None:
    """One section: each signature against the attention rate (models and medians), and a table by rate."""
    rows, summary = results["models"], results["by_rate"]
    sec = page.section("Attention rate sweep")
    sec.text(
        f"One-layer transformers (d_model {s.d_model}, {s.n_heads} heads, d_mlp {s.d_mlp}) on (a + b) mod {s.p}, "
        f"80% train, AdamW lr {s.lr}, weight decay 2, {s.steps} steps. Zhong et al.: alpha <= 0.5 gives median "
        "symmetricity ~0.99 (pizza), alpha > 0.9 ~0.47 (clock)."
    )
    for key, median_key, title in (
        ("gradient_symmetricity", "median_symmetricity", "Gradient symmetricity"),
        ("distance_irrelevance", "median_distance_irrelevance", "Distance irrelevance"),
    ):
        fig = figures.figure(f"{title} by attention rate", "attention rate alpha", title.lower())
        verdicts = [r["verdict"] for r in rows]
        fig.add_scatter(
            x=[r["attention_rate"] for r in rows],
            y=[r[key] for r in rows],
            mode="markers",
            name="models",
            text=verdicts,
        )
        rates = [m["attention_rate"] for m in summary]
        fig.add_scatter(x=rates, y=[m[median_key] for m in summary], mode="lines", name="median")
        sec.figure(fig)
    sec.table(
        ["alpha", "median symmetricity", "median distance irrelevance", *VERDICTS, "mean test acc"],
        [
            [m["attention_rate"], m["median_symmetricity"], m["median_distance_irrelevance"]]
            + [m["verdicts"][v] for v in VERDICTS]
            + [m["mean_test_acc"]]
            for m in summary
        ],
        left=0,
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the study (--quick on a CPU) and write out/clock_pizza/clock_pizza.{json,html}."""
    args = parse_args(
        "clock_pizza", "Zhong et al.: attention rate sweep, gradient symmetricity and distance irrelevance.", argv
    )
    s = Settings.quick() if args.quick else Settings.full()
    study = Study("clock_pizza", "Zhong et al.: clock or pizza across the attention rate", args)
    study.results["settings"] = dataclasses.asdict(s)
    study.log(f"training {len(s.rates) * len(s.seeds)} transformers ({s.steps} steps each)")
    rows, runs = train(s, args.seed, args.device)
    study.log("measuring gradient symmetricity and distance irrelevance")
    study.results.update(measure(s, rows, runs))
    render(study.page, s, study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
