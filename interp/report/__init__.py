"""`interp-report`: one self-contained HTML page on a checkpoint, a run or a zoo entry.

A thin drawing layer: every number comes from `interp`, `probes` or `circuits`; this package only
calls them, draws plotly figures and assembles the page (`interp.report.html`). Each section is a
function `(subject, section) -> dict of its numbers`; a section that does not apply to a model says
so on the page, and one that fails shows its error there (and in the JSON) instead of sinking the
whole report.
"""

from interp.report.build import SECTION_KEYS, SECTIONS, Report, build_report
from interp.report.subject import Subject, load_subject

__all__ = ["Report", "Subject", "build_report", "load_subject", "SECTION_KEYS", "SECTIONS"]
