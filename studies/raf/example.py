"""Farné, Boncoraglio and Zdeborová 2026: when can a learner both generalise a rule and memorise facts?

A teacher sign(w* . x / sqrt(d)) labels a fraction 1 - eps of Gaussian training inputs, random labels
the rest (docs/papers.md, A.1-A.7). State-evolution curves with simulation points for:
- E_gen and E_mem against alpha = n / d: linear ridge (the trade-off), linear SVM, ReLU kernel ridge
  (facts memorised at no cost), random features, Bayes-optimal;
- the lambda scan (linear vs kernel) and the kappa = p / d scan of random features (double descent at kappa = alpha);
- the large-alpha rate: kernel ridge and kernel SVM ~ alpha^-1/2 against Bayes-optimal alpha^-1 (fitted slopes);
- trained two-layer networks (first layer trainable) on the same axes;
- where the facts are: the kernel's rule / lookup split, and filtration and ablation of the two-layer nets;
- the arithmetic bridge: ReLU MLPs on (a + b) mod p with all-class label noise at the same eps, test accuracy
  and noisy-label fit against the training fraction beside E_gen and E_mem against alpha.

    python -m studies.raf.example --quick     # A.6: d = 400, CPU, under 2 minutes
    python -m studies.raf.example             # A.7: d = 2000, 5 seeds, n up to 32k, GPU
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from plotly.subplots import make_subplots

from interp.report import figures
from interp.report.study import Study, parse_args
from interp.train_config import TrainConfig
from studies.raf import (
    RAFSpec,
    arithmetic_bridge,
    default_bridge_config,
    kernel_fact_split,
    simulate,
    state_evolution,
    train_two_layer_sweep,
    two_layer_fact_location,
)
from studies.raf.simulation import errors, mean_and_se


@dataclass(frozen=True)
class Settings:
    d: int = 400  # input dimension of the closed-form simulations
    epsilon: float = 0.2  # fact fraction
    alphas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # simulation points of the alpha curves
    seeds: int = 2
    n_test: int = 5000
    linear_lam: float = 1e-3  # the alpha curves: near the min-norm / max-margin limits
    kernel_lam: float = 1e-3
    rf_kappa: float = 4.0  # random features of the alpha curves (peak at alpha = kappa)
    rf_d: int = 200
    svm_d: int = 100  # libsvm at C = 1000 is slow past separability: the SVM runs smaller,
    svm_seeds: int = 4  # with more seeds (80 facts per data set at alpha = 4)
    scan_alpha: float = 2.0  # the lambda and kappa scans
    scan_lams: tuple[float, ...] = (1e-3, 0.1, 1.0, 10.0)
    scan_kappas: tuple[float, ...] = (1.0, 2.0, 8.0)
    rate_d: int = 100  # kernel simulations at large alpha, with the Gaussian-equivalent kernel: the exact
    # ReLU kernel leaves the proportional regime when n ~ d^2 (d = 100, alpha = 16: E_gen 0.197 against 0.096)
    rate_alphas: tuple[float, ...] = (4.0, 8.0, 16.0)
    net_d: int = 50  # two-layer networks
    net_kappa: float = 4.0  # width / d
    net_alphas: tuple[float, ...] = (1.0, 2.0, 4.0)
    net_seeds: int = 2
    net_steps: int = 1000
    net_lr: float = 3e-3
    bridge_p: int = 31  # the arithmetic bridge: (a + b) mod p, all-class label noise at rate epsilon
    bridge_fractions: tuple[float, ...] = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # training fractions
    bridge_widths: tuple[int, ...] = (48, 128)  # ReLU MLPs, ~1.5 p and ~4 p
    bridge_seeds: int = 2
    bridge_steps: int = 600  # full-batch AdamW lr 1e-2, weight decay 1, MSE (default_bridge_config)

    @classmethod
    def quick(cls) -> Settings:
        return cls()

    @classmethod
    def full(cls) -> Settings:
        # dense float64 kernels: n = alpha d <= 32k (alpha <= 16 at d = 2000), seconds each on a GPU
        # bridge widths 150 and 400 (~1.5 p, ~4 p) match the quick widths' n_train / n_params; at p = 97 and weight
        # decay 1 a CPU spot check saw both drop the facts at large f, so wider ones look for where the facts stay
        return cls(
            d=2000, alphas=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0), seeds=5, n_test=10_000, rf_d=1000, svm_d=400, svm_seeds=5,
            scan_lams=(1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0), scan_kappas=(0.5, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0),
            rate_d=1000, rate_alphas=(4.0, 8.0, 16.0, 32.0), net_d=200, net_kappa=16.0,
            net_alphas=(1.0, 2.0, 4.0, 8.0, 16.0), net_seeds=5, net_steps=5000, net_lr=1e-3, bridge_p=97,
            bridge_fractions=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95), bridge_widths=(150, 400, 1024, 4096),
            bridge_seeds=5, bridge_steps=2000,
        )  # fmt: skip


CURVES = {  # name: (learner, keyword arguments of state_evolution / simulate besides alpha)
    "linear ridge": ("linear", {"loss": "square"}),
    "linear SVM": ("linear", {"loss": "hinge"}),
    "kernel ridge (ReLU)": ("kernel", {"loss": "square"}),
    "random features": ("random_features", {"loss": "square"}),
}


def _curve_kwargs(s: Settings, name: str) -> dict:
    learner, kw = CURVES[name]
    lam = s.linear_lam if learner == "linear" else s.kernel_lam
    return {**kw, "lam": lam, **({"kappa": s.rf_kappa} if learner == "random_features" else {})}


def theory(s: Settings) -> dict:
    """State-evolution curves: against alpha, lambda, kappa, and the large-alpha rate."""
    eps, grid = s.epsilon, np.geomspace(0.25, 16, 33).tolist()
    se = lambda learner, **kw: state_evolution(learner, epsilon=eps, **kw).to_dict()  # noqa: E731
    out = {"alpha": grid, "vs_alpha": {}}
    for name, (learner, _) in CURVES.items():
        out["vs_alpha"][name] = [se(learner, alpha=a, **_curve_kwargs(s, name)) for a in grid]
    out["vs_alpha"]["Bayes-optimal"] = [se("bayes_optimal", alpha=a, lam=None) for a in grid]
    out["lam"] = np.geomspace(1e-4, 100, 25).tolist()
    out["vs_lam"] = {k: [se(k, alpha=s.scan_alpha, lam=lam) for lam in out["lam"]] for k in ("linear", "kernel")}
    out["kappa"] = np.geomspace(0.25, 64, 33).tolist()
    out["vs_kappa"] = [se("random_features", alpha=s.scan_alpha, lam=s.kernel_lam, kappa=k) for k in out["kappa"]]
    out["rate_alpha"] = np.geomspace(1, 256, 17).tolist()
    out["rate"] = {
        "kernel ridge": [se("kernel", alpha=a, lam=1e-3) for a in out["rate_alpha"]],
        "kernel SVM": [se("kernel", alpha=a, lam=1e-3, loss="hinge") for a in out["rate_alpha"]],
        "Bayes-optimal": [se("bayes_optimal", alpha=a, lam=None) for a in out["rate_alpha"]],
        "linear ridge (lam = 1)": [se("linear", alpha=a, lam=1.0) for a in out["rate_alpha"]],
    }
    return out


def simulations(s: Settings, device, log) -> list[dict]:
    """Finite-d simulation points for every curve and scan, each tagged with its curve."""

    def point(tag, alpha, learner, d, seeds=s.seeds, **kw):
        spec = RAFSpec(alpha, s.epsilon, d=d, n_test=s.n_test)
        return {"curve": tag, **simulate(spec, learner, seeds=seeds, device=device, **kw).to_dict()}

    out = []
    for name, (learner, _) in CURVES.items():
        d = {"linear SVM": s.svm_d, "random features": s.rf_d}.get(name, s.d)
        log(f"alpha curve: {name} at d = {d}")
        seeds = s.svm_seeds if name == "linear SVM" else s.seeds
        out += [point(name, a, learner, d, seeds, **_curve_kwargs(s, name)) for a in s.alphas]
    log("lambda scan, kappa scan, large alpha")
    for learner in ("linear", "kernel"):
        out += [point(f"lam scan {learner}", s.scan_alpha, learner, s.d, lam=lam) for lam in s.scan_lams]
    out += [
        point("kappa scan", s.scan_alpha, "random_features", s.rf_d, lam=s.kernel_lam, kappa=k) for k in s.scan_kappas
    ]
    ge = "gaussian_equivalent"
    out += [point("rate kernel ridge", a, "kernel", s.rate_d, lam=1e-3, kernel=ge) for a in s.rate_alphas]
    return out


def train(s: Settings, device, log) -> dict:
    """Theory curves, closed-form simulations, the trained two-layer networks and the arithmetic bridge's MLPs."""
    trained = {"theory": theory(s), "simulations": simulations(s, device, log)}
    config = TrainConfig(
        steps=s.net_steps, lr=s.net_lr, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0,
        eval_every=max(1, s.net_steps // 10),
    )  # fmt: skip
    jobs = [(RAFSpec(a, s.epsilon, d=s.net_d, n_test=s.n_test), s.net_kappa) for a in s.net_alphas]
    log(f"two-layer networks: {len(jobs)} alphas x {s.net_seeds} seeds, width {round(s.net_kappa * s.net_d)}")
    trained["nets"] = train_two_layer_sweep(jobs, seeds=s.net_seeds, lam=0.0, config=config, device=device)
    trained["bridge"] = train_bridge(s, device, log)
    return trained


def train_bridge(s: Settings, device, log):
    """ReLU MLPs on (a + b) mod p, label noise eps over all classes, every fraction, width and seed: one sweep."""
    log(f"arithmetic bridge: p = {s.bridge_p}, {len(s.bridge_fractions)} fractions x widths {s.bridge_widths}")
    config = dataclasses.replace(default_bridge_config(), steps=s.bridge_steps, eval_every=s.bridge_steps)
    return arithmetic_bridge(
        s.epsilon, s.bridge_fractions, p=s.bridge_p, widths=s.bridge_widths, seeds=s.bridge_seeds,
        train_config=config, device=device,
    )  # fmt: skip


def measure(s: Settings, trained: dict, device) -> dict:
    """Slopes, sim-vs-theory agreement, the kernel's fact split, the networks' fact location."""
    th = trained["theory"]
    big = [i for i, a in enumerate(th["rate_alpha"]) if a >= 16]
    alphas = np.log([th["rate_alpha"][i] for i in big])

    def slope(rows) -> float:
        return float(np.polyfit(alphas, np.log([rows[i]["e_gen"] for i in big]), 1)[0])

    agreement = []
    for p in trained["simulations"]:
        kw = dict(lam=p["lam"], loss=p["loss"], kappa=p["kappa"], kernel=p["kernel"])
        ref = state_evolution(p["learner"], alpha=p["alpha"], epsilon=p["epsilon"], **kw)
        gaps = (abs(p["e_gen"] - ref.e_gen), abs(p["e_mem"] - ref.e_mem) if p["e_mem"] is not None else None)
        agreement.append({"curve": p["curve"], "alpha": p["alpha"], "lam": p["lam"], "kappa": p["kappa"], "d": p["d"],
                          "e_gen_sim": p["e_gen"], "e_gen_theory": ref.e_gen, "e_mem_sim": p["e_mem"],
                          "e_mem_theory": ref.e_mem, "gap_gen": gaps[0], "gap_mem": gaps[1]})  # fmt: skip
    nets = []
    for job in trained["nets"]:
        errs = {k: mean_and_se(v) for k, v in simulate_errors(job.fit(), job).items()}
        loc = two_layer_fact_location(job)
        nets.append({"alpha": job.data.spec.alpha, "width": job.W.shape[1], "e_gen": errs["e_gen"][0],
                     "e_gen_se": errs["e_gen"][1], "e_mem": errs["e_mem"][0], "e_mem_se": errs["e_mem"][1],
                     "location": loc.to_dict()})  # fmt: skip
    split_spec = RAFSpec(s.scan_alpha, s.epsilon, d=s.d, n_test=s.n_test)
    splits = [kernel_fact_split(split_spec, lam=lam, device=device).to_dict() for lam in s.scan_lams]
    for sp in splits:
        sp.pop("per_fact")
    return {
        "slopes": {name: slope(rows) for name, rows in th["rate"].items() if name != "linear ridge (lam = 1)"},
        "agreement": agreement,
        "max_gap_gen": max(a["gap_gen"] for a in agreement),
        "max_gap_mem": max(a["gap_mem"] for a in agreement if a["gap_mem"] is not None),
        "two_layer": nets,
        "kernel_fact_split": splits,
        "arithmetic_bridge": trained["bridge"].to_dict(),
    }


def simulate_errors(fit, nets) -> dict:
    """Per-seed errors of a two-layer fit."""
    return errors(fit.h_train, fit.h_test, nets.data)


LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0}  # busy figures


