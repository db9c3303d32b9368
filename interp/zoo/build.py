"""Building and checking zoo entries: train them from their recipes, install their run directories
with a manifest record (specs, metrics, sha256 of every file), and verify shipped files."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from interp.checkpoints import atomic_write_json, library_versions, run_steps
from interp.checkpoints.catalog import MANIFEST_NAME, cache_dir, read_manifest, shipped_dir
from interp.device import resolve_device
from interp.errors import CheckpointError, SpecError
from interp.tasks import TaskSpec
from interp.train import train_many
from interp.zoo.recipes import recipe, recipes
from probes.memorization import first_step_reaching, phase


def key_metrics(history: list[dict], task: TaskSpec) -> dict:
    """The manifest's summary of a run: final accuracies, steps to 99% train / test accuracy, phase."""
    final = history[-1] if history else {}
    keep = (
        "train_acc",
        "train_clean_acc",
        "train_noisy_acc",
        "train_noisy_true_acc",
        "test_acc",
        "train_loss",
        "test_loss",
        "weight_norm",
    )
    out = {k: final.get(k) for k in keep if k in final}
    out["step"] = final.get("step")
    out["step_train_acc_99"] = first_step_reaching(history, "train_acc", threshold=0.99)
    out["step_test_acc_99"] = first_step_reaching(history, "test_acc", threshold=0.99)
    out["phase"] = (
        "random labels"
        if task.random_labels
        else phase(final.get("train_acc"), final.get("test_acc"), task.label_noise)
    )
    return out


# ----- files and manifest -----------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_manifest(root: Path, manifest: dict) -> None:
    manifest["entries"] = dict(sorted(manifest["entries"].items()))
    atomic_write_json(root / MANIFEST_NAME, manifest)


@dataclass(frozen=True)
class CheckResult:
    """Result of verifying zoo files against the manifest: per entry, the files that are missing or differ."""

    checked: list[str]
    missing: dict = field(default_factory=dict)  # name -> [relative paths]
    mismatched: dict = field(default_factory=dict)  # name -> [relative paths]
    total_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched

    def to_dict(self) -> dict:
        return {
            "checked": self.checked,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "total_bytes": self.total_bytes,
            "ok": self.ok,
        }


def check(entries: list[str] | None = None, root: Path | None = None) -> CheckResult:
    """Verify each entry's files (sha256) against the manifest of `root` (default: the shipped zoo)."""
    root = Path(root or shipped_dir())
    manifest = read_manifest(root)["entries"]
    entries = list(entries or sorted(manifest))
    missing, mismatched, total = {}, {}, 0
    for name in entries:
        if name not in manifest:
            raise CheckpointError(f"no zoo entry {name!r} in {root / MANIFEST_NAME}.")
        for rel, digest in manifest[name]["files"].items():
            f = root / rel
            if not f.exists():
                missing.setdefault(name, []).append(rel)
                continue
            total += f.stat().st_size
            if sha256_file(f) != digest:
                mismatched.setdefault(name, []).append(rel)
    return CheckResult(entries, missing, mismatched, total)


# ----- building -------------------------------------------------------------------------------------
def _keep_files(tmp_run: Path, trajectory: bool) -> list[Path]:
    steps = run_steps(tmp_run)
    if not steps:
        raise CheckpointError(f"training wrote no checkpoints into {tmp_run}.")
    kept = list(steps.values()) if trajectory else [steps[max(steps)]]
    return [tmp_run / "run.json", *kept]


def build(entry_names: list[str], root: Path | None = None, device: str = "auto", progress: bool = False) -> dict:
    """Train the named entries from their recipes (one `train_many` call, grouped by shape), put
    their run directories under `root` (default: the shipped zoo for CPU entries, the local cache
    for -gpu ones) and record them in `root`'s manifest. Returns {name: manifest record}."""
    todo = [recipe(n) for n in dict.fromkeys(entry_names)]
    if not todo:
        raise SpecError("zoo.build", "names", entry_names, "at least one entry name")
    scales = {r.scale for r in todo}
    if root is None:
        if len(scales) > 1:
            raise SpecError("zoo.build", "names", entry_names, "entries of one scale per call (or pass root=)")
        root = shipped_dir() if scales == {"cpu"} else cache_dir()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    jobs = []
    for r in todo:
        tc = r.train if device == "auto" else r.train.__class__.from_dict({**r.train.to_dict(), "device": device})
        jobs.append((r.model, r.task, tc))
    bar = _progress_bar(sum(r.train.steps for r in todo), "training") if progress else None
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="grokscope-zoo-build-") as tmp:
        results = train_many(jobs, out=[Path(tmp) / r.name for r in todo], progress=bar.update if bar else None)
        if bar:
            bar.close()
        seconds = time.time() - t0
        manifest = read_manifest(root)
        records = {}
        for r, res in zip(todo, results):
            if res.status != "complete":
                raise CheckpointError(f"zoo entry {r.name} did not train: {res.message}")
            files = _install(Path(tmp) / r.name, root, r.name, r.trajectory)
            records[r.name] = {
                **r.to_dict(),
                "metrics": key_metrics(res.history, r.task),
                "n_params": r.model.n_params,
                "files": files,
                "bytes": sum((root / rel).stat().st_size for rel in files),
                "built": {
                    "seconds_for_this_call": round(seconds, 1),
                    "device": str(resolve_device(jobs[0][2].device)),
                    "versions": library_versions(),
                },
            }
            manifest["entries"][r.name] = records[r.name]
        _write_manifest(root, manifest)
    return records


def _install(run_dir: Path, root: Path, name: str, trajectory: bool) -> dict[str, str]:
    """Copy a trained run's run.json and kept checkpoints to root/name (world-readable: they ship in
    the package), replacing any previous version; return {relative path: sha256}."""
    staged = root / f".{name}.staging"
    if staged.exists():
        shutil.rmtree(staged)
    for f in _keep_files(run_dir, trajectory):
        dest = staged / f.relative_to(run_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    for path in [staged, *staged.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    staged.rename(final)
    return {str(f.relative_to(root)): sha256_file(f) for f in sorted(final.rglob("*")) if f.is_file()}


def prune(root: Path | None = None, scale: str = "cpu") -> list[str]:
    """Remove entries that no recipe of `scale` produces any more (their folders and records)."""
    root = Path(root or shipped_dir())
    manifest = read_manifest(root)
    stale = sorted(set(manifest["entries"]) - set(recipes(scale)))
    for name in stale:
        shutil.rmtree(root / name, ignore_errors=True)
        del manifest["entries"][name]
    if stale:
        _write_manifest(root, manifest)
    return stale


def _progress_bar(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)
