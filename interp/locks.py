"""One writer per run directory: `RunLock` and `lock_folders`.

Training (`train`, `train_many`, resume, overwrite; a Ray sweep's driver on behalf of its workers) holds
the lock of every run directory it writes, from before it looks at what is there until it returns.
Loading never needs it.

The lock is filelock's `SoftFileLock` on `RUN_DIR/.grokscope.lock`: a marker file created exclusively
(O_CREAT | O_EXCL), holding the owner's PID, host name and process start time. We chose it over an
flock-style lock because the Ray workers write the run directories on a shared filesystem: exclusive
creation is atomic on NFS (v3 and later) and every host sees the marker, whereas flock locks are local
to one NFS client on many setups, and a sweep of 10,000 runs would hold 10,000 open descriptors. The
price of a marker is that a killed holder leaves it behind; it is handled so:

- on the same host, a holder whose PID no longer runs (or runs a newer process: the start time is
  compared) is dead, and the next writer takes the lock over (filelock swaps the marker atomically);
- on another host a PID cannot be checked, so the lock is refused, naming the holder, and
  `break_lock=True` (`interp-train --break-lock`) takes it over once you know that process is gone.

Beside the marker, `.grokscope.owner.json` says who holds it (PID, host, since when, the command) and
carries a token; each write of the engine checks it (`check_owner`), so a writer whose lock was broken
stops instead of mixing its files with the new owner's. A Ray sweep's driver holds the locks and its
workers write under them: they carry the driver's token and check it the same way. Taking a lock also
removes the temp files a killed writer left in the directory (interp.files.remove_stale_temp_files).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import SoftFileLock, Timeout

from interp.errors import CheckpointError, RunLockedError, StorageError
from interp.files import (
    atomic_write_json,
    check_run_folder,
    is_unwritable,
    pid_alive,
    remove_stale_temp_files,
    storage_error,
)

LOCK_NAME = ".grokscope.lock"
OWNER_NAME = ".grokscope.owner.json"
SUBFOLDERS = ("checkpoints", "state")  # where a run's temp files can be, beside the run directory itself

_HELD: dict[str, RunLock] = {}  # this process's locks, by folder: taking one again nests


def owner_record(folder) -> dict | None:
    """Who holds `folder`'s lock, as its owner file says (None when unlocked or unreadable)."""
    try:
        doc = json.loads((Path(folder) / OWNER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def describe_holder(folder) -> str:
    """'PID 123 on host gpu-3 (this host), since 2026-05-01 12:00:00 (15 min ago), running interp-train ...'."""
    folder = Path(folder)
    marker = SoftFileLock(str(folder / LOCK_NAME))
    owner = owner_record(folder) or {}
    pid = marker.pid if marker.pid is not None else owner.get("pid")
    if owner.get("pid") not in (None, pid):
        owner = {}  # the owner file of an earlier holder: the new one has not written its own yet
    host = owner.get("host") or _marker_host(folder / LOCK_NAME) or "an unknown host"
    where = f"{host} (this host)" if host == socket.gethostname() else host
    try:
        since = owner.get("since") or (folder / LOCK_NAME).stat().st_mtime
    except OSError:
        since = None
    text = f"PID {pid} on {where}"
    if since is not None:
        text += f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))} ({_ago(time.time() - since)})"
    if owner.get("command"):
        text += f", running {owner['command']}"
    return text


def _marker_host(path: Path) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError):
        return None
    return lines[1] if len(lines) >= 2 else None


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


