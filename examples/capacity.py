"""Song and Ye 2026: model capacity decides grokking through competing memorisation and generalisation speeds.

For each model size P: T_mem(P), the steps until training accuracy first reaches 99% on random
labels over the training pairs of a * b^-1 mod p (memorisation alone), and T_gen(P), the steps until
test accuracy first reaches 99% on the real task; their crossing in log-log space; the grokking
delay max(0, E_val - E_train) on the real task; and memorised bits on random labels at several dataset
sizes, whose plateau per parameter is the capacity (probes.memorization).

    python examples/capacity.py --quick     # two-layer MLPs, p = 41, 3 widths, 1 seed, CPU
    python examples/capacity.py             # p = 97, 8 widths, 10 seeds, GPU
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
from probes.memorization import capacity, grokking_delay, memorized_bits, timescales


@dataclass(frozen=True)
class Settings:
    """MLP widths and seeds, AdamW's schedule, and the train fractions of the random-label runs."""

    p: int
    widths: tuple[int, ...]
    seeds: tuple[int, ...]  # offsets added to --seed
    steps: int
    lr: float
    weight_decay: float  # of the real-task runs; the random-label runs have none
    random_fracs: tuple[float, ...]  # dataset sizes for the memorised-bits plateau (0.5 also gives T_mem)
    eval_every: int

    @classmethod
    def quick(cls) -> Settings:
        """The CPU setting. At p = 23 no width generalises on division within the budget; at p = 41 the widest do."""
        return cls(
            p=41,
            widths=(16, 64, 256),
            seeds=(0,),
            steps=1500,
            lr=1e-2,
            weight_decay=1.0,
            random_fracs=(0.5, 0.9),
            eval_every=25,
        )

    @classmethod
    def full(cls) -> Settings:
        """Song and Ye's scale (a GPU)."""
        return cls(
            p=97,
            widths=(8, 16, 32, 64, 128, 256, 512, 1024),
            seeds=tuple(range(10)),
            steps=30000,
            lr=3e-3,
            weight_decay=1.0,
            random_fracs=(0.25, 0.5, 0.9),
            eval_every=50,
        )


def train(s: Settings, seed: int, device: str) -> tuple[list[tuple], list[TrainResult]]:
    """Per width and seed: one MLP on the real task and one on random labels per dataset size; returns
    (kind, width, seed, train fraction) per run, and the runs."""
    jobs, kinds = [], []
    for width in s.widths:
        for offset in s.seeds:
            model = MLPConfig(p=s.p, width=width, act="relu")
            cfg = TrainConfig(
                steps=s.steps,
                lr=s.lr,
                weight_decay=s.weight_decay,
                eval_every=s.eval_every,
                seed=seed + offset,
                device=device,
            )
            jobs.append((model, TaskSpec("x/y", s.p, 0.5, seed=seed + offset), cfg))
            kinds.append(("real", width, offset, 0.5))
            for frac in s.random_fracs:
                # random labels carry no rule: weight decay would only fight memorisation
                random_cfg = dataclasses.replace(cfg, weight_decay=0.0)
                jobs.append((model, TaskSpec("x/y", s.p, frac, random_labels=True, seed=seed + offset), random_cfg))
                kinds.append(("random", width, offset, frac))
    return kinds, train_many(jobs)


def measure(kinds: list[tuple], runs: list[TrainResult]) -> dict:
    """T_mem and T_gen per model size, capacity from memorised bits, the grokking delay of every real run."""
    real = [r for k, r in zip(kinds, runs) if k[0] == "real"]
    mem = [r for k, r in zip(kinds, runs) if k[0] == "random" and k[3] == 0.5]
    bits = [memorized_bits(r.model, r.task) for k, r in zip(kinds, runs) if k[0] == "random"]
    delays = [
        {"width": k[1], "seed": k[2], "n_params": r.model_config.n_params, **grokking_delay(r).to_dict()}
        for k, r in zip(kinds, runs)
        if k[0] == "real"
    ]
    finals = [
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
    ]
    grokked = [d["n_params"] for d in delays if d["delay"] is not None and d["delay"] > 0]
    return {  # Results (Timescales, CapacityEstimate) are written to the JSON as their to_dict()
        "timescales": timescales(mem, real),
        "capacity": capacity(bits),
        "grokking": delays,
        "runs": finals,
        "grokking_appears_at_params": min(grokked, default=None),
    }


