"""`interp-train`: train one model or a sweep, from flags or a TOML sweep file, here or on a Ray cluster.

Every setting of TaskSpec, MLPConfig / TransformerConfig and TrainConfig is a flag (underscores as
dashes; the task's seed is --task-seed). A flag given several values, or a list in the sweep file,
is swept: all combinations are trained, batched by shape with `train_many`, one run directory each.

    interp-train --op x+y --p 97 --frac-train 0.5 --width 512 --act quad --loss mse --lr 1e-2 \\
        --weight-decay 0 5 15 --seed 0 1 2 --steps 2000 --out runs/doshi
    interp-train --sweep sweep.toml --resume              # finish what an interruption left
    interp-train --out runs/doshi --resume --steps 20000  # train finished runs for longer
    interp-train --sweep sweep.toml --ray 10.0.0.5:6379   # on a Ray cluster (docs/ray.md)

A sweep file has the tables [task], [model] (with family = "mlp" | "transformer") and [train], and
optionally `out = "..."` at the top; flags override it. Lists are crossed (betas: a list of pairs).
With --resume and no settings but --steps / --eval-every / --checkpoint-every / --checkpoint-log /
--device, the settings are read from the run directory or sweep folder given by --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from interp.checkpoints import atomic_write_json
from interp.cli.sweep_file import SECTIONS, configs, expand, read_sweep_file, section_fields, stored_jobs
from interp.cli.usage import (
    BAD_INPUT_ERRORS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    UsageError,
    check_output_file,
    check_output_folder,
    exit_status_epilog,
    non_negative_float,
    parse_args,
    parse_bool,
    positive_int,
    typed,
)
from interp.files import check_run_folder
from interp.tasks import TaskSpec
from interp.train import estimate_sweep, sweep_names, train_many
from interp.train.engine import Job
from interp.train.estimate import check_fits
from interp.train.rundir import CADENCE

__all__ = ["build_parser", "expand", "format_table", "main"]

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
# Flags that may differ from what a run directory holds when it is resumed (train longer, move machines).
RESUME_CHANGES = (*CADENCE, "device")


def _folder_path(text: str) -> Path:
    if not text.strip():
        raise ValueError(text)
    return Path(text)


def _flag(section: str, name: str) -> str:
    if section == "task" and name == "seed":
        return "--task-seed"
    return "--" + name.replace("_", "-")


def value_type(annotation: str):
    """The argparse `type=` of a config field, by its annotation ("int | None", "tuple[float, float]", ...)."""
    base = annotation.split("|")[0].strip()
    optional = "None" in annotation
    if annotation.startswith("tuple"):
        convert, kind = (lambda t: tuple(float(x) for x in t.replace("(", "").replace(")", "").split(","))), "a,b"
    else:
        convert, kind = {
            "int": (int, "an int"),
            "float": (float, "a number"),
            "bool": (parse_bool, "true or false"),
        }.get(base, (str, "a string"))
    if optional:
        inner = convert
        convert, kind = (lambda t: None if t.strip().lower() in ("none", "null") else inner(t)), kind + " or none"
    return typed(kind, convert)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="interp-train",
        usage="%(prog)s [--sweep FILE] [--out DIR] [--SETTING VALUE [VALUE ...]] ... [--resume] [--ray [ADDRESS]]",
        description="Train a model (or a sweep: give a flag several values) on an algorithmic task.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: interp-train --op x+y --p 59 --width 256 --weight-decay 0.1 1 --seed 0 1 --out runs/wd\n"
        "train longer: interp-train --out runs/wd --resume --steps 20000\n\n"
        + exit_status_epilog(
            "a run diverged or failed (the others finished; the table and stderr say which)",
            "runs finished are kept;\n       free space, then the same command with --resume finishes the rest",
            "a run directory another\n       process is writing (its PID, host and start time are named), a sweep whose memory\n"
            "       or disk estimate exceeds this machine's (--no-size-check overrides it)",
        ),
    )
    ap.add_argument("--sweep", type=Path, help="TOML sweep file with [task], [model] and [train] tables")
    ap.add_argument(
        "--out", type=typed("a folder path", _folder_path), help="run directory (one run) or sweep folder (several)"
    )
    ap.add_argument("--model", dest="family", nargs="+", choices=("mlp", "transformer"), help="model family (mlp)")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue runs from their last saved state; with a larger --steps, train finished runs longer",
    )
    ap.add_argument("--overwrite", action="store_true", help="replace runs already in the output directories")
    ap.add_argument(
        "--break-lock",
        action="store_true",
        help="take over run directories locked by a process on another host that you know has stopped "
        "(a lock of a dead process on this host is taken over without it)",
    )
    ap.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument(
        "--save-state-every",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="save the resume state at evaluations at most this often (default 60; 0 = every evaluation)",
    )
    ap.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    ap.add_argument(
        "--no-size-check",
        action="store_true",
        help="start a sweep even when its memory or disk estimate (printed before it starts) exceeds this machine's",
    )
    ray = ap.add_argument_group("Ray (pip install grokscope[ray]; docs/ray.md)")
    ray.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="train on a Ray cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, auto); no ADDRESS: a local Ray",
    )  # fmt: skip
    ray.add_argument("--models-per-task", type=positive_int, metavar="N", help="split shape groups into Ray tasks of N")
    ray.add_argument(
        "--gpus-per-task", type=typed("a number > 0", float, lambda v: v > 0), default=1.0, metavar="F",
        help="GPUs each CUDA task asks for (a fraction lets small groups share a GPU; default 1)",
    )  # fmt: skip
    ray.add_argument("--cpus-per-task", type=positive_int, default=1, metavar="N", help="CPUs per task (default 1)")
    seen = set()
    for section, fields in section_fields().items():
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
                type=value_type(ann),
                help=f"{ann}, default {f.default!r}" if f.default is not dataclasses.MISSING else ann,
            )
    return ap


def _given(args) -> dict[str, dict]:
    """The settings given as flags: {section: {name: value or [values]}}."""
    given = {s: {} for s in SECTIONS}
    for key, values in vars(args).items():
        if "." in key and values is not None:
            section, name = key.split(".", 1)
            given[section][name] = values if len(values) > 1 else values[0]
    if args.family:
        given["model"]["family"] = args.family if len(args.family) > 1 else args.family[0]
    return given


def _continues_stored_runs(args, given: dict) -> bool:
    """--resume and --out with no settings but steps / cadence / device: resume what --out holds."""
    if not args.resume or args.sweep or args.out is None:
        return False
    return not given["task"] and not given["model"] and set(given["train"]) <= set(RESUME_CHANGES)


def _plan(args) -> tuple[list, Path, list[str] | None, bool]:
    """(jobs, out, names, single): what to train and where; UsageError / SpecError on bad input."""
    given = _given(args)
    if _continues_stored_runs(args, given):
        changes = dict(given["train"])
        if any(isinstance(v, list) for v in changes.values()):
            raise UsageError(f"--resume of {args.out} takes one value per flag; got {changes}.")
        jobs, dirs = stored_jobs(args.out, changes)
        single = dirs == [args.out]
        return jobs, args.out, None if single else [d.name for d in dirs], single
    sweep = read_sweep_file(args.sweep) if args.sweep else {}
    settings = {s: {**sweep.get(s, {}), **given[s]} for s in SECTIONS}
    jobs = [configs(c) for c in expand(settings)]
    out = args.out or (Path(sweep["out"]) if "out" in sweep else None)
    if out is None:
        mc, spec, _ = jobs[0]
        out = Path("runs") / f"{spec.op.replace('/', 'div').replace(' ', '')}_p{spec.p}_{mc.family}"
    single = len(jobs) == 1 and not args.sweep
    names = None if single else sweep_names([Job(i, m, _Spec(t), c) for i, (m, t, c) in enumerate(jobs)])
    return jobs, out, names, single


def _ray_options(args) -> dict:
    if args.ray is None:
        if args.models_per_task is not None:
            raise UsageError(f"--models-per-task {args.models_per_task} needs --ray; expected it with --ray [ADDRESS].")
        return {}
    return dict(
        backend="ray",
        address=args.ray or None,
        models_per_task=args.models_per_task,
        gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task,
    )


def _progress_bar(jobs, quiet: bool):
    if quiet:
        return None
    total = sum(c.steps for _, _, c in jobs)
    return tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


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


def _bad_input(exc: Exception) -> int:
    print(f"interp-train: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    """Entry point of `interp-train`; returns the exit status (0 ok, 1 a run diverged or failed, 2 bad input,
    3 an I/O failure after training started)."""
    args, status = parse_args(build_parser(), argv)
    if args is None:
        return status
    try:
        jobs, out, names, single = _plan(args)
        backend = _ray_options(args)
        if not args.dry_run:  # before any training: exit 2 means nothing was written
            check_output_folder(out, "--out")
            for n in [] if single else names:  # a run's folder taken by a file
                check_run_folder(out / n)
            if args.json is not None:
                check_output_file(args.json, "--json")
    except (*BAD_INPUT_ERRORS, TypeError) as exc:
        return _bad_input(exc)
    try:
        estimate = estimate_sweep(
            jobs, out=[out] if single else out, names=names, keep_models=False, measure=not (args.quiet or args.dry_run),
            backend=backend.get("backend", "local"),
        )  # fmt: skip
        if not args.quiet or args.dry_run:
            print(f"interp-train: {estimate.summary()}", file=sys.stderr)
        if not args.no_size_check:
            check_fits(estimate, "--no-size-check")
    except (*BAD_INPUT_ERRORS, TypeError) as exc:
        return _bad_input(exc)
    if args.dry_run:
        for n, (m, t, c) in zip(names or ["."], jobs):
            spec = t if isinstance(t, TaskSpec) else t.spec
            print(json.dumps({"dir": str(out / n), "task": spec.to_dict(), "model": m.to_dict(), "train": c.to_dict()}))
        return EXIT_OK
    bar = _progress_bar(jobs, args.quiet)
    try:
        results = train_many(
            jobs,
            out=[out] if single else out,
            names=names,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=bar.update if bar is not None else None,
            state_every_s=args.save_state_every,
            break_lock=args.break_lock,
            size_check=False,  # checked above, with the override the message names
            keep_models=False,  # the summary needs the metrics; the weights are in the run directories
            **backend,
        )
    except BAD_INPUT_ERRORS as exc:
        return _bad_input(exc)
    except OSError as exc:  # StorageError: the disk filled up or the filesystem failed while training
        return _storage_failure(exc, out, names)
    except KeyboardInterrupt:
        print(
            f"interp-train: interrupted; continue with the same command plus --resume (runs in {out}).", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    return _summarise(results, names or [str(out)], out, args.json)


def _storage_failure(exc: OSError, out: Path, names: list[str] | None) -> int:
    """Exit status 3: say which write failed, how many runs are finished and kept, and how to finish."""
    dirs = [out / n for n in names] if names else [out]
    finished = sum(_status(d) == "complete" for d in dirs)
    where = Path(getattr(exc, "filename", None) or out).absolute()
    run = next((d for d in dirs if where.is_relative_to(d.absolute())), None)
    print(
        f"interp-train: I/O failure while writing {'run ' + str(run) if run is not None else 'the runs in ' + str(out)}: {exc}\n"
        f"interp-train: {finished} of {len(dirs)} runs are finished and kept; the others keep their last saved "
        "state. Free space, then run the same command with --resume to finish the rest.",
        file=sys.stderr,
    )
    return EXIT_STORAGE


def _status(run_dir: Path) -> str | None:
    try:
        doc = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return doc.get("status") if isinstance(doc, dict) else None


def _summarise(results, names: list[str], out: Path, json_path: Path | None) -> int:
    """Print the summary table (and write it as JSON); the exit status of the finished sweep."""
    rows = [{"name": n, "status": r.status, "final": r.final, "message": r.message} for n, r in zip(names, results)]
    print(format_table(rows))
    for row in rows:
        if row["status"] != "complete":
            print(f"{row['name']}: {row['message']}", file=sys.stderr)
    if json_path is not None:
        try:
            atomic_write_json(json_path, {"out": str(out), "runs": rows})
        except OSError as exc:  # checked before training, so the disk filled up or failed since
            print(f"interp-train: every run is written, but not --json: {exc}", file=sys.stderr)
            return EXIT_STORAGE
    return EXIT_OK if all(r.status == "complete" for r in results) else EXIT_FAILED


class _Spec:
    """Just enough of a Task for naming runs without building the task tables."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec


if __name__ == "__main__":
    sys.exit(main())
