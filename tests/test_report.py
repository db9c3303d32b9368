"""interp-report: one offline HTML page whose numbers are the probes' and circuits' own."""

from __future__ import annotations

import json

import pytest
import torch

from interp import zoo
from interp.cli.report import main as report_main
from interp.report import SECTION_KEYS, build_report
from interp.report.html import Page
from interp.results import to_jsonable as jsonable


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    """`interp-report` with no argument: the default zoo entry, HTML and JSON."""
    out = tmp_path_factory.mktemp("report")
    html, js = out / "report.html", out / "report.json"
    assert report_main(["-o", str(html), "--json", str(js), "--no-progress"]) == 0
    return html.read_text(), json.loads(js.read_text())


def test_report_with_no_argument_reports_on_the_default_zoo_entry(default_report):
    html, numbers = default_report
    assert numbers["failed"] == {}
    assert set(numbers["sections"]) == set(SECTION_KEYS)
    assert numbers["sections"]["summary"]["zoo"] == zoo.DEFAULT_ENTRY
    assert f"zoo:{zoo.DEFAULT_ENTRY}" in html


def test_report_embeds_plotly_once_and_works_offline(default_report):
    html, _ = default_report
    assert html.count("window.Plotly") >= 1  # the library itself, inline
    assert html.count("<script src=") == 0  # nothing fetched from the network
    assert html.count("plotly.js v") <= 2  # one copy of the library (its banner), not one per figure
    n = int(html.split('name="grokscope-figures" content="')[1].split('"')[0])
    assert n == html.count('class="grokscope-figure"') >= 8


def test_report_numbers_are_the_probes_numbers(default_report):
    """The JSON carries what circuits.filtration and circuits compute on the same checkpoint: nothing re-derived."""
    from circuits.filtration import frequency_filtration

    _, numbers = default_report
    ckpt = zoo.load(zoo.DEFAULT_ENTRY)
    res = frequency_filtration(ckpt.model, ckpt.task)
    got = numbers["sections"]["filtration"]["metrics"]
    for part in ("raw", "g", "r"):
        assert got[part]["test_acc"] == pytest.approx(res.metrics[part]["test_acc"], abs=1e-9)
    summary = numbers["sections"]["summary"]["metrics"]
    assert summary["test_acc"] == pytest.approx(zoo.info(zoo.DEFAULT_ENTRY)["metrics"]["test_acc"], abs=1e-6)


def test_report_shows_frequency_filtration_recovering_the_rule_on_the_default_entry(default_report):
    """The default entry is chosen because filtration is dramatic there: G generalises where the raw network does not."""
    _, numbers = default_report
    m = numbers["sections"]["filtration"]["metrics"]
    assert m["g"]["test_acc"] >= m["raw"]["test_acc"] + 0.2
    assert m["g"]["test_acc"] >= 0.9


def test_sections_that_do_not_apply_say_so_instead_of_failing(default_report):
    html, numbers = default_report
    for key in ("patching", "progress"):  # an MLP with one checkpoint has no positions, heads or trajectory
        assert numbers["sections"][key]["applicable"] is False
    assert html.count('class="na"') >= 2


@pytest.fixture(scope="module")
def trajectory_report():
    return build_report("zoo:grok-transformer")


def test_report_on_a_transformer_trajectory_fills_every_section(trajectory_report):
    rep = trajectory_report
    assert rep.failed == {}
    assert all(rep.numbers[k].get("applicable", True) for k in ("training", "progress", "patching", "clock_pizza"))
    prog = rep.numbers["progress"]
    assert len(prog["steps"]) == len(zoo.load_run("grok-transformer").steps)
    patch = rep.numbers["patching"]
    assert len(patch["resid_pre_restored"][0]) == 3  # positions a, b, =


