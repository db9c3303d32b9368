"""`interp-report [CHECKPOINT | RUN_DIR | zoo:NAME] -o report.html [--json report.json]`."""

from __future__ import annotations

import argparse
import sys
import time

from interp.errors import GrokscopeError
from interp.report import SECTION_KEYS, build_report, load_subject


def main(argv: list[str] | None = None) -> int:
    """Write one self-contained HTML report (and optionally its numbers as JSON); exit 1 if a section failed."""
    parser = argparse.ArgumentParser(
        prog="interp-report",
        description="One offline HTML report on a checkpoint, a run directory or a zoo entry (default: the default zoo entry).",
    )
    parser.add_argument(
        "target",
        nargs="?",
        default=None,
        help="a run directory, a .safetensors checkpoint, or zoo:NAME (default: the default zoo entry)",
    )
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")
    parser.add_argument(
        "--json", dest="json_path", default=None, help="also write every number in the report as JSON here"
    )
    parser.add_argument("--sections", default=None, help=f"comma-separated subset of: {','.join(SECTION_KEYS)}")
    parser.add_argument(
        "--device", default=None, help="cpu | cuda | cuda:N (default: where the checkpoint loads, the CPU)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)


    t0 = time.perf_counter()
    try:
        subject = load_subject(args.target, device=args.device)
        sections = [s.strip() for s in args.sections.split(",")] if args.sections else None
        report = build_report(subject, sections=sections, progress=not args.no_progress)
        report.write(args.output, args.json_path)
    except GrokscopeError as exc:
        print(f"interp-report: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    written = args.output + (f" and {args.json_path}" if args.json_path else "")
    print(f"interp-report: wrote {written} on {subject.label} in {seconds:.1f} s", file=sys.stderr)
    for key, msg in report.failed.items():
        print(f"interp-report: section {key!r} failed: {msg}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
