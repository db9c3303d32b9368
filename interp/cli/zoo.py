"""`interp-zoo`: list, verify and rebuild the shipped checkpoints."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from interp.checkpoints.catalog import GPU_SUFFIX, MANIFEST_NAME, cache_dir, read_manifest
from interp.cli.usage import (
    BAD_INPUT_ERRORS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    UsageError,
    exit_status_epilog,
    parse_args,
)
from interp.device import resolve_device
from interp.errors import CheckpointError
from interp.tasks import Task, TaskSpec
from interp.zoo import DEFAULT_ENTRY, build, check, prune
from interp.zoo.recipes import SCALES, recipe, recipes


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.3f}"
    return str(x)


def realised_noise(task_spec: dict) -> float | None:
    """The fraction of training labels a recorded task spec makes noisy (Task.noise_fraction); None if
    this grokscope cannot build the task."""
    try:
        return Task(TaskSpec.from_dict(task_spec)).noise_fraction
    except (CheckpointError, *BAD_INPUT_ERRORS, TypeError):
        return None


def _noise_cell(rec: dict) -> str:
    spec = rec.get("task_spec") or {}
    if spec.get("random_labels"):
        return "random"
    frac = rec.get("noise_fraction")
    return "-" if frac is None else f"{frac:.1%}"


def _cmd_list(args) -> int:
    shipped = read_manifest()["entries"]
    local = read_manifest(cache_dir())["entries"] if (cache_dir() / MANIFEST_NAME).exists() else {}
    for records in (shipped, local):
        for rec in records.values():
            rec["noise_fraction"] = realised_noise(rec.get("task_spec") or {})
    if args.json:
        print(json.dumps({"shipped": shipped, "local": local}, indent=1))
        return EXIT_OK
    print(f"{'name':24} {'where':8} {'params':>9} {'noise':>7} {'train':>6} {'test':>6} {'phase':18} {'KiB':>7}")
    for name, rec in {**shipped, **local}.items():
        m, where, b = rec.get("metrics", {}), "shipped" if name in shipped else "local", rec.get("bytes", 0)
        tr, te, ph = _fmt(m.get("train_acc")), _fmt(m.get("test_acc")), m.get("phase", "-")
        n, noise = rec.get("n_params") or "-", _noise_cell(rec)
        print(f"{name:24} {where:8} {n:>9} {noise:>7} {tr:>6} {te:>6} {ph:18} {b / 1024:>7.0f}")
    print("noise: the realised fraction of noisy training labels (Task.noise_fraction).")
    total = sum(rec.get("bytes", 0) for rec in shipped.values())
    print(f"\n{len(shipped)} shipped entries, {total / 2**20:.1f} MiB. Default report subject: {DEFAULT_ENTRY}.")
    unbuilt = sorted(set(recipes("cpu")) - set(shipped))
    if unbuilt:
        print(f"Recipes not built yet: {', '.join(unbuilt)} (interp-zoo build NAME).")
    print(f"GPU-scale recipes (not shipped): {', '.join(sorted(recipes('gpu')))} (interp-zoo build --scale gpu NAME).")
    return EXIT_OK


def _cmd_check(args) -> int:
    known = read_manifest()["entries"]
    unknown = [n for n in args.names or [] if n not in known]
    if unknown:
        raise UsageError(f"interp-zoo check {unknown[0]!r}: no such shipped entry; expected one of {sorted(known)}.")
    res = check(args.names or None)
    for name in res.checked:
        bad = res.missing.get(name, []) + res.mismatched.get(name, [])
        print(f"{'FAIL' if bad else 'ok  '} {name}" + (f": {', '.join(bad)}" if bad else ""))
    print(
        f"{len(res.checked)} entries, {res.total_bytes / 2**20:.1f} MiB: {'all files match the manifest' if res.ok else 'MISMATCH'}"
    )
    return EXIT_OK if res.ok else EXIT_FAILED


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
            raise UsageError(f"--group {args.group!r} is not a zoo group; expected one of {groups}.")
    else:
        if not args.names:
            raise UsageError(
                "interp-zoo build: no entry given; expected a NAME, --group GROUP or --all (see `interp-zoo list`)."
            )
        wanted = [n + GPU_SUFFIX if args.scale == "gpu" and not n.endswith(GPU_SUFFIX) else n for n in args.names]
        for n in wanted:
            recipe(n)  # SpecError naming the entry when there is no such recipe
    resolve_device(args.device)  # DeviceError now, not after the first entries have trained
    if args.scale == "gpu" and args.device == "auto":
        if not torch.cuda.is_available():
            print(
                "interp-zoo build: the GPU-scale recipes train for hours on a CPU and torch sees no CUDA GPU here. "
                "Run this on a GPU machine, or pass --device cpu to train on this CPU anyway.",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    root = Path(args.out) if args.out else None
    records = build(wanted, root=root, device=args.device, progress=not args.quiet)
    for name, rec in records.items():
        m = rec["metrics"]
        print(
            f"built {name}: train {_fmt(m.get('train_acc'))}, test {_fmt(m.get('test_acc'))}, phase {m['phase']}, {rec['bytes'] / 1024:.0f} KiB"
        )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`interp-zoo list | check [NAME...] | build NAME... [--scale gpu] [--all] [--group G]`; `interp-zoo --check`."""
    parser = argparse.ArgumentParser(
        prog="interp-zoo",
        description="grokscope's shipped checkpoints: list, verify, rebuild.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_status_epilog("check found files that do not match the manifest, or a build failed"),
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
    p_build.add_argument(
        "--group", help="every entry of a group (coexistence, doshi, grok, clock-pizza, capacity, groups)"
    )
    p_build.add_argument("--out", help="zoo folder to write into (default: the package for cpu, the cache for gpu)")
    p_build.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p_build.add_argument("--quiet", action="store_true", help="no progress bar")
    args, status = parse_args(parser, argv)
    if args is None:
        return status
    try:
        if args.check or args.cmd == "check":
            args.names = getattr(args, "names", None)
            return _cmd_check(args)
        if args.cmd == "build":
            return _cmd_build(args)
        args.json = getattr(args, "json", False)
        return _cmd_list(args)
    except UsageError as exc:
        print(f"interp-zoo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CheckpointError as exc:  # after the input was checked: a build that failed, damaged files
        print(f"interp-zoo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BAD_INPUT_ERRORS as exc:
        print(f"interp-zoo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # StorageError and the like: the disk filled up or failed while building
        print(f"interp-zoo: I/O failure: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    except KeyboardInterrupt:
        print("interp-zoo: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
