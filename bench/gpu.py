"""Every GPU figure of grokscope in one call: each bench with --device cuda and one full-setting grokking
run, each step under its own time limit and all of them inside one budget (8 minutes on one H100), written
to one JSON file. A step that fails or runs out of time is recorded with its error and the rest go on, so
one call gets every number it can. Run it through bench/gpu.sh (which sets up the paths):

    bash bench/gpu.sh                    # a CUDA machine: out/gpu/figures.json
    bash bench/gpu.sh --cpu-smoke        # every step, tiny, on the CPU (or GROKSCOPE_GPU_SMOKE=1)
    bash bench/gpu.sh --only grok train  # some steps; --skip NAME... leaves some out

The JSON: `machine` (GPU name, memory, torch, CUDA and cuDNN versions, driver, CPU), and per step its
command, status ("ok", "failed", "timeout" or "not run"), exit code, wall time, time limit, the figures
the bench wrote with --json, and for a step that did not finish the end of its output. Each step's full
output is in logs/NAME.log beside it. The file is rewritten after every step.

Steps run as children of this process: forked from it (--launch fork, the default with --cpu-smoke: the
heavy imports are done once, here) or as fresh interpreters (--launch spawn, the default on a GPU: nothing
is shared with the parent, which never touches CUDA either way).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import runpy
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE_ENV = "GROKSCOPE_GPU_SMOKE"
MACHINE = "machine"  # the target of the step that describes the machine (this module's machine_info)
LOG_TAIL_LINES = 40


@dataclasses.dataclass(frozen=True)
class Step:
    """One bench: a script under the repository ("bench/x.py"), a module ("studies.raf.bench") or MACHINE;
    its arguments on a GPU and in the CPU smoke run (one string each, split on spaces; "{device}" and
    "{time_limit}" are filled in), and its time limit in seconds on each."""

    name: str
    target: str
    gpu_args: str
    smoke_args: str
    limit_s: float
    smoke_limit_s: float = 120.0


STEPS = (
    Step(MACHINE, MACHINE, "", "", 30, 30),
    # Nanda et al.'s p = 113 transformer until it groks (zoo recipe grok-transformer-gpu; docs/papers.md, G.2)
    Step(
        "grok",
        "bench/bench_grok.py",
        "--device {device} --recipe grok-transformer-gpu --chunk 2000 --time-limit {time_limit}",
        "--device {device} --recipe grok-transformer --max-steps 8 --chunk 4 --eval-every 4 --curve-every 1"
        " --time-limit {time_limit}",
        210,
    ),
    Step(
        "train",
        "bench/bench_train.py",
        "--device {device} --steps 100 --models 32 --repeats 1 --sequential-models 8 --small-steps 100 --tf-steps 100",
        "--device {device} --steps 2 --models 2 --p 23 --width 32 --repeats 1 --small-steps 0 --skip transformer",
        90,
    ),
    Step(
        "probes",
        "bench/bench_probes.py",
        "--device {device} --repeats 3",
        "--device {device} --repeats 1 --p 13 --d-mlp 16 --width 33",
        60,
    ),
    Step(
        "circuits",
        "bench/bench_circuits.py",
        "--device {device}",
        "--device {device} --p 13 --d-mlp 16 --n-pairs 8",
        60,
    ),
    Step(
        "diffusion",
        "studies.diffusion.bench",
        "--device {device} --steps 300 --repeats 3",
        "--device {device} --steps 5 --repeats 1 --points 200",
        60,
    ),
    Step(
        "raf",
        "studies.raf.bench",
        "--device {device} --sizes 4096 16384 --repeats 2",
        "--device {device} --sizes 64 --dim 20 --width 16 --seeds 1 --steps 5",
        120,
    ),
    Step(
        "reference",
        "bench/bench_reference.py",
        "--device {device}",
        "--device {device} --p 7 --steps 4 --float32-steps 2 --opt-steps 5 --batch 8 --models mlp --optimizers adamw",
        90,
    ),
)
# Left out: bench/bench_ray.py. On one GPU, Ray's tasks queue for the same device, so it would measure Ray's
# overhead, which the CPU figures already give; and Ray is not installed on the lent GPU machines.

PRELOAD = (  # imported once by the parent with --launch fork, so that each forked step starts warm
    "numpy",
    "scipy.linalg",
    "sklearn.mixture",
    "networkx",
    "torch",
    "transformer_lens",
    "interp",
    "interp.train",
    "interp.zoo.recipes",
    "probes.fourier",
    "probes.memorization",
    "circuits.filtration",
    "circuits.ablation",
    "circuits.patching",
    "studies.raf",
    "studies.diffusion",
)


# ----- the machine ----------------------------------------------------------------------------------
def machine_info(path: Path) -> None:
    """Write what the figures were measured on: GPUs, torch / CUDA / cuDNN versions, driver, CPU."""
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "gpus": [],
        "packages": _versions("numpy", "scipy", "transformer-lens", "scikit-learn", "grokscope"),
    }
    for i in range(torch.cuda.device_count() if info["cuda_available"] else 0):
        prop = torch.cuda.get_device_properties(i)
        info["gpus"].append(
            {
                "name": prop.name,
                "capability": f"{prop.major}.{prop.minor}",
                "memory_gib": round(prop.total_memory / 2**30, 1),
                "multiprocessors": prop.multi_processor_count,
            }
        )
    info["gpu"] = info["gpus"][0]["name"] if info["gpus"] else None
    info["imports"] = {}  # what every step needs: an error here explains a run of failed steps
    for module in ("transformer_lens", "interp", "probes", "circuits", "studies.raf", "studies.diffusion"):
        try:
            __import__(module)
            info["imports"][module] = "ok"
        except Exception as e:  # noqa: BLE001
            info["imports"][module] = f"{type(e).__name__}: {e}"
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        info["nvidia_smi"] = f"not available: {e}"
    print(json.dumps(info, indent=1))
    write_json(path, info)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions(*names: str) -> dict:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.strip() or None


# ----- running one step -----------------------------------------------------------------------------
def write_json(path: Path, obj) -> None:
    """Strict JSON, written atomically (temp file and rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def command_line(step: Step, args: list[str], json_path: Path) -> list[str]:
    """The child's command line, as it would be typed (and as --launch spawn runs it)."""
    if step.target == MACHINE:
        return [sys.executable, str(Path(__file__).relative_to(REPO)), "--machine-json", str(json_path)]
    head = [sys.executable, step.target] if step.target.endswith(".py") else [sys.executable, "-m", step.target]
    return head + args + ["--json", str(json_path)]


def _child(step: Step, argv: list[str], json_path: Path, log_path: Path) -> None:
    """In a forked child: output to the log, run the step as `python ...` would, exit with its code."""
    code = 1
    try:
        os.setsid()
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # the inherited sys.stdout / sys.stderr may not write to fds 1 and 2 (a test runner's capture)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        code = 0
        try:
            if step.target == MACHINE:
                machine_info(json_path)
            elif step.target.endswith(".py"):
                sys.argv = [step.target, *argv[2:]]
                runpy.run_path(str(REPO / step.target), run_name="__main__")
            else:
                sys.argv = [step.target, *argv[3:]]
                runpy.run_module(step.target, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001  (the step's error goes to its log, the parent goes on)
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _stop(pid: int) -> None:
    """End a step's whole process group: SIGTERM, then SIGKILL after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + grace
        while time.monotonic() < end:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.05)


def run_step(step: Step, args: list[str], out: Path, timeout: float, launch: str) -> dict:
    """Run one step under `timeout` seconds; its record (status, exit code, wall time, figures, error)."""
    json_path, log_path = out / "steps" / f"{step.name}.json", out / "logs" / f"{step.name}.log"
    for p in (json_path, log_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)
    argv = command_line(step, args, json_path)
    record = {"command": " ".join(argv[1:]), "timeout_s": round(timeout, 1), "log": str(log_path.relative_to(out))}
    start = time.monotonic()
    rc, timed_out = None, False
    if launch == "fork":
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(step, argv, json_path, log_path)
        while rc is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
            elif time.monotonic() - start > timeout:
                timed_out = True
                _stop(pid)
                try:
                    os.waitpid(pid, 0)  # reaped already, unless the group had gone before the signal
                except ChildProcessError:
                    pass
                break
            else:
                time.sleep(0.05)
    else:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(proc.pid)
                proc.wait()
    record["wall_s"] = round(time.monotonic() - start, 2)
    record["exit_code"] = rc
    figures, bad_json = None, None
    if json_path.exists():
        try:
            figures = json.loads(json_path.read_text())
        except ValueError as e:
            bad_json = f"its JSON could not be read: {e}"
    if timed_out:
        record["status"] = "timeout"
        record["error"] = f"stopped after its time limit of {timeout:.0f} s"
    elif rc != 0:
        record["status"] = "failed"
        record["error"] = f"exit code {rc}"
    elif figures is None:
        record["status"] = "failed"
        record["error"] = bad_json or "it wrote no figures"
    else:
        record["status"] = "ok"
    record["figures"] = figures
    if record["status"] != "ok":
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        record["output_tail"] = lines[-LOG_TAIL_LINES:]
    return record


# ----- the whole run --------------------------------------------------------------------------------
def fill(args: str, device: str, time_limit: float) -> list[str]:
    """The argument list of a step's argument string, with its placeholders filled in."""
    return [a.format(device=device, time_limit=f"{max(1.0, time_limit):.0f}") for a in args.split()]


def _echo(line: str) -> None:
    print(line, flush=True)


def run(steps, out: Path, *, smoke: bool, device: str, budget: float, launch: str, echo=_echo) -> dict:
    """Run `steps` in order inside `budget` seconds, rewriting out/figures.json after each; return it."""
    out.mkdir(parents=True, exist_ok=True)
    began, t0 = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    report = {
        "what": "grokscope's GPU figures: every bench and one full-setting grokking run (bench/gpu.sh)",
        "mode": "cpu-smoke" if smoke else "gpu",
        "device": device,
        "launch": launch,
        "budget_s": budget,
        "started": began.isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": None,
        "summary": {},
        "steps": {},
    }
    for step in steps:
        remaining = budget - (time.monotonic() - t0)
        limit = step.smoke_limit_s if smoke else step.limit_s
        timeout = min(limit, remaining)
        machine = report["machine"] or {}
        if remaining < 5:
            record = {"status": "not run", "error": f"the budget of {budget:.0f} s was spent"}
        elif not smoke and device.startswith("cuda") and machine and not machine.get("cuda_available"):
            record = {
                "status": "not run",
                "error": "no CUDA device on this machine: run `bash bench/gpu.sh --cpu-smoke` for the CPU check",
            }
        else:
            echo(f"[{time.monotonic() - t0:6.1f} s] {step.name}: up to {timeout:.0f} s")
            time_limit = timeout - (10 if smoke else 20)  # a step that takes one stops itself before it is killed
            args = fill(step.smoke_args if smoke else step.gpu_args, device, time_limit)
            record = run_step(step, args, out, timeout, launch)
        report["steps"][step.name] = record
        report["summary"][step.name] = record["status"]
        if step.target == MACHINE and record.get("figures"):
            report["machine"] = record["figures"]
        report["wall_s"] = round(time.monotonic() - t0, 1)
        write_json(out / "figures.json", report)
        echo(f"           {step.name}: {record['status']}" + (f" ({record['error']})" if "error" in record else ""))
    report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(out / "figures.json", report)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help=f"every step tiny, on the CPU (also: {SMOKE_ENV}=1)")
    ap.add_argument("--out", type=Path, default=None, help="where figures.json, steps/ and logs/ go (out/gpu)")
    ap.add_argument("--device", default=None, help="the steps' device (cuda; cpu with --cpu-smoke)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for all steps (450; 300 with --cpu-smoke)")
    ap.add_argument("--launch", choices=("fork", "spawn"), default=None, help="how steps start (see the docstring)")
    names = [s.name for s in STEPS]
    ap.add_argument("--only", nargs="+", choices=names, default=None, help="run these steps only")
    ap.add_argument("--skip", nargs="+", choices=names, default=[], help="leave these steps out")
    ap.add_argument("--machine-json", type=Path, help=argparse.SUPPRESS)  # the machine step, spawned
    args = ap.parse_args(argv)
    if args.machine_json:
        machine_info(args.machine_json)
        return 0
    smoke = args.cpu_smoke or os.environ.get(SMOKE_ENV, "") not in ("", "0")
    device = args.device or ("cpu" if smoke else "cuda")
    budget = args.budget or (300.0 if smoke else 450.0)
    launch = args.launch or ("fork" if smoke and hasattr(os, "fork") else "spawn")
    out = (args.out or REPO / "out" / "gpu").resolve()
    steps = [s for s in STEPS if (args.only is None or s.name in args.only) and s.name not in args.skip]
    if launch == "fork":
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # a CUDA check at import stays fork-safe
        for module in PRELOAD:
            try:
                __import__(module)
            except Exception as e:  # noqa: BLE001  (the step that needs it reports the error)
                print(f"preload: {module}: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"grokscope GPU figures: {len(steps)} steps, {'CPU smoke run' if smoke else device}, budget {budget:.0f} s")
    report = run(steps, out, smoke=smoke, device=device, budget=budget, launch=launch)
    bad = [name for name, status in report["summary"].items() if status != "ok"]
    print(f"wrote {out / 'figures.json'} in {report['wall_s']:.0f} s" + (f"; not ok: {', '.join(bad)}" if bad else ""))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
