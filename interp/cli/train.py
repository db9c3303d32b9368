"""`interp-train`: train one model or a sweep, from flags or a TOML sweep file.

Every setting of TaskSpec, MLPConfig / TransformerConfig and TrainConfig is a flag (underscores as
dashes; the task's seed is --task-seed). A flag given several values, or a list in the sweep file,
is swept: all combinations are trained, batched by shape with `train_many`, one run directory each.

    interp-train --op x+y --p 97 --frac-train 0.5 --width 512 --act quad --loss mse --lr 1e-2 \\
        --weight-decay 0 5 15 --seed 0 1 2 --steps 2000 --out runs/doshi
    interp-train --sweep sweep.toml --resume

A sweep file has the tables [task], [model] (with family = "mlp" | "transformer") and [train], and
optionally `out = "..."` at the top; flags override it. Lists are crossed (betas: a list of pairs).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

from interp.checkpoints import atomic_write_json
from interp.errors import GrokscopeError
from interp.models import MLPConfig, TransformerConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig, sweep_names, train_many
from interp.train.engine import Job

SECTIONS = ("task", "model", "train")
FAMILIES = {"mlp": MLPConfig, "transformer": TransformerConfig}
SUMMARY_COLUMNS = (
    "step",
    "train_acc",
    "train_clean_acc",
    "train_noisy_acc",
    "train_noisy_true_acc",
    "test_acc",
    "test_loss",
    "weight_norm",
)


class UsageError(Exception):
    """A setting the command line cannot turn into configs (reported, exit status 2)."""


def _train_config_cls():
    return TrainConfig


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _section_fields() -> dict[str, dict[str, dataclasses.Field]]:
    model = {**_fields(MLPConfig), **_fields(TransformerConfig)}
    return {"task": _fields(TaskSpec), "model": model, "train": _fields(_train_config_cls())}


def _flag(section: str, name: str) -> str:
    if section == "task" and name == "seed":
        return "--task-seed"
    return "--" + name.replace("_", "-")


def _parse_value(text: str, annotation: str):
    """One command-line value, by the field's annotation ("int | None", "tuple[float, float]", ...)."""
    low = text.strip().lower()
    if "None" in annotation and low in ("none", "null"):
        return None
    if annotation.startswith("tuple"):
        return tuple(float(x) for x in text.replace("(", "").replace(")", "").split(","))
    base = annotation.split("|")[0].strip()
    if base == "bool":
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if base == "int":
        return int(text)
    if base == "float":
        return float(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="interp-train",
        description="Train a model (or a sweep: give a flag several values) on an algorithmic task.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: interp-train --op x+y --p 59 --width 256 --weight-decay 0.1 1 --seed 0 1 --out runs/wd",
    )
    ap.add_argument("--sweep", type=Path, help="TOML sweep file with [task], [model] and [train] tables")
    ap.add_argument("--out", type=Path, help="run directory (one run) or sweep folder (several)")
    ap.add_argument("--model", dest="family", nargs="+", choices=sorted(FAMILIES), help="model family (default mlp)")
    ap.add_argument("--resume", action="store_true", help="continue interrupted runs from their last saved state")
    ap.add_argument("--overwrite", action="store_true", help="replace runs already in the output directories")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument(
        "--save-state-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="save the resume state at evaluations at most this often (default 60; 0 = every evaluation)",
    )
    ap.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    seen = set()
    for section, fields in _section_fields().items():
        group = ap.add_argument_group(f"{section} settings")
        for name, f in fields.items():
            flag = _flag(section, name)
            if flag in seen or name == "family":
                continue
            seen.add(flag)
            ann = str(f.type)
            group.add_argument(
                flag,
                dest=f"{section}.{name}",
                nargs="+",
                metavar=name.upper(),
                type=lambda text, ann=ann: _parse_value(text, ann),
                help=f"{ann}, default {f.default!r}" if f.default is not dataclasses.MISSING else ann,
            )
    return ap