def _theory_lines(fig, x, rows_by_name: dict, key: str, colors: dict) -> None:
    for name, rows in rows_by_name.items():
        fig.add_scatter(x=x, y=[r[key] for r in rows], mode="lines", name=f"{name} (theory)",
                        line={"color": colors.get(name)}, legendgroup=name)  # fmt: skip


def _sim_points(fig, points: list[dict], x_key: str, key: str, name: str, color) -> None:
    fig.add_scatter(
        x=[p[x_key] for p in points], y=[p[key] for p in points], mode="markers", name=f"{name} (d = {points[0]['d']})",
        error_y={"type": "data", "array": [p[f"{key}_se"] or 0 for p in points]}, marker={"color": color, "size": 8},
        legendgroup=name,
    )  # fmt: skip


def render_curves(study, s: Settings, th: dict, sims: list[dict]) -> None:
    """E_gen and E_mem against alpha, the lambda scan and the kappa scan."""
    colors = dict(zip([*CURVES, "Bayes-optimal"], figures.COLORWAY))
    sec = study.page.section("Generalisation and memorisation against alpha")
    sec.text(
        f"eps = {s.epsilon}; linear lam = {s.linear_lam}, kernel / random features lam = {s.kernel_lam}, random features "
        f"kappa = {s.rf_kappa} (ReLU, mu1 = 0.5, mu_star = 0.3014). Lines: state evolution (d -> infinity); markers: "
        f"simulations, mean and standard error over {s.seeds} seeds. Linear models lose the facts past their threshold "
        "(ridge: alpha = 1; max-margin: alpha_c ~ 2.9) while E_gen keeps falling; the kernel memorises every fact at every alpha."
    )
    for key, title in (
        ("e_gen", "E_gen (test error against the rule)"),
        ("e_mem", "E_mem (training error on the facts)"),
    ):
        fig = figures.figure(f"{title} against alpha", "alpha = n / d", key, height=500)
        fig.update_layout(legend=LEGEND_BELOW, margin={"b": 130})
        rows = th["vs_alpha"] if key == "e_gen" else {k: v for k, v in th["vs_alpha"].items() if k != "Bayes-optimal"}
        _theory_lines(fig, th["alpha"], rows, key, colors)
        for name in CURVES:
            _sim_points(fig, [p for p in sims if p["curve"] == name], "alpha", key, name, colors[name])
        fig.update_xaxes(type="log")
        sec.figure(fig)
    sec2 = study.page.section("The lambda scan and the kappa scan")
    sec2.text(
        f"alpha = {s.scan_alpha}. Lambda: the kernel reaches the best linear E_gen (lam_opt = (1 - c^2) / c^2 = 1.45 for "
        "linear ridge) while still memorising; past lam ~ mu_star^2 its lookup table empties and facts are lost. Kappa: "
        "random features memorise every fact iff kappa >= alpha, with the E_gen peak (double descent) at kappa = alpha."
    )
    for key in ("e_gen", "e_mem"):
        fig = figures.figure(f"{key} against lambda", "lambda", key)
        _theory_lines(
            fig,
            th["lam"],
            th["vs_lam"],
            key,
            {"linear": colors["linear ridge"], "kernel": colors["kernel ridge (ReLU)"]},
        )
        for learner, name in (("linear", "linear ridge"), ("kernel", "kernel ridge (ReLU)")):
            _sim_points(
                fig, [p for p in sims if p["curve"] == f"lam scan {learner}"], "lam", key, learner, colors[name]
            )
        fig.update_xaxes(type="log")
        sec2.figure(fig)
    fig = figures.figure("Random features: errors against kappa = p / d", "kappa", "error")
    for key, dash, color in (("e_gen", None, figures.COLORWAY[0]), ("e_mem", "dot", figures.COLORWAY[3])):
        fig.add_scatter(x=th["kappa"], y=[r[key] for r in th["vs_kappa"]], mode="lines", name=f"{key} (theory)",
                        line={"dash": dash, "color": color}, legendgroup=key)  # fmt: skip
        _sim_points(fig, [p for p in sims if p["curve"] == "kappa scan"], "kappa", key, key, color)
    fig.add_vline(x=s.scan_alpha, line_dash="dash", annotation_text="kappa = alpha")
    fig.update_xaxes(type="log")
    sec2.figure(fig)


