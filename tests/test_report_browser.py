"""The report renders in a real browser: every figure drawn, no JavaScript errors (headless Chromium)."""

from __future__ import annotations

import os

import pytest

from interp.report import build_report
from interp.report.browser import check_rendering, find_chromium

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("GROKSCOPE_REQUIRE_CHROMIUM") == "1":
    raise RuntimeError("GROKSCOPE_REQUIRE_CHROMIUM=1 but no Chromium was found: apt-get install chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium chromium-driver); CI installs it",
)


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("entry", ["zoo:mlp-noise50-large", "zoo:grok-transformer"])
def test_every_report_figure_renders_in_chromium_without_javascript_errors(entry, tmp_path):
    report = build_report(entry)
    assert not report.failed
    path = tmp_path / "report.html"
    report.write(path)
    seen = check_rendering(path, chromium=CHROMIUM)
    assert seen.errors == []
    assert seen.figures == report.page.n_figures > 0
    assert seen.plots == seen.figures
    assert seen.rendered == seen.figures, f"{seen.figures - seen.rendered} of {seen.figures} figures drew no SVG"


@pytest.mark.slow
@needs_chromium
def test_browser_check_catches_a_broken_figure_and_a_script_error(tmp_path):
    import plotly.graph_objects as go

    from interp.report.html import Page

    page = Page("broken on purpose")
    sec = page.section("figures")
    sec.figure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    sec.figure(go.Figure(go.Bar(x=["a"], y=[1])))
    html = page.render().replace('data-figure="fig-1">{', 'data-figure="fig-1">{{', 1)  # corrupt one figure's JSON
    html = html.replace("<nav>", "<script>notAFunction();</script><nav>", 1)
    path = tmp_path / "broken.html"
    path.write_text(html)
    seen = check_rendering(path, chromium=CHROMIUM)
    assert seen.figures == 2 and seen.rendered == 1
    assert any("notAFunction" in e for e in seen.errors)
    assert any("fig-1" in e for e in seen.errors)
    assert not seen.ok
