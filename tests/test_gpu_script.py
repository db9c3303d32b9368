"""bench/gpu.sh, the one-call GPU figures: its CPU smoke run goes through every step and writes one JSON;
a step that fails, hangs or writes nothing is recorded with its error and the others still run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SCRIPTS = {
    "good": "import sys, json; p = sys.argv[sys.argv.index('--json') + 1]; open(p, 'w').write(json.dumps({'x': 1, 'argv': sys.argv[1:]}))",
    "boom": "raise RuntimeError('the step broke')",
    "slow": "import time; time.sleep(60)",
    "silent": "print('no figures')",
}


@pytest.mark.parametrize("launch", ["fork", "spawn"])
def test_failures_and_timeouts_are_recorded_and_the_run_goes_on(tmp_path, launch):
    gpu = load_gpu()
    steps = []
    for name, code in SCRIPTS.items():
        script = tmp_path / f"{name}.py"
        script.write_text(code + "\n")
        steps.append(
            gpu.Step(name, str(script), "", "--device {device}", 60, smoke_limit_s=1 if name == "slow" else 20)
        )
    steps.append(gpu.Step("late", str(tmp_path / "good.py"), "", "", 60, smoke_limit_s=20))
    out = tmp_path / "out"
    report = gpu.run(steps, out, smoke=True, device="cpu", budget=30, launch=launch, echo=lambda line: None)
    assert report == json.loads((out / "figures.json").read_text())
    s = report["steps"]
    assert s["good"]["status"] == "ok" and s["good"]["figures"]["x"] == 1
    assert s["good"]["figures"]["argv"][:2] == ["--device", "cpu"]  # the placeholders are filled
    assert s["boom"]["status"] == "failed" and s["boom"]["exit_code"] == 1
    assert any("the step broke" in line for line in s["boom"]["output_tail"])
    assert s["slow"]["status"] == "timeout" and s["slow"]["wall_s"] < 20
    assert s["silent"]["status"] == "failed" and s["silent"]["error"] == "it wrote no figures"
    assert s["late"]["status"] == "ok"  # everything after the failures still ran
    assert report["summary"] == {name: s[name]["status"] for name in ("good", "boom", "slow", "silent", "late")}
    assert (out / "logs" / "silent.log").read_text().strip() == "no figures"


def test_a_spent_budget_leaves_the_remaining_steps_not_run(tmp_path):
    gpu = load_gpu()
    script = tmp_path / "good.py"
    script.write_text(SCRIPTS["good"] + "\n")
    steps = [gpu.Step(f"s{i}", str(script), "", "", 60) for i in range(2)]
    report = gpu.run(steps, tmp_path / "out", smoke=True, device="cpu", budget=4, launch="fork", echo=lambda line: None)
    assert report["summary"] == {"s0": "not run", "s1": "not run"}
    assert "budget" in report["steps"]["s0"]["error"]


@pytest.mark.slow
def test_cpu_smoke_run_of_gpu_sh_gets_every_figure(tmp_path):
    gpu = load_gpu()
    res = subprocess.run(
        ["bash", "bench/gpu.sh", "--cpu-smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads((tmp_path / "figures.json").read_text())
    assert res.returncode == 0, (res.stdout, res.stderr, {k: v.get("output_tail") for k, v in report["steps"].items()})
    assert report["mode"] == "cpu-smoke" and report["device"] == "cpu"
    assert list(report["steps"]) == [s.name for s in gpu.STEPS]
    assert all(status == "ok" for status in report["summary"].values())
    machine = report["machine"]
    assert machine["torch"] and machine["cpu_count"] >= 1 and "cuda" in machine and machine["gpu"] is None
    figures = {name: step["figures"] for name, step in report["steps"].items()}
    grok = figures["grok"]
    assert grok["steps"] == 8 and len(grok["chunks"]) == 2 and grok["wall_s"] > 0  # two chunks: the second resumed
    assert grok["final"]["step"] == 8 and grok["grokked"] is False and grok["stopped"] == "max_steps"
    assert [h["step"] for h in grok["curve"]] == [0, 4, 8]
    assert figures["train"]["sweeps"][0]["models"] == 2 and figures["train"]["sweeps"][0]["speedup"] > 0
    assert figures["probes"]["transformer"]["agree"] and figures["probes"]["filtration"]["agree"]
    assert figures["circuits"]["patching_closed_form_max_diff"] < 1e-4
    assert figures["diffusion"]["copy_fraction"]["samples"] == 400
    assert figures["raf"]["closed_form"][0]["kernel_ridge"]["max_diff"] < 1e-8
    assert len(figures["reference"]["engine_vs_reference"]) == 4  # full batch and minibatches, float64 and float32
    assert all(row["weights"] < 1e-5 for row in figures["reference"]["engine_vs_reference"])
