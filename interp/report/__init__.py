"""`interp-report`: one self-contained HTML page on a checkpoint, a run or a zoo entry.

A thin drawing layer: every number comes from `interp`, `probes` or `circuits`; this package only
calls them, draws plotly figures and assembles the page (`interp.report.html`). Each section is a
function `(subject, section) -> dict of its numbers`; a section that does not apply to a model says
so on the page, and one that fails shows its error there (and in the JSON) instead of sinking the
whole report.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field

from interp.checkpoints import atomic_write_bytes
from interp.report.html import Page, json_dumps
from interp.report.subject import Subject, load_subject

# (key, title, "module.function") of every section, in page order; modules are imported when used.
SECTIONS = (
    ("summary", "Task and model", "sections_basic.summary"),
    ("training", "Training curves", "sections_basic.training_curves"),
    ("spectra", "Neuron Fourier spectra and classification", "sections_fourier.neuron_spectra"),
    ("key_frequencies", "Key frequencies", "sections_fourier.key_frequencies"),
    ("filtration", "Frequency filtration", "sections_fourier.frequency_filtration"),
    ("ablation", "Neuron partitions: ablation and pruning", "sections_circuits.ablation"),
    ("clock_pizza", "Clock or pizza", "sections_circuits.clock_pizza"),
    ("progress", "Progress measures over the trajectory", "sections_progress.progress_measures"),
    ("patching", "Activation patching", "sections_circuits.patching"),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)


def _section_function(ref: str):
    import importlib

    module, fn = ref.rsplit(".", 1)
    return getattr(importlib.import_module(f"interp.report.{module}"), fn)


@dataclass
class Report:
    """A built report: the page, every number in it (by section key), the sections that failed."""

    page: Page
    numbers: dict
    failed: dict = field(default_factory=dict)  # key -> error message
    seconds: dict = field(default_factory=dict)  # key -> seconds spent

    def html(self) -> str:
        return self.page.render()

    def write(self, html_path=None, json_path=None) -> None:
        """Write the HTML page and/or the JSON of its numbers (each atomically)."""
        if html_path is not None:
            self.page.write(html_path)
        if json_path is not None:
            atomic_write_bytes(json_path, json_dumps(self.to_dict()).encode())

    def to_dict(self) -> dict:
        return {"format": "grokscope-report", "sections": self.numbers, "failed": self.failed, "seconds": self.seconds}


def build_report(
    subject: Subject | str | None = None, sections: list[str] | None = None, progress: bool = False, device=None
) -> Report:
    """Compute every section on `subject` (a Subject, or a target for `load_subject`: None for the
    default zoo entry, "zoo:NAME", a run directory or a checkpoint file) and assemble the page."""
    if not isinstance(subject, Subject):
        subject = load_subject(subject, device=device)
    wanted = list(sections) if sections is not None else list(SECTION_KEYS)
    unknown = [s for s in wanted if s not in SECTION_KEYS]
    if unknown:
        from interp.errors import SpecError

        raise SpecError("report", "sections", unknown, f"keys from {list(SECTION_KEYS)}")
    page = Page(f"grokscope report: {subject.label}", _subtitle(subject))
    todo = [s for s in SECTIONS if s[0] in wanted]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="report", unit="section", file=sys.stderr, dynamic_ncols=True)
    numbers, failed, seconds = {}, {}, {}
    for key, title, ref in todo:
        if bar is not None:
            bar.set_postfix_str(key)
        sec = page.section(title, anchor=key)
        t0 = time.perf_counter()
        try:
            numbers[key] = _section_function(ref)(subject, sec)
        except Exception as exc:  # one broken section must not hide the others
            msg = f"{type(exc).__name__}: {exc}"
            failed[key] = msg
            numbers[key] = {"error": msg}
            sec.blocks.clear()
            sec.text(f"This section failed: {msg}", cls="na")
            sec.raw(f"<details><summary>traceback</summary><pre>{_escape(traceback.format_exc())}</pre></details>")
        seconds[key] = round(time.perf_counter() - t0, 3)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return Report(page, numbers, failed, seconds)


def _escape(s: str) -> str:
    import html

    return html.escape(s)


def _subtitle(subject: Subject) -> str:
    spec = subject.task.spec
    cfg = subject.checkpoint.model_config
    arch = (
        f"MLP width {cfg.width}, {cfg.act}"
        if cfg.family == "mlp"
        else f"{cfg.n_layers}-layer transformer, d_model {cfg.d_model}"
    )
    noise = f", {spec.label_noise:.0%} label noise" if spec.label_noise else ""
    return f"{spec.op} mod {spec.p}{noise}; {arch}; step {subject.checkpoint.step}"


__all__ = ["Report", "Subject", "build_report", "load_subject", "SECTION_KEYS"]