def render_rate_and_nets(study, s: Settings, th: dict, sims: list[dict], m: dict) -> None:
    """The large-alpha rate, and the two-layer networks on the kernel's axes."""
    sec = study.page.section("The large-alpha rate")
    slopes = ", ".join(f"{k} {v:.3f}" for k, v in m["slopes"].items())
    sec.text(
        f"Theory, eps = {s.epsilon}, lam = 1e-3; fitted log-log slopes of E_gen over alpha >= 16: {slopes}. Kernels decay as "
        "alpha^-1/2 while memorising every fact; the Bayes-optimal error decays as alpha^-1; linear ridge at lam = 1 "
        "generalises like the kernel but forgets the facts (E_mem -> 1/2). The simulation points use the Gaussian-equivalent "
        "kernel: the exact ReLU kernel leaves the proportional regime once n approaches d^2 (at d = 100, alpha = 16 its E_gen "
        "is about 0.20 against the theory's 0.096), so large-alpha checks of the exact kernel need large d (the full setting)."
    )
    fig = figures.figure("E_gen against alpha (log-log)", "alpha", "E_gen", height=480)
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 110})
    for name, rows in th["rate"].items():
        fig.add_scatter(x=th["rate_alpha"], y=[r["e_gen"] for r in rows], mode="lines", name=name)
    _sim_points(
        fig,
        [p for p in sims if p["curve"] == "rate kernel ridge"],
        "alpha",
        "e_gen",
        "kernel ridge sim (Gaussian-equivalent kernel)",
        None,
    )
    nets = m["two_layer"]
    fig.add_scatter(x=[n["alpha"] for n in nets], y=[n["e_gen"] for n in nets], mode="markers", name=f"two-layer net (d = {s.net_d})",
                    error_y={"type": "data", "array": [n["e_gen_se"] or 0 for n in nets]}, marker={"symbol": "diamond", "size": 9})  # fmt: skip
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    sec.figure(fig)
    sec2 = study.page.section("Two-layer networks with a trainable first layer")
    sec2.text(
        f"Width {nets[0]['width']} ReLU networks, d = {s.net_d}, full-batch Adam lr {s.net_lr}, {s.net_steps} steps, square "
        f"loss, no penalty, {s.net_seeds} seeds (one batched run per alpha). Filtration: every neuron's first-layer weight "
        "projected on the teacher direction (rule part) or with that component removed (residual)."
    )
    rows = []
    for n in nets:
        loc = n["location"]
        mean = lambda xs: float(np.mean(xs))  # noqa: E731
        rows.append([n["alpha"], n["e_gen"], n["e_mem"], mean(loc["teacher_weight_share"]), mean(loc["teacher_filtered"]["e_gen"]),
                     mean(loc["teacher_filtered"]["e_mem"]), mean(loc["teacher_residual"]["e_gen"]), mean(loc["teacher_residual"]["e_mem"]),
                     loc["facts_in_separable_neurons"]])  # fmt: skip
    sec2.table(
        ["alpha", "E_gen", "E_mem", "weight share on teacher", "teacher part E_gen", "teacher part E_mem",
         "residual E_gen", "residual E_mem", "facts in separable neurons"], rows, left=0,
    )  # fmt: skip
    sec2.text(f"Verdict at alpha = {nets[-1]['alpha']}: {nets[-1]['location']['verdict']}", cls="verdict")
    loc = nets[-1]["location"]
    fig = figures.figure(f"Ablation at alpha = {nets[-1]['alpha']} (network 0)", "fraction of neurons removed", "error")
    for order, dash in (("ablation_least_aligned", None), ("ablation_random", "dot")):
        for key in ("e_gen", "e_mem"):
            label = f"{key}, {'least teacher-aligned first' if order.endswith('aligned') else 'random order'}"
            fig.add_scatter(
                x=loc["ablation_fractions"], y=loc[order][key][0], mode="lines+markers", name=label, line={"dash": dash}
            )
    sec2.figure(fig)


