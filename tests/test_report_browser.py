"""The report renders in a real browser: every figure drawn, no JavaScript errors.

Playwright drives the system's Chromium (Debian's `chromium`; no browser is downloaded) headless.
Set GROKSCOPE_CHROMIUM to use another executable; GROKSCOPE_REQUIRE_CHROMIUM=1 (CI) turns a missing
Chromium into an error instead of a skip.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go
import pytest
from playwright.sync_api import sync_playwright

from interp.report import build_report
from interp.report.html import Page

CHROMIUM = os.environ.get("GROKSCOPE_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None and os.environ.get("GROKSCOPE_REQUIRE_CHROMIUM") == "1":
    raise RuntimeError("GROKSCOPE_REQUIRE_CHROMIUM=1 but no Chromium was found: apt-get install chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); CI installs it"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Counted in the page: figure containers, plotly's plots, and the plots that hold a drawn <svg class="main-svg">.
# Plotly draws these figures synchronously, so after the load event and two animation frames the counts are final.
COUNT_JS = """async () => {
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return {
    figures: document.querySelectorAll('.grokscope-figure').length,
    plots: plots.length,
    rendered: plots.filter((d) => d.querySelector('svg.main-svg') !== null).length,
  };
}"""


@dataclass(frozen=True)
class RenderCheck:
    """What the browser saw: figure containers, plotly plots, plots with an SVG drawn, and every
    error the page reported (uncaught exceptions, console.error, failed loads)."""

    figures: int
    plots: int
    rendered: int
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 0 < self.figures == self.plots == self.rendered and not self.errors


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def check_rendering(browser, path: Path) -> RenderCheck:
    """Open `path` in a fresh page, wait for the load event, and count what was drawn and what failed."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type in ("error", "assert") else None,
    )
    page.on("requestfailed", lambda request: errors.append(f"failed load: {request.url} ({request.failure})"))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        counts = page.evaluate(COUNT_JS)
    finally:
        page.close()
    return RenderCheck(counts["figures"], counts["plots"], counts["rendered"], errors)


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("entry", ["zoo:mlp-noise50-large", "zoo:grok-transformer"])
def test_every_report_figure_renders_in_chromium_without_javascript_errors(browser, entry, tmp_path):
    report = build_report(entry)
    assert not report.failed
    path = tmp_path / "report.html"
    report.write(path)
    seen = check_rendering(browser, path)
    assert seen.errors == []
    assert seen.figures == report.page.n_figures > 0
    assert seen.plots == seen.figures
    assert seen.rendered == seen.figures, f"{seen.figures - seen.rendered} of {seen.figures} figures drew no SVG"
    assert seen.ok


def two_figure_page() -> str:
    """A small grokscope page with two figures (fig-0 and fig-1), as HTML."""
    page = Page("two figures")
    sec = page.section("figures")
    sec.figure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    sec.figure(go.Figure(go.Bar(x=["a"], y=[1])))
    return page.render()


BREAKAGES = {
    "none": lambda html: html,  # the control: the same page, unbroken, passes
    "corrupt_figure_json": lambda html: html.replace('data-figure="fig-1">{', 'data-figure="fig-1">{{', 1),
    "script_error": lambda html: html.replace("<nav>", "<script>notAFunction();</script><nav>", 1),
    "figure_never_drawn": lambda html: html.replace("Plotly.newPlot(div", "(function () {})(div", 1),
}


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_the_browser_check_fails_a_page_with_a_broken_figure_or_a_script_error(browser, breakage, tmp_path):
    html = two_figure_page()
    broken = BREAKAGES[breakage](html)
    assert (broken == html) == (breakage == "none")  # the breakage did change the page
    path = tmp_path / "page.html"
    path.write_text(broken)
    seen = check_rendering(browser, path)
    assert seen.figures == 2
    if breakage == "none":
        assert seen.ok and seen.rendered == 2
    elif breakage == "corrupt_figure_json":  # one figure drawn, the other reported
        assert seen.rendered == 1 and any("fig-1" in e for e in seen.errors) and not seen.ok
    elif breakage == "script_error":  # every figure drawn, yet the error fails the check
        assert seen.rendered == 2 and any("notAFunction" in e for e in seen.errors) and not seen.ok
    else:  # nothing reported, yet no figure drew: the counts fail the check
        assert seen.rendered == 0 and seen.errors == [] and not seen.ok
