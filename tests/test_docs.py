"""The repository is self-contained in what it cites: the papers' setups, formulas and numbers live in
docs/papers.md, every "docs/papers.md, X.Y" citation names a section that exists there, and no file
cites a document the repository does not have."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT / "docs" / "papers.md"

# Documents that lived outside the repository once; spelled in pieces so that this file does not cite them.
FOREIGN = ("PAPERS" + "-WAVE2", "REFERENCES" + ".md", ".." + "/shared")

_SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "node_modules", "build", "dist"}
_SKIP_TOP = {"runs", "out"}  # run directories and bench output (ignored by git)
LABEL = r"[ABG]\.\d+"
# "docs/papers.md, B.3", "docs/papers.md, A.1, A.3, A.4", "docs/papers.md, B.5-B.7", "docs/papers.md, B.5 / B.6"
CITATION = re.compile(rf"docs/papers\.md,\s+({LABEL}(?:\s*(?:,|-|/|and)\s*{LABEL})*)")
BARE_LABEL = re.compile(rf"(?<![\w.]){LABEL}(?![\d])")


def repository_files():
    """Every text file of the working tree (not virtual environments, caches, run output or binaries)."""
    for dirpath, dirnames, filenames in os.walk(ROOT):
        here = Path(dirpath)
        keep = []
        for d in dirnames:
            if d in _SKIP_DIRS or d.startswith(".venv") or d == "venv" or d.endswith(".egg-info"):
                continue
            if here == ROOT and d in _SKIP_TOP:
                continue
            if (here / d / "pyvenv.cfg").exists():
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            path = here / name
            if path.stat().st_size > 2_000_000:
                continue
            data = path.read_bytes()
            if b"\0" in data:
                continue  # safetensors and other binaries
            yield path, data.decode("utf-8", errors="replace")


def section_labels() -> dict[str, str]:
    """{label: heading} of docs/papers.md's numbered sections, each checked to carry its anchor."""
    lines = PAPERS.read_text(encoding="utf-8").splitlines()
    labels = {}
    for i, line in enumerate(lines):
        m = re.match(rf"^#+\s+({LABEL})\s", line)
        if m:
            label = m.group(1)
            anchor = f'<a id="{label.lower().replace(".", "")}"></a>'
            assert i > 0 and lines[i - 1].strip() == anchor, f"docs/papers.md: section {label} needs {anchor} above it"
            assert label not in labels, f"docs/papers.md: section {label} appears twice"
            labels[label] = line
    return labels


def test_papers_doc_has_the_sections_the_code_grew_up_with():
    labels = section_labels()
    for label in [f"A.{i}" for i in range(1, 8)] + [f"B.{i}" for i in range(1, 9)] + [f"G.{i}" for i in range(1, 9)]:
        assert label in labels, f"docs/papers.md has no section {label}"
    text = PAPERS.read_text(encoding="utf-8")
    for anchor in re.findall(r"\]\(#([\w-]+)\)", text):  # the contents' and references' links resolve
        assert f'<a id="{anchor}"></a>' in text, f"docs/papers.md links to #{anchor}, which does not exist"


def test_nothing_cites_a_document_outside_the_repository():
    offenders = []
    for path, text in repository_files():
        for n, line in enumerate(text.splitlines(), 1):
            for foreign in FOREIGN:
                if foreign in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {foreign}")
    assert not offenders, "cite docs/papers.md (or the paper: authors, year, section) instead:\n" + "\n".join(offenders)


def test_every_papers_citation_names_an_existing_section():
    labels = section_labels()
    cited, wrong, unanchored = 0, [], []
    for path, text in repository_files():
        rel = path.relative_to(ROOT)
        if path == PAPERS:
            continue
        for m in CITATION.finditer(text):
            for label in re.findall(LABEL, m.group(1)):
                cited += 1
                if label not in labels:
                    wrong.append(f"{rel}: docs/papers.md, {label}")
        # A bare section label ("B.6's recipe") is read against docs/papers.md: the file must say so,
        # and the label must exist there.
        bare = set(BARE_LABEL.findall(text))
        if bare and "docs/papers.md" not in text:
            unanchored.append(f"{rel}: {sorted(bare)}")
        wrong += [f"{rel}: {label}" for label in sorted(bare) if label not in labels]
    assert cited >= 20  # the studies and probes cite it throughout; a broken pattern would find none
    assert not wrong, "sections that docs/papers.md does not have:\n" + "\n".join(wrong)
    assert not unanchored, "section labels in a file that never names docs/papers.md:\n" + "\n".join(unanchored)


def test_readme_and_architecture_link_the_papers_doc():
    assert "(docs/papers.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(papers.md)" in (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
