"""File kernels: atomic writes (a crash leaves either the old file or the new one, never half of
one) and safetensors files read and written through them, with errors that say what is wrong.

A write goes to `.NAME.PID.HOST.HEX.tmp` beside NAME (PID and a tag of the host of the writer), then is
renamed onto NAME. A writer killed mid-write leaves that temp file behind; `remove_stale_temp_files`
removes it (the next write of NAME does, and so do run-directory locks and loaders): everything in a folder when the caller holds that folder's writer lock (interp.locks: no
other writer may be there), otherwise only temp files whose writer is provably gone (a PID of this host
that no longer runs) or that are older than `STALE_TEMP_AGE_S` (a write takes seconds; an hour-old temp
file has no live writer). A write that fails for lack of space or any other I/O fault raises
`StorageError` (interp.errors) saying which file, how many bytes it needed and how many are free.

They sit below the models (whose `save_pretrained` writes through them) and storage
(`interp.checkpoints`, which re-exports them).
"""

from __future__ import annotations

import errno as errno_codes
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from interp.errors import CheckpointError, StorageError
from interp.results import dumps

STALE_TEMP_AGE_S = 3600.0  # a temp file this old has no live writer, whoever wrote it
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)(?:\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{8}))?\.(?P<rand>[0-9a-f]{16})\.tmp$")


def host_tag(host: str | None = None) -> str:
    """8 hex digits naming a host in temp-file names (a hash: host names may hold any character)."""
    return hashlib.sha1((host or socket.gethostname()).encode()).hexdigest()[:8]


def temp_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: .NAME.PID.HOST.HEX.tmp in its folder."""
    return path.parent / f".{path.name}.{os.getpid()}.{host_tag()}.{secrets.token_hex(8)}.tmp"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a PID reused by another process counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike, *, locked: bool = False, name: str | None = None) -> list[Path]:
    """Remove the temp files that killed writers left in `folder` (not its sub-folders); the paths removed.

    locked=True: the caller holds the folder's writer lock, so every temp file there is an orphan. Otherwise
    only those of a dead PID on this host, or older than STALE_TEMP_AGE_S. `name`: only the temp files of that
    file. Never raises: a folder that cannot be listed or written (a read-only install) is left as it is."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    here, now = host_tag(), time.time()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or (name is not None and m["name"] != name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            orphan = locked or now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_AGE_S
            if not orphan and m["pid"] is not None and m["host"] == here:
                orphan = not pid_alive(int(m["pid"]))
            if orphan:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


UNWRITABLE = (
    errno_codes.EACCES,
    errno_codes.EPERM,
    errno_codes.EROFS,
    errno_codes.ENOTDIR,
    errno_codes.EEXIST,
    errno_codes.EISDIR,
)


def check_run_folder(folder: str | os.PathLike) -> Path:
    """`folder` as a Path, if it is a folder or can become one; a CheckpointError when a file is in its place."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"out={str(folder)!r} is a file; training needs a directory to write the run into.")
    return folder


def is_unwritable(exc: OSError) -> bool:
    """An OSError that says the path cannot be written at all (permissions, read-only, a file in the way),
    as opposed to a disk that filled up or failed."""
    return exc.errno in UNWRITABLE


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd` (the one place file contents reach the OS; tests patch it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def storage_error(exc: OSError, path: Path, needed: int | None = None) -> StorageError:
    """A StorageError for an OSError raised while writing `path`: which file, what failed, bytes needed and free."""
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path(path.anchor or ".")).free
    except OSError:
        free = None
    reason = exc.strerror or str(exc) or type(exc).__name__
    sizes = []
    if needed is not None:
        sizes.append(f"it needs {_size(needed)}")
    if free is not None:
        sizes.append(f"{_size(free)} free on that filesystem")
    full = exc.errno in (errno_codes.ENOSPC, getattr(errno_codes, "EDQUOT", -1))
    fix = (
        "Free space (or raise the quota) there, or write to another disk"
        if full
        else "Check that the filesystem is mounted, writable and healthy"
    )
    return StorageError(
        f"cannot write {path}: {reason} (errno {exc.errno})" + (f"; {', '.join(sizes)}" if sizes else "") + f". {fix}.",
        path=path,
        errno=exc.errno,
        needed=needed,
        free=free,
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename, fsync folder
    (durable=False skips both fsyncs: still all or nothing, but a power loss may forget it; for records
    that matter only while their writer runs, such as a lock's owner).

    StorageError (an OSError) when the disk is full or the filesystem fails; the old file, if any, stays."""
    path = Path(path)
    remove_stale_temp_files(path.parent, name=path.name)  # what an earlier writer of this file, killed, left
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        # O_EXCL like mkstemp, but mode 0o666 so the umask gives the file the permissions any new file gets
        # (mkstemp's 0600 would make checkpoints and reports private to their writer).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise storage_error(exc, path, len(data)) from exc
    try:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise storage_error(exc, path, len(data)) from exc
        raise
    if not durable:
        return path
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some filesystems do not allow fsync on a directory
        pass
    return path


def atomic_write_json(path: str | os.PathLike, obj, *, durable: bool = True) -> Path:
    """Write `obj` as strict JSON atomically (NaN and infinities as null; see interp.results.to_jsonable)."""
    return atomic_write_bytes(path, dumps(obj).encode(), durable=durable)


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are copied to contiguous CPU memory)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, safetensors_bytes(flat, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors, metadata), with a clear error for missing or broken files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}. Check the path (a safetensors weight file was expected).")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated / corrupt headers
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). It may be truncated or "
            "corrupted (an interrupted copy?): re-copy it, or load an earlier checkpoint of the run."
        ) from exc
    return tensors, meta
