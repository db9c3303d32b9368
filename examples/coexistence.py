"""The coexistence paper: memorisation and generalisation side by side in two-layer MLPs under label noise.

A width sweep (model-wise double descent) of ReLU MLPs f(a, b) = W relu(U e_a + V e_b) + mu on
(a + b) mod p with 0-80% of the training labels replaced by wrong classes; for every model:
- clean vs noisy memorisation speed (the first step each subset reaches 99%, probes.memorization);
- frequency filtration (circuits.filtration): the dominant-frequency network G and the residual R;
- the task-agnostic partition (circuits.partition with the strength score
  ||w||_inf relu(||u||_inf + ||v||_inf)): G, the top 70% of neurons by score, and R, the bottom 30%,
  each evaluated alone with every other neuron mean-ablated;
and, for the widest model at each noise level, an ablation table over three neuron scores.

    python examples/coexistence.py --quick    # p = 23, 5 widths x 3 noise levels, CPU
    python examples/coexistence.py            # p = 113, widths 2^k + 1 (k = 4..12) x 5 noise levels, GPU
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from circuits.filtration import frequency_filtration
from circuits.partition import PartitionResult, partition
from interp import TaskSpec
from interp.models import MLPConfig
from interp.report import figures
from interp.report.html import Page
from interp.report.study import Study, parse_args
from interp.train import TrainConfig, TrainResult, train_many
from probes.memorization import learning_curves

SCORES = ("ipr", "strength", "spread")  # the ablation table's neuron scores (probes.scores)
G_SHARE, R_SHARE, ABLATION = 0.7, 0.3, "mean"  # partition's G and R shares of the neurons, and how the rest go


@dataclass(frozen=True)
class Settings:
    """The sweep: modulus, MLP widths, label-noise levels and AdamW's full-batch schedule."""

    p: int
    widths: tuple[int, ...]
    noises: tuple[float, ...]  # fraction of training labels replaced by a wrong class
    steps: int
    lr: float
    weight_decay: float
    eval_every: int

    @classmethod
    def quick(cls) -> Settings:
        """The CPU setting (--quick)."""
        return cls(
            p=23,
            widths=(9, 33, 129, 257, 513),
            noises=(0.0, 0.5, 0.8),
            steps=1500,
            lr=1e-2,
            weight_decay=1.0,
            eval_every=25,
        )

    @classmethod
    def full(cls) -> Settings:
        """The paper's scale (a GPU)."""
        widths = tuple(2**k + 1 for k in range(4, 13))
        return cls(
            p=113,
            widths=widths,
            noises=(0.0, 0.2, 0.4, 0.6, 0.8),
            steps=20000,
            lr=1e-3,
            weight_decay=0.1,
            eval_every=100,
        )


def train(s: Settings, seed: int, device: str) -> tuple[list[dict], list[TrainResult]]:
    """One MLP per (noise, width) cell, trained as batched groups; returns the cells and their runs."""
    jobs, cells = [], []
    for noise in s.noises:
        for width in s.widths:
            task = TaskSpec("x+y", s.p, 0.5, label_noise=noise, noise_kind="other", seed=seed)
            model = MLPConfig(p=s.p, width=width, act="relu", bias=True)
            cfg = TrainConfig(
                steps=s.steps, lr=s.lr, weight_decay=s.weight_decay, eval_every=s.eval_every, seed=seed, device=device
            )
            jobs.append((model, task, cfg))
            cells.append({"label_noise": noise, "width": width, "n_params": model.n_params})
    return cells, train_many(jobs)


def split(run: TrainResult, score: str) -> PartitionResult:
    """The partition of a trained model's neurons by `score`: G and R each evaluated alone."""
    return partition(
        run.model, run.task, scores=score, gamma_g=G_SHARE, gamma_r=R_SHARE, kind=ABLATION, filtration=False
    )


def measure(s: Settings, cells: list[dict], runs: list[TrainResult]) -> dict:
    """Per cell: final accuracies, memorisation speed, filtration and the strength partition; for the
    widest model at each noise level, G and R of every score in SCORES."""
    ablation_table = []
    for cell, run in zip(cells, runs):
        final, curves = run.final, learning_curves(run, threshold=0.99)
        filtration = frequency_filtration(run.model, run.task)
        strength = split(run, "strength")
        cell.update(
            status=run.status,
            train_clean_acc=final["train_clean_acc"],
            train_noisy_acc=final["train_noisy_acc"],
            test_acc=final["test_acc"],
            test_loss=final["test_loss"],
            step_clean_99=curves.first_reach.get("train_clean"),
            step_noisy_99=curves.first_reach.get("train_noisy"),
            filtration_g_test_acc=filtration.metrics["g"]["test_acc"],
            filtration_r_test_acc=filtration.metrics["r"]["test_acc"],
            filtration_g_train_noisy_acc=filtration.metrics["g"]["train_noisy_acc"],
            filtration_r_train_noisy_acc=filtration.metrics["r"]["train_noisy_acc"],
            strength_g_test_acc=strength.metrics["g"]["test_acc"],
            strength_r_test_acc=strength.metrics["r"]["test_acc"],
            strength_g_train_noisy_acc=strength.metrics["g"]["train_noisy_acc"],
        )
        if cell["width"] != max(s.widths):
            continue
        for score in SCORES:
            part = strength if score == "strength" else split(run, score)
            for which in ("g", "r"):
                m = part.metrics[which]
                ablation_table.append(
                    {
                        "label_noise": cell["label_noise"],
                        "score": score,
                        "kept": which,
                        "test_acc": m["test_acc"],
                        "train_clean_acc": m["train_clean_acc"],
                        "train_noisy_acc": m["train_noisy_acc"],
                    }
                )
    return {"cells": cells, "ablation_table": ablation_table}