class RunLock:
    """The writer lock of one folder; `acquire()` or RunLockedError naming the holder and what to do."""

    def __init__(self, folder, *, break_lock: bool = False, what: str = "run directory"):
        self.folder = Path(folder)
        self.break_lock, self.what = break_lock, what
        self.token = secrets.token_hex(16)
        self._lock = SoftFileLock(str(self.folder / LOCK_NAME), timeout=0)
        self._depth = 0
        self._created: list[Path] = []

    def acquire(self) -> RunLock:
        key = str(self.folder.absolute())
        held = _HELD.get(key)
        if held is not None:  # this process holds it already (a nested call): share it
            held._depth += 1
            return held
        check_run_folder(self.folder)
        self._created = _missing_folders(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:
            if not self.break_lock:
                raise RunLockedError(self._refusal()) from None
            self._lock.break_lock()
            try:
                self._lock.acquire()
            except Timeout:
                raise RunLockedError(self._refusal(after_break=True)) from None
        except OSError as exc:
            self._remove_created()
            raise unwritable(exc, self.folder, self.what) from exc
        except BaseException:
            self._remove_created()
            raise
        self._depth = 1
        _HELD[key] = self
        try:
            atomic_write_json(
                self.folder / OWNER_NAME,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.time(),
                    "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "",
                    "token": self.token,
                },
                durable=False,  # it matters only while this process runs; fsync made 10,000 locks take minutes
            )
            for sub in (self.folder, *(self.folder / s for s in SUBFOLDERS)):
                remove_stale_temp_files(sub, locked=True)
        except OSError as exc:
            self.release()
            raise unwritable(exc, self.folder, self.what) from exc
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth:
            return
        _HELD.pop(str(self.folder.absolute()), None)
        if (owner_record(self.folder) or {}).get("token") == self.token:
            with contextlib.suppress(OSError):
                (self.folder / OWNER_NAME).unlink()
        with contextlib.suppress(OSError):
            self._lock.release()
        self._remove_created()

    def _remove_created(self) -> None:
        """Remove the folders `acquire` created that are still empty (nothing was written there)."""
        for d in reversed(self._created):
            with contextlib.suppress(OSError):
                d.rmdir()
        self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _refusal(self, after_break: bool = False) -> str:
        holder = describe_holder(self.folder)
        owner = owner_record(self.folder) or {}
        pid, host = SoftFileLock(str(self.folder / LOCK_NAME)).pid, owner.get("host")
        head = f"{self.folder} is being written by another process: {holder}. "
        if after_break:
            return head + "Another writer took it while this one broke the stale lock; try again when it is done."
        same_host = host in (None, socket.gethostname()) and pid is not None and pid_alive(pid)
        if same_host:
            return head + (
                f"Wait for it to finish, stop it (kill {pid}) and then resume (interp-train --resume, "
                f"resume=True), or write to another {self.what}. Reading it (load, load_run) needs no lock."
            )
        return head + (
            "That process runs on another host, where this one cannot check whether it is still alive. If it "
            "has stopped (its machine crashed or was rebooted), take the lock over with --break-lock "
            "(break_lock=True); otherwise wait for it, or write to another " + self.what + "."
        )


def unwritable(exc: OSError, folder: Path, what: str) -> Exception:
    """The error for a folder that could not be set up for writing: a StorageError when the disk is full or
    failing (exit status 3), a CheckpointError (bad input, exit status 2) when it cannot be written at all."""
    if isinstance(exc, StorageError) and not is_unwritable(exc):
        return exc
    if not isinstance(exc, StorageError) and not is_unwritable(exc):
        return storage_error(exc, folder / LOCK_NAME)
    return CheckpointError(
        f"cannot write the {what} {folder} ({exc.strerror or exc}). Expected a folder you can write; "
        "nothing was trained."
    )


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, shallowest first."""
    missing = []
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing[::-1]


def check_owner(folder, token: str) -> None:
    """RunLockedError unless `folder`'s lock is held under `token` (called before a writer writes there)."""
    owner = owner_record(folder)
    if owner is None or owner.get("token") != token:
        taken = f"it is now held by {describe_holder(folder)}" if owner else "its lock was removed"
        raise RunLockedError(
            f"this process lost the writer lock of {folder} ({taken}), so it stopped writing there to keep the "
            "two writers' files apart. Let the other writer finish, then resume (interp-train --resume)."
        )


@contextlib.contextmanager
def lock_folders(folders: Iterable, *, break_lock: bool = False, what: str = "run directory") -> Iterator[dict]:
    """Hold the locks of all `folders` (None entries skipped) or of none: {folder: token}.

    Refuses at the first one held elsewhere, naming every folder that is, after releasing the others."""
    taken: list[RunLock] = []
    refused: list[str] = []
    try:
        tokens = {}
        for folder in dict.fromkeys(Path(f) for f in folders if f is not None):
            try:
                lock = RunLock(folder, break_lock=break_lock, what=what).acquire()
                taken.append(lock)
                tokens[str(folder)] = lock.token
            except RunLockedError as exc:
                refused.append(str(exc))
                if len(refused) >= 3:
                    break
        if refused:
            more = " (and maybe more)" if len(refused) >= 3 else ""
            raise RunLockedError(" ".join(refused) + more + " Nothing was trained.")
        yield tokens
    finally:
        for lock in reversed(taken):
            lock.release()