def test_report_on_a_run_directory_trained_here(tmp_path):
    from interp import TaskSpec
    from interp.models import MLPConfig
    from interp.train import TrainConfig, train

    run = tmp_path / "run"
    train(
        MLPConfig(p=23, width=64, act="quad"),
        TaskSpec("x+y", 23, 0.5, label_noise=0.2),
        TrainConfig(steps=300, lr=1e-2, eval_every=50),
        out=run,
    )
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    assert (
        report_main(
            [str(run), "-o", str(html), "--json", str(js), "--no-progress", "--sections", "summary,training,spectra"]
        )
        == 0
    )
    numbers = json.loads(js.read_text())
    assert set(numbers["sections"]) == {"summary", "training", "spectra"}
    assert numbers["sections"]["summary"]["task_spec"]["label_noise"] == 0.2
    assert numbers["sections"]["training"]["steps"][-1] == 300


def test_report_on_a_missing_path_fails_with_a_clear_message(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope"), "-o", str(tmp_path / "r.html"), "--no-progress"]) == 2  # bad input
    err = capsys.readouterr().err
    assert "does not exist" in err and "zoo:" in err


def test_a_failing_section_is_shown_on_the_page_and_the_rest_still_render(monkeypatch):
    import interp.report.sections_fourier as sf

    def broken(*args, **kwargs):
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(sf, "key_freqs", broken)  # the probe the key-frequency section calls
    rep = build_report(f"zoo:{zoo.DEFAULT_ENTRY}", sections=["summary", "key_frequencies"])
    assert "probe exploded" in rep.failed["key_frequencies"]
    assert "summary" not in rep.failed
    assert "This section failed: RuntimeError: probe exploded" in rep.html()


def test_page_escapes_text_and_keeps_figure_json_inside_its_script():
    import plotly.graph_objects as go

    page = Page("<b>title</b>")
    sec = page.section("s")
    sec.text("a < b & c")
    sec.figure(go.Figure(go.Scatter(x=[1], y=[2], name="</script><script>alert(1)</script>")))
    html = page.render()
    assert "&lt;b&gt;title&lt;/b&gt;" in html and "a &lt; b &amp; c" in html
    assert "</script><script>alert(1)" not in html


def test_jsonable_makes_strict_json_of_tensors_nan_and_results():
    out = jsonable({"t": torch.tensor([1.0, float("nan")]), 1: float("inf"), "n": torch.tensor(3)})
    assert out == {"t": [1.0, None], "1": None, "n": 3}
    json.dumps(out, allow_nan=False)


def test_report_of_a_group_task_draws_irreps_where_it_drew_frequencies():
    rep = build_report(
        "zoo:group-mlp-noise20", sections=["spectra", "key_frequencies", "filtration", "representations", "ablation"]
    )
    assert not rep.failed, rep.failed
    n = rep.numbers
    names = ["trivial", "(3,1)", "(2,2)", "(2,1,1)", "sign"]
    assert n["spectra"]["irreps"] == names and n["spectra"]["group"] == "S4"
    assert (
        n["key_frequencies"]["key_frequencies"]["embedding"] == [] and n["key_frequencies"]["key_irreps"]["embedding"]
    )
    assert n["filtration"]["metrics"]["g"]["test_acc"] > 0.9
    assert list(n["representations"]["irreps"]) == names
    assert "irrep" in rep.html()


def test_report_of_a_task_on_no_group_says_which_basis_it_draws(tmp_path):
    from interp import Task, TaskSpec
    from interp.checkpoints import save
    from interp.models import MLPConfig, build_model

    task = Task(TaskSpec(op="x^2+y^2", p=13, frac_train=0.5))
    save(tmp_path / "run", build_model(MLPConfig(p=13, width=16), seed=0), task)
    rep = build_report(
        str(tmp_path / "run"), sections=["spectra", "key_frequencies", "filtration", "representations", "ablation"]
    )
    assert not rep.failed, rep.failed
    assert rep.numbers["representations"]["applicable"] is False
    assert "is no group" in rep.html()  # the page says why the spectra are in Z_p's additive basis