def render_facts(study, s: Settings, m: dict) -> None:
    """The kernel's rule / lookup split, and the simulations against the theory."""
    sec = study.page.section("Where a kernel keeps its facts")
    sec.text(
        f"ReLU arc-cosine kernel ridge, alpha = {s.scan_alpha}, d = {s.d}, one seed. The predictor on a training input splits into a "
        "rule part (linear ridge at lam_eff = (lam + mu_star^2) / mu1^2, the kernel's prediction on fresh inputs) and a "
        "per-sample lookup part (mu_star^2 times the dual coefficient). Shares: mean over samples of y times the part."
    )
    splits = m["kernel_fact_split"]
    lams = [sp["lam"] for sp in splits]
    shares = {
        "rule part": [sp["fact_rule_share"] for sp in splits],
        "lookup part": [sp["fact_lookup_share"] for sp in splits],
    }
    fig = figures.bars("Share of each fact's label carried by each part", lams, shares, x_title="lambda")
    fig.update_xaxes(type="category")  # one bar group per lambda, not a linear lambda axis
    sec.figure(fig)
    sec.table(
        ["lambda", "E_gen", "E_mem", "E_mem of the rule part", "facts stored by the lookup", "test sign agreement"],
        [[sp["lam"], sp["e_gen"], sp["e_mem"], sp["e_mem_rule_part"], sp["facts_stored_by_lookup"], sp["test_sign_agreement"]] for sp in splits],
        left=0,
    )  # fmt: skip
    sec2 = study.page.section("Simulation against theory")
    sec2.text(f"Largest gaps over all simulation points: E_gen {m['max_gap_gen']:.3f}, E_mem {m['max_gap_mem']:.3f}.")
    sec2.table(
        ["curve", "alpha", "lambda", "kappa", "d", "E_gen sim", "E_gen theory", "E_mem sim", "E_mem theory"],
        [[a["curve"], a["alpha"], a["lam"], a["kappa"], a["d"], a["e_gen_sim"], a["e_gen_theory"], a["e_mem_sim"], a["e_mem_theory"]] for a in m["agreement"]],
    )  # fmt: skip