def render(page: Page, s: Settings, results: dict) -> None:
    """The page: the width sweep and memorisation speed, then the sub-networks (`render_partitions`)."""
    cells, widths = results["cells"], list(s.widths)
    by_noise = {n: [c for c in cells if c["label_noise"] == n] for n in s.noises}  # each in width order
    sweep = page.section("Width sweep")
    sweep.text(
        f"ReLU MLPs with an output bias on (a + b) mod {s.p}, train fraction 0.5, label noise over the p - 1 wrong "
        f"classes; AdamW lr {s.lr}, weight decay {s.weight_decay}, {s.steps} full-batch steps."
    )
    for key, title, y_title, log_y in (
        ("test_acc", "Test accuracy against width (model-wise double descent)", "test accuracy", False),
        ("test_loss", "Test loss against width", "test cross-entropy", True),
    ):
        curves = {f"{n:.0%} noise": [c[key] for c in mine] for n, mine in by_noise.items()}
        sweep.figure(figures.lines(title, widths, curves, x_title="width", y_title=y_title, log_x=True, log_y=log_y))
    speed = page.section("Clean vs noisy memorisation speed")
    speed.text(
        "First step at which clean and noisy training examples (against their given labels) reach 99% accuracy; "
        "a dash: never."
    )
    noisy = [c for c in cells if c["label_noise"] > 0]
    rows = [[c["label_noise"], c["width"], c["step_clean_99"], c["step_noisy_99"]] for c in noisy]
    speed.table(["noise", "width", "clean 99% at", "noisy 99% at"], rows, left=0)
    render_partitions(page, widths, by_noise, results["ablation_table"])


def render_partitions(page: Page, widths: list[int], by_noise: dict, ablation_table: list[dict]) -> None:
    """Filtration's G against the strength partition's G at each noise level, and the ablation table."""
    compared = page.section("Frequency filtration vs the task-agnostic partition")
    compared.text(
        "Test accuracy of the original network, of frequency filtration's G (each neuron's dominant frequency kept) "
        f"and of the task-agnostic partition's G (the top {G_SHARE:.0%} of neurons by strength, every other neuron "
        f"{ABLATION}-ablated)."
    )
    keys = {
        "original": "test_acc",
        "filtration G": "filtration_g_test_acc",
        "strength partition G": "strength_g_test_acc",
    }
    colors = dict(zip(keys, (figures.PALETTE["full"], figures.PALETTE["g"], "#ff7f0e")))
    for n, mine in by_noise.items():
        curves = {name: [c[key] for c in mine] for name, key in keys.items()}
        axes = dict(x_title="width", y_title="test accuracy", log_x=True)
        compared.figure(figures.lines(f"{n:.0%} label noise", widths, curves, colors=colors, **axes))
    table = page.section("Ablation table (widest model)")
    table.text(
        f"Each score's G (its top {G_SHARE:.0%} of neurons) or R (its bottom {R_SHARE:.0%}) kept alone, every other "
        f"neuron {ABLATION}-ablated."
    )
    rows = [
        [r["label_noise"], r["score"], r["kept"].upper(), r["test_acc"], r["train_clean_acc"], r["train_noisy_acc"]]
        for r in ablation_table
    ]
    table.table(["noise", "score", "kept", "test", "clean train", "noisy train (given)"], rows, left=0)


def main(argv: list[str] | None = None) -> dict:
    """Run the study (--quick on a CPU) and write out/coexistence/coexistence.{json,html}."""
    args = parse_args(
        "coexistence", "The coexistence paper: width sweep under label noise, filtration and partitions.", argv
    )
    s = Settings.quick() if args.quick else Settings.full()
    study = Study("coexistence", "Memorisation and generalisation coexisting under label noise", args)
    study.results["settings"] = dataclasses.asdict(s)
    study.log(f"training {len(s.widths) * len(s.noises)} MLPs ({s.steps} steps each, batched by width)")
    cells, runs = train(s, args.seed, args.device)
    study.log("filtration and partitions")
    study.results.update(measure(s, cells, runs))
    render(study.page, s, study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
