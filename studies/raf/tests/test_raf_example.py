"""studies/raf/example.py --quick runs and writes a JSON whose numbers carry the paper's claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studies.raf import example


def run_quick(out: Path) -> dict:
    example.main(["--quick", "--out", str(out), "--device", "cpu"])
    assert (out / "rules_and_facts.html").read_text().count('class="grokscope-figure"') >= 9
    return json.loads((out / "rules_and_facts.json").read_text())


@pytest.mark.slow(seconds=30)
def test_rules_and_facts_quick(tmp_path):
    r = run_quick(tmp_path)
    assert r["study"] == "rules_and_facts" and r["setting"] == "quick"
    # every simulation point agrees with the state evolution within finite-size error
    assert r["max_gap_gen"] <= 0.03 and r["max_gap_mem"] <= 0.06
    # the large-alpha rates: kernels alpha^-1/2, Bayes-optimal alpha^-1
    assert r["slopes"]["kernel ridge"] == pytest.approx(-0.5, abs=0.03)
    assert r["slopes"]["kernel SVM"] == pytest.approx(-0.5, abs=0.03)
    assert r["slopes"]["Bayes-optimal"] == pytest.approx(-1.0, abs=0.05)
    sims = {(p["curve"], p["alpha"]): p for p in r["simulations"]}
    assert sims[("linear ridge", 4.0)]["e_mem"] > 0.25 and sims[("kernel ridge (ReLU)", 4.0)]["e_mem"] == 0.0
    # two-layer networks memorise every fact; the rule sits along the teacher direction
    for net in r["two_layer"]:
        assert net["e_mem"] == 0.0 and net["e_gen"] < 0.4
        assert net["location"]["facts_off_teacher_direction"]
    splits = r["kernel_fact_split"]
    assert splits[0]["fact_lookup_share"] > splits[-1]["fact_lookup_share"]
    # the arithmetic bridge: at eps = 0.2, p = 31, both widths learn the rule as the training fraction grows; the
    # narrow one loses the facts (the linear trade-off), the wide one keeps them (the kernel's regime)
    bridge = r["arithmetic_bridge"]
    assert bridge["epsilon"] == r["settings"]["epsilon"] and bridge["failed"] == []
    narrow, wide = bridge["widths"].index(48), bridge["widths"].index(128)
    test, noisy = bridge["test_acc"], bridge["noisy_fit"]
    assert all(test[w][-1] > test[w][0] + 0.5 for w in (narrow, wide))
    assert noisy[narrow][-1] < noisy[narrow][0] - 0.3 and min(noisy[wide]) > 0.9
    assert json.dumps(r, allow_nan=False)
