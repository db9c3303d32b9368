"""Doshi et al. 2024's phase diagram: label-noise fraction x weight decay for a quadratic MLP.

A two-layer MLP f(a, b) = W (U e_a + V e_b)^2 (no biases) is trained with MSE on one-hot targets on
(a + b) mod p, with a fraction xi of the training labels replaced by uniform random labels. Each
cell is labelled by Doshi et al.'s accuracy rules (`probes.memorization.phase`): coexistence, partial
inversion, full inversion, memorisation or forgetting. Also recorded per cell: the accuracy on the
corrupted training examples against their given and their true labels, and the share of periodic
neurons (high IPR, probes.fourier.classify_neurons).

    python examples/doshi_phase.py --quick      # p = 59, width 300, a 3 x 4 grid, CPU, under a minute
    python examples/doshi_phase.py              # p = 97, width 500, 6 x 6 grid (the paper's setting), GPU
"""

from __future__ import annotations

PHASES = ("coexistence", "partial inversion", "full inversion", "memorisation", "forgetting")


def settings(quick: bool) -> dict:
    if quick:
        # p = 23 only memorises or forgets; at p = 59, width 300 the phases appear within 600 steps
        # (shifted to larger weight decay than at p = 97).
        return dict(p=59, width=300, steps=600, noises=(0.2, 0.35, 0.5), decays=(0.0, 5.0, 15.0, 30.0))
    return dict(
        p=97, width=500, steps=10000, noises=(0.0, 0.1, 0.2, 0.35, 0.5, 0.7), decays=(0.0, 1.0, 5.0, 10.0, 15.0, 20.0)
    )


def main(argv: list[str] | None = None) -> dict:
    from interp import TaskSpec
    from interp.models import MLPConfig
    from interp.report import figures
    from interp.report.study import Study, parse_args
    from interp.train import TrainConfig, train_many
    from probes.memorization import phase
    from probes.fourier import classify_neurons

    args = parse_args("doshi_phase", "Doshi et al.'s phase diagram: label noise x weight decay.", argv)
    s = settings(args.quick)
    study = Study("doshi_phase", "Doshi et al.: phases of a quadratic MLP under label noise and weight decay", args)
    study.results["settings"] = s
    jobs, cells = [], []
    for xi in s["noises"]:
        for wd in s["decays"]:
            task = TaskSpec("x+y", s["p"], 0.5, label_noise=xi, noise_kind="all", seed=args.seed)
            model = MLPConfig(p=s["p"], width=s["width"], act="quad", bias=False)
            cfg = TrainConfig(
                steps=s["steps"],
                lr=1e-2,
                weight_decay=wd,
                loss="mse",
                eval_every=max(1, s["steps"] // 20),
                seed=args.seed,
                device=args.device,
            )
            jobs.append((model, task, cfg))
            cells.append({"label_noise": xi, "weight_decay": wd})
    study.log(f"training {len(jobs)} models ({s['steps']} steps each, batched)")
    runs = train_many(jobs)
    for cell, run in zip(cells, runs):
        f = run.final
        cls = classify_neurons(run.model, run.task)
        cell.update(
            train_acc=f["train_acc"],
            test_acc=f["test_acc"],
            train_clean_acc=f["train_clean_acc"],
            train_noisy_acc=f["train_noisy_acc"],
            train_noisy_true_acc=f["train_noisy_true_acc"],
            frac_periodic_neurons=cls.frac_periodic,
            full_inversion_train_acc=1 - cell["label_noise"] + cell["label_noise"] / s["p"],
            phase=phase(f["train_acc"], f["test_acc"], cell["label_noise"]),
            status=run.status,
        )
    study.results["cells"] = cells
    study.results["phase_counts"] = {ph: sum(c["phase"] == ph for c in cells) for ph in PHASES}
    study.results["rules"] = phase.__doc__

    noises, decays = list(s["noises"]), list(s["decays"])

    def grid(key):
        return [
            [next(c[key] for c in cells if c["label_noise"] == xi and c["weight_decay"] == wd) for wd in decays]
            for xi in noises
        ]

    sec = study.page.section("Phase diagram")
    sec.text(
        f"Quadratic MLP, width {s['width']}, MSE, (a + b) mod {s['p']}, data fraction 0.5; a fraction xi of training labels "
        "replaced by uniform random labels. Phases by Doshi et al.'s rules: "
        + (phase.__doc__ or "").split(":", 1)[-1].strip()
    )
    codes = [[PHASES.index(ph) for ph in row] for row in grid("phase")]
    fig = figures.heatmap(
        "Phase (0 coexistence, 1 partial inversion, 2 full inversion, 3 memorisation, 4 forgetting)",
        codes,
        x=[str(d) for d in decays],
        y=[str(x) for x in noises],
        x_title="weight decay",
        y_title="label noise xi",
        colorscale="Viridis",
    )
    fig.data[0].update(zmin=0, zmax=len(PHASES) - 1, text=grid("phase"), texttemplate="%{text}")
    sec.figure(fig)
    for key, title in (
        ("train_acc", "Training accuracy (given labels)"),
        ("test_acc", "Test accuracy"),
        ("train_noisy_true_acc", "Corrupted examples: accuracy against their true labels"),
    ):
        f = figures.heatmap(
            title,
            grid(key),
            x=[str(d) for d in decays],
            y=[str(x) for x in noises],
            x_title="weight decay",
            y_title="label noise xi",
        )
        f.data[0].update(zmin=0, zmax=1, texttemplate="%{z:.2f}")
        sec.figure(f)
    sec.table(
        ["xi", "weight decay", "train", "test", "noisy (given)", "noisy (true)", "periodic neurons", "phase"],
        [
            [
                c["label_noise"],
                c["weight_decay"],
                c["train_acc"],
                c["test_acc"],
                c["train_noisy_acc"],
                c["train_noisy_true_acc"],
                c["frac_periodic_neurons"],
                c["phase"],
            ]
            for c in cells
        ],
        left=0,
    )
    study.write()
    return study.results


if __name__ == "__main__":
    main()
