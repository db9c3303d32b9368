"""Song and Ye 2026: model capacity decides grokking through competing memorisation and generalisation speeds.

For each model size P: T_mem(P), the steps until training accuracy first reaches 99% on random
labels over the training pairs of a * b^-1 mod p (memorisation alone), and T_gen(P), the steps until
test accuracy first reaches 99% on the real task; their crossing in log-log space; the grokking
delay max(0, E_val - E_train) on the real task; and memorised bits on random labels at two dataset
sizes, whose plateau per parameter is the capacity (probes.memorization).

    python examples/capacity.py --quick     # two-layer MLPs, p = 41, 3 widths, 1 seed, CPU
    python examples/capacity.py             # p = 97, 8 widths, 10 seeds, GPU
"""

from __future__ import annotations


def settings(quick: bool) -> dict:
    if quick:
        # At p = 23 no width generalises on division within the budget; at p = 41 the widest do.
        return dict(
            p=41,
            widths=(16, 64, 256),
            seeds=(0,),
            steps=1500,
            lr=1e-2,
            weight_decay=1.0,
            random_fracs=(0.5, 0.9),
            eval_every=25,
        )
    return dict(
        p=97,
        widths=(8, 16, 32, 64, 128, 256, 512, 1024),
        seeds=tuple(range(10)),
        steps=30000,
        lr=3e-3,
        weight_decay=1.0,
        random_fracs=(0.25, 0.5, 0.9),
        eval_every=50,
    )


def main(argv: list[str] | None = None) -> dict:
    from interp import TaskSpec
    from interp.models import MLPConfig
    from interp.report import figures
    from interp.report.study import Study, parse_args
    from interp.train import TrainConfig, train_many
    from probes.memorization import capacity, grokking_delay, memorized_bits, timescales

    args = parse_args(
        "capacity", "Song and Ye: T_mem and T_gen across model sizes, their crossing, capacity in bits.", argv
    )
    s = settings(args.quick)
    study = Study("capacity", "Capacity and grokking: memorisation and generalisation speeds across model sizes", args)
    study.results["settings"] = s
    jobs, kinds = [], []
    for width in s["widths"]:
        for seed in s["seeds"]:
            model = MLPConfig(p=s["p"], width=width, act="relu")
            cfg = TrainConfig(
                steps=s["steps"],
                lr=s["lr"],
                weight_decay=s["weight_decay"],
                eval_every=s["eval_every"],
                seed=args.seed + seed,
                device=args.device,
            )
            jobs.append((model, TaskSpec("x/y", s["p"], 0.5, seed=args.seed + seed), cfg))
            kinds.append(("real", width, seed, 0.5))
            for frac in s["random_fracs"]:
                # random labels carry no rule: weight decay would only fight memorisation
                rcfg = TrainConfig.from_dict({**cfg.to_dict(), "weight_decay": 0.0})
                jobs.append((model, TaskSpec("x/y", s["p"], frac, random_labels=True, seed=args.seed + seed), rcfg))
                kinds.append(("random", width, seed, frac))
    study.log(f"training {len(jobs)} MLPs ({s['steps']} steps each)")
    runs = train_many(jobs)
    real = [r for k, r in zip(kinds, runs) if k[0] == "real"]
    mem = [r for k, r in zip(kinds, runs) if k[0] == "random" and k[3] == 0.5]
    ts = timescales(mem, real)
    bits = [memorized_bits(r.model, r.task) for k, r in zip(kinds, runs) if k[0] == "random"]
    cap = capacity(bits)
    delays = [
        {"width": k[1], "seed": k[2], "n_params": r.model_config.n_params, **grokking_delay(r).to_dict()}
        for k, r in zip(kinds, runs)
        if k[0] == "real"
    ]
    study.results.update(
        timescales=ts.to_dict(),
        capacity=cap.to_dict(),
        grokking=delays,
        runs=[
            {
                "kind": k[0],
                "width": k[1],
                "seed": k[2],
                "frac_train": k[3],
                "n_params": r.model_config.n_params,
                "final_train_acc": r.final["train_acc"],
                "final_test_acc": r.final["test_acc"],
            }
            for k, r in zip(kinds, runs)
        ],
    )
    crossing = ts.crossing_params
    grokked = [d for d in delays if d["delay"] is not None and d["delay"] > 0]
    study.results["grokking_appears_at_params"] = min((d["n_params"] for d in grokked), default=None)

    sec = study.page.section("Memorisation and generalisation times")
    sec.text(
        f"Two-layer ReLU MLPs on a / b mod {s['p']} (train fraction 0.5), AdamW lr {s['lr']}, {s['steps']} steps. T_mem: first step at "
        "99% training accuracy on random labels (no weight decay); T_gen: first step at 99% test accuracy on the real task; median over "
        f"seeds, runs that never get there left out of the plot. Crossing (log-log): {f'{crossing:,.0f} parameters' if crossing else 'none in range'}."
    )
    fig = figures.figure("T_mem and T_gen against parameter count", "parameters", "steps", height=420)
    fin = lambda xs: [x if x is not None and x == x and x != float("inf") else None for x in xs]  # noqa: E731
    fig.add_scatter(
        x=ts.params,
        y=fin(ts.t_mem),
        mode="lines+markers",
        name="T_mem (random labels)",
        line={"color": figures.PALETTE["train_noisy"]},
    )
    fig.add_scatter(
        x=ts.params,
        y=fin(ts.t_gen),
        mode="lines+markers",
        name="T_gen (real task)",
        line={"color": figures.PALETTE["test"]},
    )
    if crossing:
        fig.add_vline(x=crossing, line_dash="dash", annotation_text="crossing")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    sec.figure(fig)
    sec.table(
        ["parameters", "T_mem", "T_gen", "grokking delay (E_val 98% - E_train 99%)"],
        [
            [p, tm, tg, next((d["delay"] for d in delays if d["n_params"] == p), None)]
            for p, tm, tg in zip(ts.params, fin(ts.t_mem), fin(ts.t_gen))
        ],
        left=0,
    )
    sec2 = study.page.section("Capacity in bits")
    sec2.text(
        f"Memorised bits on random labels, sum_i max(0, log2 V + log2 p(y_i | x_i)), at train fractions {list(s['random_fracs'])}; capacity = "
        f"the plateau over dataset sizes per parameter. Fitted slope: {cap.slope_bits_per_param:.3g} bits per parameter "
        "(Morris et al.: about 3.6 for GPT-style models; Song and Ye: about 2.2 for a 2-layer transformer)."
    )
    fig2 = figures.figure("Memorised bits (plateau) against parameters", "parameters", "bits", height=400)
    fig2.add_scatter(x=cap.params, y=cap.plateau_bits, mode="lines+markers", name="plateau bits")
    fig2.add_scatter(
        x=cap.params, y=[p * 2.2 for p in cap.params], mode="lines", name="2.2 bits/param", line={"dash": "dot"}
    )
    fig2.update_xaxes(type="log")
    fig2.update_yaxes(type="log")
    sec2.figure(fig2)
    sec2.table(
        ["parameters", "plateau bits", "bits per parameter"],
        [[p, b, bp] for p, b, bp in zip(cap.params, cap.plateau_bits, cap.bits_per_param)],
        left=0,
    )
    study.write()
    return study.results


if __name__ == "__main__":
    main()
