"""`interp-report [CHECKPOINT | RUN_DIR | zoo:NAME] -o report.html [--json report.json]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from interp.cli.usage import (
    BAD_INPUT_ERRORS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    UsageError,
    check_output_file,
    exit_status_epilog,
    parse_args,
)
from interp.report import SECTION_KEYS, build_report, load_subject


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interp-report",
        description="One offline HTML report on a checkpoint, a run directory or a zoo entry (default: the default zoo entry).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_status_epilog(
            "a section failed (the page shows its error; the others are drawn)",
            "neither file is left half-written (an -o written before a --json that failed stays)",
        ),
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
    return parser


def _sections(text: str | None) -> list[str] | None:
    """The --sections list, checked before anything is loaded."""
    if text is None:
        return None
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTION_KEYS] or ([] if wanted else [text])
    if unknown:
        raise UsageError(
            f"--sections {text!r}: unknown section {unknown[0]!r}; expected a comma-separated subset of "
            f"{','.join(SECTION_KEYS)}."
        )
    return wanted


def main(argv: list[str] | None = None) -> int:
    """Write one self-contained HTML report (and optionally its numbers as JSON); the exit status
    (0 ok, 1 a section failed, 2 bad input, 3 an I/O failure while writing)."""
    args, status = parse_args(build_parser(), argv)
    if args is None:
        return status
    t0 = time.perf_counter()
    try:
        sections = _sections(args.sections)
        # both outputs are checked before any work: exit status 2 means nothing was written
        check_output_file(args.output, "-o")
        if args.json_path is not None:
            check_output_file(args.json_path, "--json")
            if Path(args.json_path).absolute() == Path(args.output).absolute():
                raise UsageError(f"--json {args.json_path} is the -o file too; expected two different paths.")
        subject = load_subject(args.target, device=args.device)
        report = build_report(subject, sections=sections, progress=not args.no_progress)
    except BAD_INPUT_ERRORS as exc:
        print(f"interp-report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interp-report: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        report.write(args.output, args.json_path)
    except OSError as exc:  # StorageError: the disk filled up or failed since the paths were checked
        print(f"interp-report: I/O failure while writing the report: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    except KeyboardInterrupt:
        print("interp-report: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - t0
    written = args.output + (f" and {args.json_path}" if args.json_path else "")
    print(f"interp-report: wrote {written} on {subject.label} in {seconds:.1f} s", file=sys.stderr)
    for key, msg in report.failed.items():
        print(f"interp-report: section {key!r} failed: {msg}", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
