"""Building a report: run every section on a subject, collect its numbers, assemble the page."""

from __future__ import annotations

import html
import sys
import time
import traceback
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from interp.checkpoints import atomic_write_bytes
from interp.errors import SpecError
from interp.report import sections_basic, sections_circuits, sections_fourier, sections_groups, sections_progress
from interp.report.html import Page
from interp.report.subject import Subject, load_subject
from interp.results import dumps

# (key, title, section function) of every section, in page order.
SECTIONS = (
    ("summary", "Task and model", sections_basic.summary),
    ("training", "Training curves", sections_basic.training_curves),
    ("spectra", "Neuron Fourier spectra and classification", sections_fourier.neuron_spectra),
    ("key_frequencies", "Key frequencies", sections_fourier.key_frequencies),
    ("filtration", "Frequency filtration", sections_fourier.frequency_filtration),
    ("representations", "Irreps: Chughtai et al.'s measurements", sections_groups.representations),
    ("ablation", "Neuron partitions: ablation and pruning", sections_circuits.ablation),
    ("clock_pizza", "Clock or pizza", sections_circuits.clock_pizza),
    ("progress", "Progress measures over the trajectory", sections_progress.progress_measures),
    ("patching", "Activation patching", sections_circuits.patching),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)


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
            atomic_write_bytes(json_path, dumps(self.to_dict()).encode())

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
        raise SpecError("report", "sections", unknown, f"keys from {list(SECTION_KEYS)}")
    page = Page(f"grokscope report: {subject.label}", _subtitle(subject))
    todo = [s for s in SECTIONS if s[0] in wanted]
    bar = None
    if progress:
        bar = tqdm(total=len(todo), desc="report", unit="section", file=sys.stderr, dynamic_ncols=True)
    numbers, failed, seconds = {}, {}, {}
    for key, title, section_fn in todo:
        if bar is not None:
            bar.set_postfix_str(key)
        sec = page.section(title, anchor=key)
        t0 = time.perf_counter()
        try:
            numbers[key] = section_fn(subject, sec)
        except Exception as exc:  # one broken section must not hide the others
            msg = f"{type(exc).__name__}: {exc}"
            failed[key] = msg
            numbers[key] = {"error": msg}
            sec.blocks.clear()
            sec.text(f"This section failed: {msg}", cls="na")
            sec.raw(f"<details><summary>traceback</summary><pre>{html.escape(traceback.format_exc())}</pre></details>")
        seconds[key] = round(time.perf_counter() - t0, 3)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return Report(page, numbers, failed, seconds)


def _subtitle(subject: Subject) -> str:
    spec = subject.task.spec
    arch = subject.checkpoint.model_config.describe()
    noise = f", {spec.label_noise:.0%} label noise" if spec.label_noise else ""
    return f"{spec.op} mod {spec.p}{noise}; {arch}; step {subject.checkpoint.step}"