def _one_minus(values: list) -> list:
    return [None if v is None else 1 - v for v in values]


def render_bridge(study, s: Settings, th: dict, b: dict) -> None:
    """E_gen / E_mem against alpha (Gaussian RAF) beside 1 - test accuracy / 1 - noisy fit against f (arithmetic)."""
    tc = b["train_config"]
    sec = study.page.section("Bridge to the arithmetic tasks")
    sec.text(
        f"The same question on (a + b) mod {b['p']}: a fraction eps = {b['epsilon']} of the training labels redrawn uniformly "
        f"over all {b['p']} classes (the facts), the held-out pairs labelled by the rule. ReLU MLPs of widths {b['widths']}, "
        f"full-batch {tc['optimizer']} lr {tc['lr']}, weight decay {tc['weight_decay']}, {tc['loss']} loss, {tc['steps']} steps, "
        f"mean and standard error over seeds {b['seeds']}, one batched sweep. 1 - test accuracy plays E_gen; 1 - the fit of "
        "the redrawn labels (against the labels given, counting the ~1/p redrawn to the true class, as RAF's facts agree "
        "with the teacher half the time) plays E_mem; alpha = n_train / p (samples per input dimension of an operand; "
        "width / p plays kappa). A width whose noisy fit falls as its test accuracy rises repeats the linear trade-off; "
        "one that keeps every fact while generalising, the kernel."
    )
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"Gaussian RAF, eps = {s.epsilon} (theory)",
                        f"(a + b) mod {b['p']}, eps = {b['epsilon']}"))  # fmt: skip
    fig.update_layout(template=figures.template(), height=500, legend=LEGEND_BELOW, margin={"b": 140})
    for name, color in (("linear ridge", figures.COLORWAY[0]), ("kernel ridge (ReLU)", figures.COLORWAY[2])):
        for key, dash in (("e_gen", None), ("e_mem", "dot")):
            fig.add_scatter(x=th["alpha"], y=[r[key] for r in th["vs_alpha"][name]], mode="lines", name=f"{name}: {key}",
                            line={"color": color, "dash": dash}, row=1, col=1)  # fmt: skip
    for w, width in enumerate(b["widths"]):
        for key, label, dash in (("test_acc", "1 - test accuracy", None), ("noisy_fit", "1 - noisy fit", "dot")):
            se = b[f"{key}_se"][w] if b[f"{key}_se"] is not None else None
            fig.add_scatter(
                x=b["fractions"], y=_one_minus(b[key][w]), mode="lines+markers", name=f"width {width}: {label}",
                error_y={"type": "data", "array": [v or 0 for v in se]} if se else None, customdata=b["alpha"],
                hovertemplate="f = %{x}, alpha = n/p = %{customdata:.1f}: %{y:.3f}", row=1, col=2,
                line={"color": figures.COLORWAY[3 + w % 7], "dash": dash},
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="alpha = n / d", row=1, col=1)
    fig.update_xaxes(title_text="training fraction f", row=1, col=2)
    fig.update_yaxes(title_text="error", row=1, col=1)
    fig.update_yaxes(title_text="1 - accuracy", row=1, col=2)
    sec.figure(fig)
    rows = [[width, f, b["n_train"][i], b["alpha"][i], b["samples_per_parameter"][w][i], b["n_noisy"][i],
             b["resampled_to_true"][i], b["test_acc"][w][i], b["noisy_fit"][w][i], b["clean_fit"][w][i]]
            for w, width in enumerate(b["widths"]) for i, f in enumerate(b["fractions"])]  # fmt: skip
    sec.table(["width", "f", "n_train", "alpha = n / p", "n / parameters", "facts", "facts redrawn to the true label",
               "test accuracy", "noisy fit", "clean fit"], rows, left=2)  # fmt: skip


def render(study, s: Settings, trained: dict, measured: dict) -> None:
    """The page: curves, scans, the rate, the networks, the facts, the arithmetic bridge."""
    sims = trained["simulations"]
    render_curves(study, s, trained["theory"], sims)
    render_rate_and_nets(study, s, trained["theory"], sims, measured)
    render_facts(study, s, measured)
    render_bridge(study, s, trained["theory"], measured["arithmetic_bridge"])


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(
        "rules_and_facts", "The Rules-and-Facts model: theory, simulations, where the facts are.", argv,
        script="studies/raf/example.py",
    )  # fmt: skip
    s = Settings.quick() if args.quick else Settings.full()
    device = None if args.device == "auto" and args.quick else args.device
    study = Study(
        "rules_and_facts", "Rules and facts: generalising a rule while memorising facts", args,
        script="studies/raf/example.py",
    )  # fmt: skip
    study.results["settings"] = asdict(s)
    trained = train(s, device, study.log)
    measured = measure(s, trained, device)
    study.results.update(theory=trained["theory"], simulations=trained["simulations"], **measured)
    render(study, s, trained, measured)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
