"""The zoo: small checkpoints shipped with grokscope, trained by its own training code.

Every entry is a run directory under `zoo_checkpoints/NAME/` (run.json + checkpoints/) and a record
in `zoo_checkpoints/manifest.json`: the full task, model and train specs, the command that rebuilds
it, its key metrics, the regime it actually reached, and the sha256 of each of its files. The
recipes live in `interp.zoo_recipes` (`zoo.recipes()`); `interp-zoo build NAME` retrains an entry from its
recipe, `interp-zoo --check` verifies the shipped files against the manifest, `interp-zoo list`
shows what there is. Entries are final-step weights only, except the trajectory entry
(`grok-transformer`), which keeps log-spaced and regular checkpoints for progress measures.

GPU-scale versions of each recipe (p = 113, widths up to 4097, the Nanda et al. transformer with
its full trajectory) are named `NAME-gpu`; they are not shipped: `interp-zoo build --scale gpu NAME`
writes them to the local zoo cache (~/.cache/grokscope/zoo, or $GROKSCOPE_ZOO_CACHE), where
`zoo.load` finds them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from interp.errors import CheckpointError, SpecError, resolve_device
from interp.tasks import TaskSpec
from interp.zoo_recipes import GPU_SUFFIX, SCALES, Recipe, recipe, recipes

__all__ = [
    "DEFAULT_ENTRY",
    "Recipe",
    "CheckResult",
    "build",
    "cache_dir",
    "check",
    "info",
    "load",
    "load_run",
    "main",
    "names",
    "path",
    "phase",
    "prune",
    "read_manifest",
    "recipe",
    "recipes",
    "shipped_dir",
]

MANIFEST_NAME = "manifest.json"
DEFAULT_ENTRY = "mlp-noise50-large"  # interp-report's subject when given no argument
ACCURACY_THRESHOLD = 0.9  # the phase rules of Doshi et al. (train / test accuracy >= 90%)


def shipped_dir() -> Path:
    """The folder of the shipped zoo (the `zoo_checkpoints` package)."""
    import zoo_checkpoints

    return Path(zoo_checkpoints.__file__).resolve().parent


def cache_dir() -> Path:
    """Where entries built on this machine go by default ($GROKSCOPE_ZOO_CACHE or ~/.cache/grokscope/zoo)."""
    return Path(os.environ.get("GROKSCOPE_ZOO_CACHE") or Path.home() / ".cache" / "grokscope" / "zoo").expanduser()


# ----- labels of what an entry reached --------------------------------------------------------------
def phase(train_acc: float, test_acc: float, label_noise: float = 0.0) -> str:
    """The phase of a trained model by Doshi et al.'s rules (accuracies in [0, 1], xi = label_noise):
    coexistence (train >= 90% and test >= 90%; "generalisation" without noise), partial inversion
    (test >= 90%, 1.05 - xi <= train < 90%), full inversion (test >= 90%, train < 1.05 - xi),
    memorisation (test < 90%, train >= 90%), forgetting (both < 90%)."""
    t = ACCURACY_THRESHOLD
    if any(x is None or x != x for x in (train_acc, test_acc)):
        return "unknown"
    if test_acc >= t:
        if train_acc >= t:
            return "coexistence" if label_noise > 0 else "generalisation"
        return "partial inversion" if train_acc >= 1.05 - label_noise else "full inversion"
    return "memorisation" if train_acc >= t else "forgetting"


def first_step(history: list[dict], key: str, threshold: float) -> int | None:
    """The first recorded step at which history[key] >= threshold (None if never)."""
    for h in history:
        v = h.get(key)
        if v is not None and v == v and v >= threshold:
            return int(h["step"])
    return None


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
    out["step_train_acc_99"] = first_step(history, "train_acc", 0.99)
    out["step_test_acc_99"] = first_step(history, "test_acc", 0.99)
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


def _write_manifest(root: Path, manifest: dict) -> None:
    from interp.checkpoints import atomic_write_json

    manifest["entries"] = dict(sorted(manifest["entries"].items()))
    atomic_write_json(root / MANIFEST_NAME, manifest)


def _locate(name: str) -> tuple[Path, dict]:
    for root in (shipped_dir(), cache_dir()):
        rec = read_manifest(root)["entries"].get(name) if (root / MANIFEST_NAME).exists() else None
        if rec is not None:
            return root, rec
    known = sorted(read_manifest()["entries"])
    if name.endswith(GPU_SUFFIX) or name in recipes("cpu"):
        base = name[: -len(GPU_SUFFIX)] if name.endswith(GPU_SUFFIX) else name
        how = f"interp-zoo build --scale gpu {base}" if name.endswith(GPU_SUFFIX) else f"interp-zoo build {name}"
        raise CheckpointError(f"zoo entry {name!r} has not been built on this machine. Build it with `{how}`.")
    raise CheckpointError(f"no zoo entry {name!r}. Known entries: {known}. Run `interp-zoo list`.")


def names(include_local: bool = True) -> list[str]:
    """Names of the zoo entries: shipped ones, plus those built into the local cache."""
    out = set(read_manifest()["entries"])
    if include_local and (cache_dir() / MANIFEST_NAME).exists():
        out |= set(read_manifest(cache_dir())["entries"])
    return sorted(out)


def info(name: str) -> dict:
    """The manifest record of an entry (specs, command, metrics, files with sha256)."""
    return _locate(name)[1]


def path(name: str) -> Path:
    """The run directory of an entry (run.json + checkpoints/)."""
    root, _ = _locate(name)
    return root / name


def load(name: str, device=None, step: int | None = None):
    """Load an entry as a `Checkpoint` (its final step, or `step` for the trajectory entry)."""
    from interp.checkpoints import load as load_checkpoint

    return load_checkpoint(path(name), device=device, step=step)


def load_run(name: str):
    """Load an entry as a `Run` (every checkpoint it keeps, lazily)."""
    from interp.checkpoints import load_run as load_run_dir

    return load_run_dir(path(name))


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
    from interp.checkpoints import run_steps

    steps = run_steps(tmp_run)
    if not steps:
        raise CheckpointError(f"training wrote no checkpoints into {tmp_run}.")
    kept = list(steps.values()) if trajectory else [steps[max(steps)]]
    return [tmp_run / "run.json", *kept]


def build(entry_names: list[str], root: Path | None = None, device: str = "auto", progress: bool = False) -> dict:
    """Train the named entries from their recipes (one `train_many` call, grouped by shape), put
    their run directories under `root` (default: the shipped zoo for CPU entries, the local cache
    for -gpu ones) and record them in `root`'s manifest. Returns {name: manifest record}."""
    from interp.checkpoints import library_versions
    from interp.train import train_many

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
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)


