"""One self-contained HTML page of sections, tables and plotly figures (works offline).

plotly.js is embedded once, in one <script>; each figure is stored as JSON in its own
<script type="application/json"> and drawn by a small loader with `Plotly.newPlot`, so a page
with twenty figures carries the 4.8 MB library once, not twenty times.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import plotly.io as pio
from plotly.offline import get_plotlyjs

from interp.checkpoints import atomic_write_bytes

FIGURE_CLASS = "grokscope-figure"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.subtitle { color: #555; margin-top: 0; }
.note { background: #f6f6f6; border-left: 4px solid #999; padding: 0.5em 0.8em; }
.na { background: #fff8e1; border-left: 4px solid #e0a800; padding: 0.5em 0.8em; }
.verdict { font-size: 1.3em; font-weight: 600; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
nav ul { columns: 2; } .grokscope-figure { width: 100%; min-height: 380px; }
code { background: #f2f2f2; padding: 0 0.2em; }
"""

_LOADER = """
(function () {
  var nodes = document.querySelectorAll('script[type="application/json"][data-figure]');
  nodes.forEach(function (node) {
    try {  // one broken figure must not stop the others from drawing
      var fig = JSON.parse(node.textContent);
      var div = document.getElementById(node.getAttribute('data-figure'));
      Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
    } catch (err) {
      console.error('grokscope: figure ' + node.getAttribute('data-figure') + ' failed: ' + err);
    }
  });
})();
"""


def format_number(x) -> str:
    """A number for a table cell: ints as is, floats to 4 significant digits, NaN/None as an em dash."""
    if x is None:
        return "\u2014"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "\u2014"
        return f"{x:.4g}"
    return str(x)


@dataclass
class Section:
    """One titled part of a page: paragraphs, tables and figures in order, or a not-applicable notice."""

    title: str
    anchor: str
    blocks: list = field(default_factory=list)  # ("html", str) | ("figure", plotly Figure)

    def text(self, s: str, cls: str | None = None) -> Section:
        """A paragraph of plain text (escaped)."""
        attr = f' class="{cls}"' if cls else ""
        self.blocks.append(("html", f"<p{attr}>{html.escape(s)}</p>"))
        return self

    def raw(self, s: str) -> Section:
        """Trusted HTML written by grokscope itself (never user input)."""
        self.blocks.append(("html", s))
        return self

    def not_applicable(self, reason: str) -> Section:
        """Say why this section does not apply to the model instead of failing."""
        return self.text(reason, cls="na")

    def table(self, header: list[str], rows: list[list], left: int = 1) -> Section:
        """A table; the first `left` columns are left-aligned labels, the rest formatted numbers."""
        th = "".join(
            f'<th class="l">{html.escape(str(h))}</th>' if i < left else f"<th>{html.escape(str(h))}</th>"
            for i, h in enumerate(header)
        )
        body = []
        for row in rows:
            cells = "".join(
                f'<td class="l">{html.escape(format_number(v))}</td>'
                if i < left
                else f"<td>{html.escape(format_number(v))}</td>"
                for i, v in enumerate(row)
            )
            body.append(f"<tr>{cells}</tr>")
        self.blocks.append(("html", f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"))
        return self

    def figure(self, fig) -> Section:
        """A plotly figure (drawn by the page's loader)."""
        self.blocks.append(("figure", fig))
        return self

    @property
    def n_figures(self) -> int:
        return sum(1 for kind, _ in self.blocks if kind == "figure")


def _figure_json(fig) -> str:
    # "</" inside a <script> would end it early; JSON allows "<\/" for the same string.
    return pio.to_json(fig, validate=False).replace("</", "<\\/")


class Page:
    """A report page: a title, a subtitle and a list of sections; `render()` returns the HTML."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.sections: list[Section] = []

    def section(self, title: str, anchor: str | None = None) -> Section:
        anchor = anchor or "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
        s = Section(title, anchor)
        self.sections.append(s)
        return s

    @property
    def n_figures(self) -> int:
        return sum(s.n_figures for s in self.sections)

    def render(self) -> str:
        """The whole page as one HTML string: plotly.js embedded once, figures as JSON."""
        parts, n = [], 0
        for s in self.sections:
            parts.append(f'<section id="{html.escape(s.anchor)}"><h2>{html.escape(s.title)}</h2>')
            for kind, obj in s.blocks:
                if kind == "html":
                    parts.append(obj)
                else:
                    fid = f"fig-{n}"
                    n += 1
                    parts.append(f'<div id="{fid}" class="{FIGURE_CLASS}"></div>')
                    parts.append(f'<script type="application/json" data-figure="{fid}">{_figure_json(obj)}</script>')
            parts.append("</section>")
        nav = "".join(f'<li><a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a></li>' for s in self.sections)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="grokscope-figures" content="{n}">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body>"
            f'<h1>{html.escape(self.title)}</h1><p class="subtitle">{html.escape(self.subtitle)}</p>'
            f"<nav><ul>{nav}</ul></nav>{''.join(parts)}<script>{_LOADER}</script></body></html>\n"
        )

    def write(self, path) -> None:
        """Write the page to `path` (atomically)."""
        atomic_write_bytes(path, self.render().encode("utf-8"))
