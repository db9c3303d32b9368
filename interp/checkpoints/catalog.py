"""Where the zoo's checkpoints live on disk: the shipped folder (the `zoo_checkpoints` data package),
the local cache of entries built on this machine, and their manifests.

This is all storage needs to resolve `zoo:NAME` to a run directory, so every loader accepts zoo names
without importing the zoo's code (recipes, building, checking: interp.zoo, at the top of the stack).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import zoo_checkpoints
from interp.errors import CheckpointError

MANIFEST_NAME = "manifest.json"
GPU_SUFFIX = "-gpu"  # GPU-scale versions of the recipes are named NAME-gpu
SCHEME = "zoo:"


def shipped_dir() -> Path:
    """The folder of the shipped zoo (the `zoo_checkpoints` package)."""
    return Path(zoo_checkpoints.__file__).resolve().parent


def cache_dir() -> Path:
    """Where entries built on this machine go by default ($GROKSCOPE_ZOO_CACHE or ~/.cache/grokscope/zoo)."""
    return Path(os.environ.get("GROKSCOPE_ZOO_CACHE") or Path.home() / ".cache" / "grokscope" / "zoo").expanduser()


def read_manifest(root: Path | None = None) -> dict:
    """The manifest of a zoo folder ({"format": ..., "entries": {name: record}}); empty if absent."""
    f = Path(root or shipped_dir()) / MANIFEST_NAME
    if not f.exists():
        return {"format": "grokscope-zoo", "format_version": 1, "entries": {}}
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{f} is not valid JSON ({exc}). Restore it (reinstall grokscope) or rebuild: interp-zoo build --all."
        ) from exc


def locate(name: str) -> tuple[Path, dict]:
    """(zoo folder, manifest record) of an entry: shipped first, then the local cache."""
    for root in (shipped_dir(), cache_dir()):
        rec = read_manifest(root)["entries"].get(name) if (root / MANIFEST_NAME).exists() else None
        if rec is not None:
            return root, rec
    known = sorted(read_manifest()["entries"])
    if name.endswith(GPU_SUFFIX):
        base = name[: -len(GPU_SUFFIX)]
        raise CheckpointError(
            f"zoo entry {name!r} has not been built on this machine. Build it with `interp-zoo build --scale gpu {base}`."
        )
    raise CheckpointError(
        f"no zoo entry {name!r}. Known entries: {known}. Run `interp-zoo list` (or `interp-zoo build {name}` "
        "if it is a recipe that has not been built here)."
    )


def names(include_local: bool = True) -> list[str]:
    """Names of the zoo entries: shipped ones, plus those built into the local cache."""
    out = set(read_manifest()["entries"])
    if include_local and (cache_dir() / MANIFEST_NAME).exists():
        out |= set(read_manifest(cache_dir())["entries"])
    return sorted(out)


def info(name: str) -> dict:
    """The manifest record of an entry (specs, command, metrics, files with sha256)."""
    return locate(name)[1]


def path(name: str) -> Path:
    """The run directory of an entry (run.json + checkpoints/)."""
    root, _ = locate(name)
    return root / name


def resolve(location: str | os.PathLike) -> str | os.PathLike:
    """`zoo:NAME` -> the entry's run directory; any other location is returned as given."""
    if isinstance(location, str) and location.startswith(SCHEME):
        return path(location[len(SCHEME) :])
    return location