# ----- command line ---------------------------------------------------------------------------------
def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.3f}"
    return str(x)


def _cmd_list(args) -> int:
    shipped = read_manifest()["entries"]
    local = read_manifest(cache_dir())["entries"] if (cache_dir() / MANIFEST_NAME).exists() else {}
    rows = []
    for name, rec in {**shipped, **local}.items():
        m = rec.get("metrics", {})
        where = "shipped" if name in shipped else "local"
        rows.append(
            (
                name,
                where,
                rec.get("n_params"),
                _fmt(m.get("train_acc")),
                _fmt(m.get("test_acc")),
                m.get("phase", "-"),
                rec.get("bytes", 0),
            )
        )
    if args.json:
        print(json.dumps({"shipped": shipped, "local": local}, indent=1))
        return 0
    print(f"{'name':24} {'where':8} {'params':>9} {'train':>6} {'test':>6} {'phase':18} {'KiB':>7}")
    for name, where, n, tr, te, ph, b in rows:
        print(f"{name:24} {where:8} {n or '-':>9} {tr:>6} {te:>6} {ph:18} {b / 1024:>7.0f}")
    total = sum(r[-1] for r in rows if r[1] == "shipped")
    print(f"\n{len(shipped)} shipped entries, {total / 2**20:.1f} MiB. Default report subject: {DEFAULT_ENTRY}.")
    unbuilt = sorted(set(recipes("cpu")) - set(shipped))
    if unbuilt:
        print(f"Recipes not built yet: {', '.join(unbuilt)} (interp-zoo build NAME).")
    print(f"GPU-scale recipes (not shipped): {', '.join(sorted(recipes('gpu')))} (interp-zoo build --scale gpu NAME).")
    return 0


