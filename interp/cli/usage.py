"""What the command lines share: one meaning per exit status, and argparse value types whose errors
name the flag, what was given and what was expected."""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from interp.errors import CheckpointError, DeviceError, GrokscopeError, RunLockedError, ShapeError, SpecError

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran and something in it failed (a run diverged, a section failed, a mismatch)
EXIT_BAD_INPUT = 2  # nothing was done: a flag, a file or a spec that cannot be used as given
EXIT_STORAGE = 3  # an I/O failure after work started (disk full, filesystem failing): what was written is kept
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class UsageError(GrokscopeError):
    """A setting the command line cannot turn into what it asks for (exit status 2)."""


# Errors that mean the input cannot be used as given: exit status 2.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (
    UsageError,
    SpecError,
    ShapeError,
    DeviceError,
    CheckpointError,
    RunLockedError,
)


def exit_status_epilog(failed: str, storage: str = "what was written before is kept", bad_input: str = "") -> str:
    """The `--help` epilog that documents the exit statuses; `failed` says what status 1 means here,
    `storage` what an I/O failure (status 3) leaves, `bad_input` this command's own kinds of bad input."""
    return (
        "exit status:\n"
        f"  {EXIT_OK}    ok\n"
        f"  {EXIT_FAILED}    {failed}\n"
        f"  {EXIT_BAD_INPUT}    bad input: an unknown flag or value, an unparsable number, a missing or unreadable\n"
        "       file, an impossible spec, an output path that cannot be written" + (f", {bad_input}" if bad_input else "")
        + ";\n       the message names the flag or field, what was given and what is expected, and nothing\n"
        "       was written\n"
        f"  {EXIT_STORAGE}    I/O failure after work started: the disk filled up or the filesystem failed; the\n"
        f"       message names the file and the space needed and free; {storage}\n"
        f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"
    )  # fmt: skip


def check_output_file(path, flag: str) -> Path:
    """Check, before any work, that `path` can be written as a file; UsageError naming `flag` if not.

    Its folder (or the nearest existing ancestor, where the folders would be made) must be a writable
    folder, checked by creating and removing a probe file there; `path` itself must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; expected a file path to write.")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is a file, not a folder; expected a file path in a folder.")
    probe = folder / f".grokscope-write-check-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc}). Expected a path you can write; "
            "nothing was done."
        ) from None
    return path


def check_output_folder(path, flag: str) -> Path:
    """Check, before any work, that `path` can be a folder to write in: not a file, and in a writable
    folder (or the nearest existing ancestor, where the folders would be made); UsageError naming `flag`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file; expected a folder to write the run into.")
    if path.is_dir():
        check_output_file(path / ".grokscope-probe", flag)  # a probe file inside the folder itself
    else:
        check_output_file(path, flag)
    return path


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace | None, int]:
    """Parse `argv`; (args, 0), or (None, status) when argparse stopped (2 on bad input, 0 after --help)."""
    try:
        return parser.parse_args(argv), EXIT_OK
    except SystemExit as exc:  # argparse has printed its message already
        code = exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
        return None, code


def typed(kind: str, convert: Callable[[str], object], check: Callable[[object], bool] | None = None) -> Callable:
    """An argparse `type=` that converts with `convert` and says `expected {kind}, got '...'` if it cannot.

    argparse prefixes the flag: `argument --p: expected an int, got 'x'`."""

    def parse(text: str):
        try:
            value = convert(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if check is not None and not check(value):
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
        return value

    parse.__name__ = kind
    return parse


def parse_bool(text: str) -> bool:
    """'true'/'false' (also 1/0, yes/no, on/off) as a bool."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


non_negative_float = typed("a number >= 0", float, lambda v: v >= 0 and v == v)
positive_int = typed("a positive int", int, lambda v: v > 0)