def _read_sweep_file(path: Path) -> dict:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SystemExit(f"interp-train: no such sweep file: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"interp-train: {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - set(SECTIONS) - {"out"})
    if unknown:
        raise SystemExit(
            f"interp-train: {path} has unknown top-level keys {unknown}; expected out, [task], [model], [train]."
        )
    return doc


def _is_sweep(name: str, value) -> bool:
    if not isinstance(value, list):
        return False
    if name == "betas":  # a pair is one value; a list of pairs is a sweep
        return bool(value) and isinstance(value[0], (list, tuple))
    return True


def expand(settings: dict[str, dict]) -> list[dict[str, dict]]:
    """All combinations of the swept values: [{"task": {...}, "model": {...}, "train": {...}}, ...]."""
    axes = [(s, k, v if _is_sweep(k, v) else [v]) for s in SECTIONS for k, v in settings.get(s, {}).items()]
    combos = []
    for values in itertools.product(*(vals for _, _, vals in axes)):
        combo = {s: {} for s in SECTIONS}
        for (s, k, _), v in zip(axes, values):
            combo[s][k] = v
        combos.append(combo)
    return combos


def _settings(args, sweep: dict) -> dict[str, dict]:
    settings = {s: dict(sweep.get(s, {})) for s in SECTIONS}
    for key, values in vars(args).items():
        if "." not in key or values is None:
            continue
        section, name = key.split(".", 1)
        settings[section][name] = values if len(values) > 1 else values[0]
    if args.family:
        settings["model"]["family"] = args.family if len(args.family) > 1 else args.family[0]
    return settings


def _configs(combo: dict[str, dict]):
    task_d, model_d, train_d = (dict(combo[s]) for s in SECTIONS)
    spec = TaskSpec(**task_d)
    family = model_d.pop("family", "mlp")
    if family not in FAMILIES:
        raise UsageError(f"model family {family!r} is not one of {sorted(FAMILIES)}.")
    cls = FAMILIES[family]
    allowed = _fields(cls)
    foreign = sorted(set(model_d) - set(allowed))
    if foreign:
        raise UsageError(f"{foreign} are not settings of the {family} model (it has {sorted(allowed)}).")
    model_d.setdefault("p", spec.p)
    if "betas" in train_d:
        train_d["betas"] = tuple(train_d["betas"])
    return cls(**model_d), spec, _train_config_cls()(**train_d)


def _progress_bar(total: int, quiet: bool):
    if quiet:
        return None
    try:
        return tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    except ImportError:
        return _SimpleBar(total)


class _SimpleBar:
    """A stderr progress line for when tqdm is missing."""

    def __init__(self, total: int):
        self.total, self.n, self.t0 = total, 0, time.perf_counter()

    def update(self, n: int):
        self.n += n
        rate = self.n / max(1e-9, time.perf_counter() - self.t0)
        frac = self.n / max(1, self.total)
        bar = "#" * int(30 * frac)
        print(f"\r[{bar:<30}] {self.n}/{self.total} steps, {rate:.1f} steps/s", end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr)


def format_table(rows: list[dict]) -> str:
    """A plain-text table: one row per run, columns name, status and the final metrics."""
    header = ["run", "status", *SUMMARY_COLUMNS]
    body = []
    for r in rows:
        final = r.get("final") or {}
        cells = [r["name"], r["status"]]
        for c in SUMMARY_COLUMNS:
            v = final.get(c)
            cells.append("-" if v is None else str(v) if isinstance(v, int) else f"{v:.4g}" if v == v else "nan")
        body.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `interp-train`; returns the exit status (0 ok, 1 a run diverged, 2 bad input)."""
    args = build_parser().parse_args(argv)
    sweep = _read_sweep_file(args.sweep) if args.sweep else {}
    try:
        combos = expand(_settings(args, sweep))
        jobs = [_configs(c) for c in combos]
    except (GrokscopeError, UsageError, TypeError) as exc:
        print(f"interp-train: {exc}", file=sys.stderr)
        return 2
    out = args.out or (Path(sweep["out"]) if "out" in sweep else None)
    if out is None:
        mc, spec, _ = jobs[0]
        out = Path("runs") / f"{spec.op.replace('/', 'div').replace(' ', '')}_p{spec.p}_{mc.family}"
    single = len(jobs) == 1 and not args.sweep
    names = ["."] if single else sweep_names([Job(i, m, _Spec(t), c) for i, (m, t, c) in enumerate(jobs)])
    if args.dry_run:
        for n, (m, t, c) in zip(names, jobs):
            print(json.dumps({"dir": str(out / n), "task": t.to_dict(), "model": m.to_dict(), "train": c.to_dict()}))
        return 0

    bar = _progress_bar(sum(c.steps for _, _, c in jobs), args.quiet)
    try:
        results = train_many(
            jobs,
            out=[out] if single else out,
            names=None if single else names,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=bar.update if bar is not None else None,
            state_every_s=args.save_state_every,
        )
    except GrokscopeError as exc:
        if bar is not None:
            bar.close()
        print(f"interp-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(
            f"interp-train: interrupted; continue with the same command plus --resume (runs in {out}).", file=sys.stderr
        )
        return 130
    if bar is not None:
        bar.close()
    rows = [
        {"name": str(r.out) if single else n, "status": r.status, "final": r.final, "message": r.message}
        for n, r in zip(names, results)
    ]
    print(format_table(rows))
    for row in rows:
        if row["status"] != "complete":
            print(f"{row['name']}: {row['message']}", file=sys.stderr)
    if args.json:
        atomic_write_json(args.json, {"out": str(out), "runs": rows})
    return 0 if all(r.status == "complete" for r in results) else 1


class _Spec:
    """Just enough of a Task for naming runs without building the task tables."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec


if __name__ == "__main__":
    sys.exit(main())
