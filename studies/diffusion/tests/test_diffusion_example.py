"""studies/diffusion/example.py --quick runs end to end and writes a JSON of sane results and an HTML page."""

from __future__ import annotations

import json

import pytest

from studies.diffusion import example


@pytest.mark.slow
def test_distillation_example_quick(tmp_path):
    example.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    assert (tmp_path / "distillation.html").read_text().count('class="grokscope-figure"') >= 4
    r = json.loads((tmp_path / "distillation.json").read_text())
    assert r["study"] == "distillation" and r["setting"] == "quick"
    run = r["runs"][0]
    rows = {row["key"]: row for row in run["distillation"]}
    teacher, student = rows["teacher"], rows["student_1"]
    assert teacher["f_mem"] > 0.6 and student["f_mem"] <= 0.25 * teacher["f_mem"]
    assert abs(student["fd"] - teacher["fd"]) <= 0.2 and rows["control"]["f_mem"] >= teacher["f_mem"] - 0.05
    assert rows["fresh"]["f_mem"] < 0.01
    curve = {(c["n"], c["step"]): c["f_mem"] for c in run["curves"]}
    assert curve[(16, 2000)] > curve[(64, 2000)] + 0.15
    assert run["rf_timescales"]["tau_mem"][0] < run["rf_timescales"]["tau_mem"][-1]