def _cmd_check(args) -> int:
    res = check(args.names or None)
    for name in res.checked:
        bad = res.missing.get(name, []) + res.mismatched.get(name, [])
        print(f"{'FAIL' if bad else 'ok  '} {name}" + (f": {', '.join(bad)}" if bad else ""))
    print(
        f"{len(res.checked)} entries, {res.total_bytes / 2**20:.1f} MiB: {'all files match the manifest' if res.ok else 'MISMATCH'}"
    )
    return 0 if res.ok else 1


def _cmd_build(args) -> int:
    if args.all:
        wanted = sorted(recipes(args.scale))
        if args.out is None and args.scale == "cpu":
            for name in prune():
                print(f"removed {name} (no recipe builds it any more)")
    elif args.group:
        wanted = [n for n, r in recipes(args.scale).items() if r.group == args.group]
        if not wanted:
            groups = sorted({r.group for r in recipes(args.scale).values()})
            raise SpecError("interp-zoo build", "--group", args.group, f"one of {groups}")
    else:
        if not args.names:
            print("interp-zoo build: name an entry, --group GROUP or --all (see `interp-zoo list`).", file=sys.stderr)
            return 2
        wanted = []
        for n in args.names:
            if args.scale == "gpu" and not n.endswith(GPU_SUFFIX):
                n += GPU_SUFFIX
            wanted.append(n)
    if args.scale == "gpu" and args.device == "auto":
        import torch

        if not torch.cuda.is_available():
            print(
                "interp-zoo build: the GPU-scale recipes train for hours on a CPU and torch sees no CUDA GPU here. "
                "Run this on a GPU machine, or pass --device cpu to train on this CPU anyway.",
                file=sys.stderr,
            )
            return 2
    root = Path(args.out) if args.out else None
    records = build(wanted, root=root, device=args.device, progress=not args.quiet)
    for name, rec in records.items():
        m = rec["metrics"]
        print(
            f"built {name}: train {_fmt(m.get('train_acc'))}, test {_fmt(m.get('test_acc'))}, phase {m['phase']}, {rec['bytes'] / 1024:.0f} KiB"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`interp-zoo list | check [NAME...] | build NAME... [--scale gpu] [--all] [--group G]`; `interp-zoo --check`."""
    parser = argparse.ArgumentParser(
        prog="interp-zoo", description="grokscope's shipped checkpoints: list, verify, rebuild."
    )
    parser.add_argument("--check", action="store_true", help="verify every shipped file against the manifest (sha256)")
    sub = parser.add_subparsers(dest="cmd")
    p_list = sub.add_parser("list", help="the entries, their metrics and phases")
    p_list.add_argument("--json", action="store_true", help="the full manifest records as JSON")
    p_check = sub.add_parser("check", help="verify shipped files against the manifest (sha256)")
    p_check.add_argument("names", nargs="*")
    p_build = sub.add_parser("build", help="retrain entries from their recipes")
    p_build.add_argument("names", nargs="*", help="entry names (see `interp-zoo list`)")
    p_build.add_argument(
        "--scale",
        choices=SCALES,
        default="cpu",
        help="gpu: the full-size recipe (NAME-gpu), written to the local cache",
    )
    p_build.add_argument("--all", action="store_true", help="every entry of the scale")
    p_build.add_argument("--group", help="every entry of a group (coexistence, doshi, grok, clock-pizza, capacity)")
    p_build.add_argument("--out", help="zoo folder to write into (default: the package for cpu, the cache for gpu)")
    p_build.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p_build.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.check or args.cmd == "check":
            args.names = getattr(args, "names", None)
            return _cmd_check(args)
        if args.cmd == "build":
            return _cmd_build(args)
        if args.cmd in (None, "list"):
            args.json = getattr(args, "json", False)
            return _cmd_list(args)
    except (SpecError, CheckpointError) as exc:
        print(f"interp-zoo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
