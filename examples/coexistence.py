"""The coexistence paper: memorisation and generalisation side by side in two-layer MLPs under label noise.

A width sweep (model-wise double descent) of ReLU MLPs f(a, b) = W relu(U e_a + V e_b) + mu on
(a + b) mod p with 0-80% of the training labels replaced by wrong classes; for every model:
- clean vs noisy memorisation speed (the first step each subset reaches 99%, probes.memorization);
- frequency filtration (probes.extraction): the dominant-frequency network G and the residual R;
- the task-agnostic partition (circuits.partition, strength score ||w||_inf relu(||u||_inf + ||v||_inf)):
  the top half of neurons alone against the bottom half alone;
and, for the widest model at each noise level, an ablation table over three neuron scores.

    python examples/coexistence.py --quick    # p = 23, 5 widths x 3 noise levels, CPU
    python examples/coexistence.py            # p = 113, widths 2^k + 1 (k = 4..12) x 5 noise levels, GPU
"""

from __future__ import annotations


def settings(quick: bool) -> dict:
    if quick:
        return dict(
            p=23,
            widths=(9, 33, 129, 257, 513),
            noises=(0.0, 0.5, 0.8),
            steps=1500,
            lr=1e-2,
            weight_decay=1.0,
            eval_every=25,
        )
    return dict(
        p=113,
        widths=tuple(2**k + 1 for k in range(4, 13)),
        noises=(0.0, 0.2, 0.4, 0.6, 0.8),
        steps=20000,
        lr=1e-3,
        weight_decay=0.1,
        eval_every=100,
    )


SCORES = ("ipr", "strength", "spread")


def main(argv: list[str] | None = None) -> dict:
    from circuits.partition import partition
    from interp import TaskSpec
    from interp.models import MLPConfig
    from interp.report import figures
    from interp.report.study import Study, parse_args
    from interp.train import TrainConfig, train_many
    from probes.extraction import frequency_filtration
    from probes.memorization import learning_curves

    args = parse_args(
        "coexistence", "The coexistence paper: width sweep under label noise, filtration and partitions.", argv
    )
    s = settings(args.quick)
    study = Study("coexistence", "Memorisation and generalisation coexisting under label noise", args)
    study.results["settings"] = s
    jobs, cells = [], []
    for noise in s["noises"]:
        for width in s["widths"]:
            task = TaskSpec("x+y", s["p"], 0.5, label_noise=noise, noise_kind="other", seed=args.seed)
            model = MLPConfig(p=s["p"], width=width, act="relu", bias=True)
            cfg = TrainConfig(
                steps=s["steps"],
                lr=s["lr"],
                weight_decay=s["weight_decay"],
                eval_every=s["eval_every"],
                seed=args.seed,
                device=args.device,
            )
            jobs.append((model, task, cfg))
            cells.append({"label_noise": noise, "width": width, "n_params": model.n_params})
    study.log(f"training {len(jobs)} MLPs ({s['steps']} steps each, batched by width)")
    runs = train_many(jobs)
    study.log("filtration and partitions")
    widest = max(s["widths"])
    ablation_table = []
    for cell, run in zip(cells, runs):
        f = run.final
        curves = learning_curves(run, threshold=0.99)
        filt = frequency_filtration(run.model, run.task)
        agn = partition(run.model, run.task, scores="strength", filtration=False)
        cell.update(
            status=run.status,
            train_clean_acc=f["train_clean_acc"],
            train_noisy_acc=f["train_noisy_acc"],
            test_acc=f["test_acc"],
            test_loss=f["test_loss"],
            step_clean_99=curves.first_reach.get("train_clean"),
            step_noisy_99=curves.first_reach.get("train_noisy"),
            filtration_g_test_acc=filt.metrics["g"]["test_acc"],
            filtration_r_test_acc=filt.metrics["r"]["test_acc"],
            filtration_g_train_noisy_acc=filt.metrics["g"]["train_noisy_acc"],
            filtration_r_train_noisy_acc=filt.metrics["r"]["train_noisy_acc"],
            strength_g_test_acc=agn.metrics["g"]["test_acc"],
            strength_r_test_acc=agn.metrics["r"]["test_acc"],
            strength_g_train_noisy_acc=agn.metrics["g"]["train_noisy_acc"],
        )
        if cell["width"] == widest:
            for score in SCORES:
                part = agn if score == "strength" else partition(run.model, run.task, scores=score, filtration=False)
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
    study.results["cells"] = cells
    study.results["ablation_table"] = ablation_table

    noises, widths = list(s["noises"]), list(s["widths"])

    def by_noise(key):
        return {
            f"{n:.0%} noise": [next(c[key] for c in cells if c["label_noise"] == n and c["width"] == w) for w in widths]
            for n in noises
        }

    sec = study.page.section("Width sweep")
    sec.text(
        f"ReLU MLPs with an output bias on (a + b) mod {s['p']}, train fraction 0.5, label noise over the p - 1 wrong classes; "
        f"AdamW lr {s['lr']}, weight decay {s['weight_decay']}, {s['steps']} full-batch steps."
    )
    sec.figure(
        figures.lines(
            "Test accuracy against width (model-wise double descent)",
            widths,
            by_noise("test_acc"),
            x_title="width",
            y_title="test accuracy",
            log_x=True,
        )
    )
    sec.figure(
        figures.lines(
            "Test loss against width",
            widths,
            by_noise("test_loss"),
            x_title="width",
            y_title="test cross-entropy",
            log_x=True,
            log_y=True,
        )
    )
    sec2 = study.page.section("Clean vs noisy memorisation speed")
    noisy_cells = [c for c in cells if c["label_noise"] > 0]
    sec2.text(
        "First step at which clean and noisy training examples (against their given labels) reach 99% accuracy; a dash: never."
    )
    sec2.table(
        ["noise", "width", "clean 99% at", "noisy 99% at"],
        [[c["label_noise"], c["width"], c["step_clean_99"], c["step_noisy_99"]] for c in noisy_cells],
        left=0,
    )
    sec3 = study.page.section("Frequency filtration vs the task-agnostic partition")
    sec3.text(
        "Test accuracy of the original network, of frequency filtration's G (each neuron's dominant frequency kept) and of the task-agnostic "
        "partition's G (the top half of neurons by strength alone)."
    )
    for n in noises:
        mine = [c for c in cells if c["label_noise"] == n]
        sec3.figure(
            figures.lines(
                f"{n:.0%} label noise",
                widths,
                {
                    "original": [c["test_acc"] for c in mine],
                    "filtration G": [c["filtration_g_test_acc"] for c in mine],
                    "strength partition G": [c["strength_g_test_acc"] for c in mine],
                },
                x_title="width",
                y_title="test accuracy",
                log_x=True,
                colors={
                    "original": figures.PALETTE["full"],
                    "filtration G": figures.PALETTE["g"],
                    "strength partition G": "#ff7f0e",
                },
            )
        )
    sec4 = study.page.section("Ablation table (widest model)")
    sec4.text("Each score's top half (G) or bottom half (R) of the neurons kept alone, the others zero-ablated.")
    sec4.table(
        ["noise", "score", "kept", "test", "clean train", "noisy train (given)"],
        [
            [r["label_noise"], r["score"], r["kept"].upper(), r["test_acc"], r["train_clean_acc"], r["train_noisy_acc"]]
            for r in ablation_table
        ],
        left=0,
    )
    study.write()
    return study.results


if __name__ == "__main__":
    main()
