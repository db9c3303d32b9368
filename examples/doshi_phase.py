"""Doshi et al. 2024's phase diagram: label-noise fraction x weight decay for a quadratic MLP.

A two-layer MLP f(a, b) = W (U e_a + V e_b)^2 (no biases) is trained with MSE on one-hot targets on
(a + b) mod p, with a fraction xi of the training labels replaced by uniform random labels. Each
cell is labelled by Doshi et al.'s accuracy rules (`probes.memorization.phase`): coexistence, partial
inversion, full inversion, memorisation or forgetting. Also recorded per cell: the accuracy on the
corrupted training examples against their given and their true labels, and the share of periodic
neurons (high IPR, probes.fourier.classify_neurons).

    python examples/doshi_phase.py --quick      # p = 59, width 300, a 3 x 4 grid, CPU
    python examples/doshi_phase.py              # p = 97, width 500, 6 x 6 grid (the paper's setting), GPU
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from interp import TaskSpec
from interp.models import MLPConfig
from interp.report import figures
from interp.report.html import Page
from interp.report.study import Study, parse_args
from interp.train import TrainConfig, TrainResult, train_many
from probes.fourier import classify_neurons
from probes.memorization import phase

PHASES = ("coexistence", "partial inversion", "full inversion", "memorisation", "forgetting")


@dataclass(frozen=True)
class Settings:
    """The quadratic MLP, its training length (AdamW lr 1e-2, MSE) and the grid of noise x weight decay."""

    p: int
    width: int
    steps: int
    noises: tuple[float, ...]  # xi: the fraction of training labels replaced by uniform random labels
    decays: tuple[float, ...]  # AdamW weight decays

    @classmethod
    def quick(cls) -> Settings:
        """The CPU setting. p = 23 only memorises or forgets; at p = 59, width 300 the phases appear
        within 600 steps (shifted to larger weight decay than at p = 97)."""
        return cls(p=59, width=300, steps=600, noises=(0.2, 0.5), decays=(0.0, 5.0, 15.0, 30.0))

    @classmethod
    def full(cls) -> Settings:
        """Doshi et al.'s setting (a GPU)."""
        return cls(
            p=97,
            width=500,
            steps=10000,
            noises=(0.0, 0.1, 0.2, 0.35, 0.5, 0.7),
            decays=(0.0, 1.0, 5.0, 10.0, 15.0, 20.0),
        )


def train(s: Settings, seed: int, device: str) -> tuple[list[dict], list[TrainResult]]:
    """One MLP per (noise, weight decay) cell, trained as one batch; returns the cells and their runs."""
    jobs, cells = [], []
    model = MLPConfig(p=s.p, width=s.width, act="quad", bias=False)
    for xi in s.noises:
        task = TaskSpec("x+y", s.p, 0.5, label_noise=xi, noise_kind="all", seed=seed)
        for wd in s.decays:
            eval_every = max(1, s.steps // 20)
            cfg = TrainConfig(
                steps=s.steps, lr=1e-2, weight_decay=wd, loss="mse", eval_every=eval_every, seed=seed, device=device
            )
            jobs.append((model, task, cfg))
            cells.append({"label_noise": xi, "weight_decay": wd})
    return cells, train_many(jobs)


def measure(s: Settings, cells: list[dict], runs: list[TrainResult]) -> dict:
    """Per cell: final accuracies, the share of periodic neurons and the phase; the count of each phase."""
    for cell, run in zip(cells, runs):
        final = run.final
        xi = cell["label_noise"]
        cell.update(
            train_acc=final["train_acc"],
            test_acc=final["test_acc"],
            train_clean_acc=final["train_clean_acc"],
            train_noisy_acc=final["train_noisy_acc"],
            train_noisy_true_acc=final["train_noisy_true_acc"],
            frac_periodic_neurons=classify_neurons(run.model, run.task).frac_periodic,
            full_inversion_train_acc=1 - xi + xi / s.p,
            phase=phase(final["train_acc"], final["test_acc"], xi),
            status=run.status,
        )
    return {
        "cells": cells,
        "phase_counts": {ph: sum(c["phase"] == ph for c in cells) for ph in PHASES},
        "rules": phase.__doc__,
    }


def render(page: Page, s: Settings, results: dict) -> None:
    """One section: the phase diagram, three accuracy heatmaps over the grid, and every cell in a table."""
    cells = results["cells"]

    def grid(key: str) -> list[list]:  # [noise][weight decay]
        at = {(c["label_noise"], c["weight_decay"]): c[key] for c in cells}
        return [[at[xi, wd] for wd in s.decays] for xi in s.noises]

    axes = dict(
        x=[str(d) for d in s.decays], y=[str(x) for x in s.noises], x_title="weight decay", y_title="label noise xi"
    )
    sec = page.section("Phase diagram")
    sec.text(
        f"Quadratic MLP, width {s.width}, MSE, (a + b) mod {s.p}, data fraction 0.5; a fraction xi of training labels "
        "replaced by uniform random labels. Phases by Doshi et al.'s rules: "
        + (phase.__doc__ or "").split(":", 1)[-1].strip()
    )
    codes = [[PHASES.index(ph) for ph in row] for row in grid("phase")]
    title = "Phase (0 coexistence, 1 partial inversion, 2 full inversion, 3 memorisation, 4 forgetting)"
    fig = figures.heatmap(title, codes, colorscale="Viridis", **axes)
    fig.data[0].update(zmin=0, zmax=len(PHASES) - 1, text=grid("phase"), texttemplate="%{text}")
    sec.figure(fig)
    for key, title in (
        ("train_acc", "Training accuracy (given labels)"),
        ("test_acc", "Test accuracy"),
        ("train_noisy_true_acc", "Corrupted examples: accuracy against their true labels"),
    ):
        fig = figures.heatmap(title, grid(key), **axes)
        fig.data[0].update(zmin=0, zmax=1, texttemplate="%{z:.2f}")
        sec.figure(fig)
    columns = ("label_noise", "weight_decay", "train_acc", "test_acc", "train_noisy_acc", "train_noisy_true_acc")
    sec.table(
        ["xi", "weight decay", "train", "test", "noisy (given)", "noisy (true)", "periodic neurons", "phase"],
        [[c[k] for k in columns] + [c["frac_periodic_neurons"], c["phase"]] for c in cells],
        left=0,
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the study (--quick on a CPU) and write out/doshi_phase/doshi_phase.{json,html}."""
    args = parse_args("doshi_phase", "Doshi et al.'s phase diagram: label noise x weight decay.", argv)
    s = Settings.quick() if args.quick else Settings.full()
    study = Study("doshi_phase", "Doshi et al.: phases of a quadratic MLP under label noise and weight decay", args)
    study.results["settings"] = dataclasses.asdict(s)
    study.log(f"training {len(s.noises) * len(s.decays)} models ({s.steps} steps each, batched)")
    cells, runs = train(s, args.seed, args.device)
    study.results.update(measure(s, cells, runs))
    render(study.page, s, study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
