"""Every example study runs in its quick setting and writes a JSON of sane results and an HTML page."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str, module_name: str):
    """Import examples/<name>.py as `module_name`, registered in sys.modules first (as importlib's
    recipe says: dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_example(name: str, tmp_path: Path) -> dict:
    """Run examples/<name>.py --quick --out tmp_path in this process; return its JSON (as written)."""
    module = load_example(name, f"example_{name}")
    module.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    html = (tmp_path / f"{name}.html").read_text()
    assert html.count('class="grokscope-figure"') >= 2
    results = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["study"] == name and results["setting"] == "quick"
    return results


def is_acc(x) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


@pytest.mark.slow(seconds=20)
def test_coexistence_quick(tmp_path):
    r = run_example("coexistence", tmp_path)
    s = r["settings"]
    cells = r["cells"]
    assert len(cells) == len(s["widths"]) * len(s["noises"])
    assert all(
        c["status"] == "complete" and is_acc(c["test_acc"]) and is_acc(c["filtration_g_test_acc"]) for c in cells
    )
    widest = {c["label_noise"]: c for c in cells if c["width"] == max(s["widths"])}
    for noise in (0.5, 0.8):  # heavy noise: the widest model memorises every noisy label
        assert widest[noise]["train_noisy_acc"] >= 0.99
    # the coexistence claim: under 50% noise the output is memorisation, yet filtration recovers the rule
    assert widest[0.5]["test_acc"] < 0.1
    assert widest[0.5]["filtration_g_test_acc"] >= 0.9
    assert widest[0.0]["filtration_g_test_acc"] >= 0.95
    assert {row["score"] for row in r["ablation_table"]} == {"ipr", "strength", "spread"}


@pytest.mark.slow(seconds=90)
def test_grokking_vs_fraction_quick(tmp_path):
    r = run_example("grokking_vs_fraction", tmp_path)
    runs = r["runs"]
    for row in runs:
        assert is_acc(row["final_test_acc"])
        if row["steps_to_test_99"] is not None:
            assert row["steps_to_train_99"] is not None and row["steps_to_test_99"] >= row["steps_to_train_99"]
    assert len(runs) == len(r["settings"]["ops"]) * len(r["settings"]["fractions"]) * len(r["settings"]["seeds"])
    summary = {(row["op"], row["frac_train"]): row for row in r["summary"]}
    assert summary[("x+y", 0.8)]["median_steps_to_test_99"] is not None  # plenty of data: addition generalises
    slow = summary[("x+y", 0.4)]["median_steps_to_test_99"]
    assert slow is None or slow >= summary[("x+y", 0.8)]["median_steps_to_test_99"]  # less data: slower or never
    for op in r["settings"]["ops"]:  # Power et al.: less training data, less generalisation in the same budget
        assert summary[(op, 0.8)]["mean_final_test_acc"] > summary[(op, 0.4)]["mean_final_test_acc"], op


@pytest.mark.slow(seconds=35)
def test_capacity_quick(tmp_path):
    r = run_example("capacity", tmp_path)
    ts, cap = r["timescales"], r["capacity"]
    assert ts["params"] == sorted(ts["params"]) and len(ts["params"]) == len(r["settings"]["widths"])
    t_mem = [t for t in ts["t_mem"] if t is not None]
    assert t_mem, "the largest models memorise random labels"
    assert ts["t_mem"][-1] is not None  # the widest model memorises
    bits = cap["plateau_bits"]
    assert all(b >= 0 for b in bits) and bits[-1] > bits[0]  # more parameters hold more bits
    assert all(0 < bpp < 64 for bpp in cap["bits_per_param"])
    assert cap["slope_bits_per_param"] > 0


@pytest.mark.slow
def test_clock_pizza_quick(tmp_path):
    r = run_example("clock_pizza", tmp_path)
    by_rate = {m["attention_rate"]: m for m in r["by_rate"]}
    assert set(by_rate) == set(r["settings"]["rates"])
    for m in r["models"]:
        assert -1.0 <= m["gradient_symmetricity"] <= 1.0 and m["distance_irrelevance"] >= 0
        assert m["verdict"] in ("clock", "pizza", "neither")
    # uniform attention is a pizza (Zhong et al.: symmetricity ~0.99 for alpha <= 0.5)
    assert by_rate[0.0]["median_symmetricity"] >= 0.95
    assert by_rate[0.0]["median_symmetricity"] > by_rate[1.0]["median_symmetricity"]


# Doshi et al.'s phase rules (docs/papers.md, G.4) written out as one condition per phase, independently of
# probes.memorization.phase: train / test accuracy against 90% and against 1.05 - xi.
DOSHI_RULES = {
    "coexistence": lambda train, test, xi: train >= 0.9 and test >= 0.9,
    "partial inversion": lambda train, test, xi: test >= 0.9 and 1.05 - xi <= train < 0.9,
    "full inversion": lambda train, test, xi: test >= 0.9 and train < 0.9 and train < 1.05 - xi,
    "memorisation": lambda train, test, xi: test < 0.9 and train >= 0.9,
    "forgetting": lambda train, test, xi: test < 0.9 and train < 0.9,
}


def check_doshi_phases(r: dict) -> None:
    """The cells of examples/doshi_phase.py --quick: every phase is the one rule that holds, and the cells whose
    phase this setting leaves in no doubt have it."""
    s = r["settings"]
    assert len(r["cells"]) == len(s["noises"]) * len(s["decays"])
    for c in r["cells"]:
        assert is_acc(c["train_acc"]) and is_acc(c["test_acc"])
        holding = [ph for ph, rule in DOSHI_RULES.items() if rule(c["train_acc"], c["test_acc"], c["label_noise"])]
        assert holding == [c["phase"]], c  # the quick grid has xi >= 0.2, where the five rules never overlap
        assert math.isclose(c["full_inversion_train_acc"], 1 - c["label_noise"] + c["label_noise"] / s["p"])
    cells = {(c["label_noise"], c["weight_decay"]): c for c in r["cells"]}
    for xi in s["noises"]:
        # weight decay 30 collapses every network to chance (train and test ~1/p): forgetting
        assert cells[xi, 30.0]["phase"] == "forgetting" and cells[xi, 30.0]["test_acc"] < 0.1
    heavy = [xi for xi in s["noises"] if xi >= 0.35]
    assert heavy, "the quick grid has a noise level of at least 0.35"
    for xi in heavy:
        # no weight decay: every noisy label fitted (train 100%) and the rule lost (test ~1/p): memorisation
        c = cells[xi, 0.0]
        assert c["phase"] == "memorisation" and c["train_acc"] == 1.0 and c["test_acc"] < 0.1
    assert sum(r["phase_counts"].values()) == len(r["cells"])
    assert len([k for k, v in r["phase_counts"].items() if v]) >= 2  # the diagram is not one colour


@pytest.mark.slow(seconds=80)
def test_doshi_phase_quick(tmp_path):
    check_doshi_phases(run_example("doshi_phase", tmp_path))


@pytest.mark.slow
def test_groups_quick(tmp_path):
    r = run_example("groups", tmp_path)
    clean = [c for c in r["cells"] if c["label_noise"] == 0.0]
    noisy = [c for c in r["cells"] if c["label_noise"] > 0.0]
    nontrivial = {"(3,1)", "(2,2)", "(2,1,1)", "sign"}
    for c in clean:  # Chughtai et al.: key irreps; restricted loss near the full loss, excluded far above it
        reps = c["irreps"]
        assert c["final"]["test_acc"] >= 0.99
        assert reps["key_irreps"] and set(reps["key_irreps"]) <= nontrivial
        assert reps["restricted_loss"] <= reps["loss"] + 0.05
        assert reps["excluded_loss"] >= 0.5 * reps["chance_loss"]
    for c in noisy:  # irrep filtration pulls the rule back out of a network that memorised the noise
        f = c["filtration"]
        assert f["raw"]["train_noisy_acc"] >= 0.95 and f["raw"]["test_acc"] < 0.5
        assert f["g"]["test_acc"] >= 0.85 and f["g"]["test_acc"] >= f["raw"]["test_acc"] + 0.4
        assert f["g"]["train_noisy_true_acc"] >= 0.8
    assert r["answers"]["filtration_recovers_rule"] and r["answers"]["irreps_carrying_the_rule"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_full_setting_without_a_gpu_stops_with_the_fix(tmp_path, capsys):
    module = load_example("capacity", "example_capacity_full")
    with pytest.raises(SystemExit) as exc:
        module.main(["--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--quick" in err and "--device cpu" in err
    assert not any(tmp_path.iterdir())