def finite(values: list) -> list:
    """The values with None, NaN and infinity as None (a gap in a plot)."""
    return [v if v is not None and v == v and v != float("inf") else None for v in values]


def render(page: Page, s: Settings, results: dict) -> None:
    """Two sections: T_mem and T_gen against model size (with the grokking delay), and capacity in bits."""
    ts, cap, delays = results["timescales"], results["capacity"], results["grokking"]
    crossing = ts.crossing_params
    sec = page.section("Memorisation and generalisation times")
    sec.text(
        f"Two-layer ReLU MLPs on a / b mod {s.p} (train fraction 0.5), AdamW lr {s.lr}, {s.steps} steps. T_mem: first "
        "step at 99% training accuracy on random labels (no weight decay); T_gen: first step at 99% test accuracy on "
        "the real task; median over seeds, runs that never get there left out of the plot. Crossing (log-log): "
        f"{f'{crossing:,.0f} parameters' if crossing else 'none in range'}."
    )
    fig = figures.figure("T_mem and T_gen against parameter count", "parameters", "steps", height=420)
    for times, name, color in (
        (ts.t_mem, "T_mem (random labels)", "train_noisy"),
        (ts.t_gen, "T_gen (real task)", "test"),
    ):
        line = {"color": figures.PALETTE[color]}
        fig.add_scatter(x=ts.params, y=finite(times), mode="lines+markers", name=name, line=line)
    if crossing:
        fig.add_vline(x=crossing, line_dash="dash", annotation_text="crossing")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    sec.figure(fig)
    delay_of = {}
    for d in delays:  # one row per size: the delay of its first seed
        delay_of.setdefault(d["n_params"], d["delay"])
    rows = [[p, tm, tg, delay_of.get(p)] for p, tm, tg in zip(ts.params, finite(ts.t_mem), finite(ts.t_gen))]
    sec.table(["parameters", "T_mem", "T_gen", "grokking delay (E_val 98% - E_train 99%)"], rows, left=0)
    bits = page.section("Capacity in bits")
    bits.text(
        f"Memorised bits on random labels, sum_i max(0, log2 V + log2 p(y_i | x_i)), at train fractions "
        f"{list(s.random_fracs)}; capacity = the plateau over dataset sizes per parameter. Fitted slope: "
        f"{cap.slope_bits_per_param:.3g} bits per parameter (Morris et al.: about 3.6 for GPT-style models; Song and "
        "Ye: about 2.2 for a 2-layer transformer)."
    )
    fig = figures.figure("Memorised bits (plateau) against parameters", "parameters", "bits", height=400)
    fig.add_scatter(x=cap.params, y=cap.plateau_bits, mode="lines+markers", name="plateau bits")
    guide = [p * 2.2 for p in cap.params]
    fig.add_scatter(x=cap.params, y=guide, mode="lines", name="2.2 bits/param", line={"dash": "dot"})
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    bits.figure(fig)
    rows = [list(row) for row in zip(cap.params, cap.plateau_bits, cap.bits_per_param)]
    bits.table(["parameters", "plateau bits", "bits per parameter"], rows, left=0)


def main(argv: list[str] | None = None) -> dict:
    """Run the study (--quick on a CPU) and write out/capacity/capacity.{json,html}."""
    args = parse_args(
        "capacity", "Song and Ye: T_mem and T_gen across model sizes, their crossing, capacity in bits.", argv
    )
    s = Settings.quick() if args.quick else Settings.full()
    study = Study("capacity", "Capacity and grokking: memorisation and generalisation speeds across model sizes", args)
    study.results["settings"] = dataclasses.asdict(s)
    study.log(f"training {len(s.widths) * len(s.seeds) * (1 + len(s.random_fracs))} MLPs ({s.steps} steps each)")
    kinds, runs = train(s, args.seed, args.device)
    study.results.update(measure(kinds, runs))
    render(study.page, s, study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
