"""The plumbing the example studies share: their command line, their JSON and HTML outputs.

Each example script (examples/*.py, and studies/<study>/example.py) has a quick setting (a CPU, about a minute) and a full setting (the papers'
scale, for a GPU); both write `<out>/<name>.json` (every number) and `<out>/<name>.html` (plots).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from interp.checkpoints import atomic_write_bytes
from interp.report.html import Page
from interp.results import dumps


def parse_args(
    name: str,
    description: str,
    argv: list[str] | None = None,
    *,
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
    script: str | None = None,
) -> argparse.Namespace:
    """--quick (CPU, about a minute), --out DIR (default out/NAME), --device, --seed, and whatever
    `add_options(parser)` adds (a study's own options). `script`: how the user runs it (default examples/NAME.py)."""
    script = script or f"examples/{name}.py"
    parser = argparse.ArgumentParser(prog=script, description=description)
    parser.add_argument("--quick", action="store_true", help="a small setting that runs on a CPU in about a minute")
    parser.add_argument("--out", default=None, help=f"output folder (default: out/{name})")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of tasks and models")
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    args.out = Path(args.out or Path("out") / name)
    args.setting = "quick" if args.quick else "full"
    if not args.quick and args.device == "auto":
        if not torch.cuda.is_available():
            parser.exit(
                2,
                f"{script}: the full setting is GPU-scale (hours on a CPU) and torch sees no CUDA GPU. "
                "Add --quick for the CPU setting, or --device cpu to run the full one on this CPU anyway.\n",
            )
    return args


class Study:
    """Collects a study's results and its page, then writes both: `study.results[...] = ...`,
    `study.page.section(...)`, `study.write()`."""

    def __init__(self, name: str, title: str, args: argparse.Namespace, script: str | None = None):
        self.name, self.args = name, args
        self.t0 = time.perf_counter()
        self.results: dict = {
            "study": name,
            "setting": args.setting,
            "seed": args.seed,
            "device": args.device,
            "python": platform.python_version(),
        }
        self.page = Page(title, f"{script or f'examples/{name}.py'}, {args.setting} setting (seed {args.seed})")

    def log(self, msg: str) -> None:
        """A progress line on stderr (the examples are scripts: they talk to the user)."""
        print(f"[{self.name} {time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def write(self) -> tuple[Path, Path]:
        """Write <out>/<name>.json and <out>/<name>.html; returns their paths."""
        self.results["seconds"] = round(time.perf_counter() - self.t0, 1)
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        json_path, html_path = out / f"{self.name}.json", out / f"{self.name}.html"
        atomic_write_bytes(json_path, dumps(self.results).encode())
        self.page.write(html_path)
        self.log(f"wrote {json_path} and {html_path}")
        return json_path, html_path
