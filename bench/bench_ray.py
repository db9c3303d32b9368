"""The same sweep through `train_many(backend="local")` and `train_many(backend="ray")` on this machine.

The sweep has two shape groups (default: 8 of Doshi et al.'s quadratic MSE MLPs at p = 59, width 256,
over weight decay x label noise x seed; and 8 one-layer transformers at p = 59), full batch. Local
trains the groups one after the other in this process (torch's threads over all cores); Ray (started
here, on `--ray-cpus` of this machine's cores) runs each group as a task with `--cpus-per-task` CPUs,
so groups overlap when there are CPUs for both. `--threads 1 --ray-cpus 1` gives both one core and
runs the same work one group at a time: the difference is Ray's overhead alone. Printed: wall time and model-steps/s of each, the ratio Ray / local with and without Ray's
start-up, and, with --device cuda, the throughput of one GPU (local) against every GPU Ray sees.
The final weights of both are checked to agree (bit for bit on CPU with one thread per task and
--threads 1; within float tolerance otherwise). Usage:

    python bench/bench_ray.py --threads 1 --ray-cpus 1  # Ray's overhead: one core each, a few minutes
    python bench/bench_ray.py                           # the whole machine: torch threads vs Ray tasks
    python bench/bench_ray.py --steps 200 --repeats 1  # a quick look
    python bench/bench_ray.py --device cuda --models 64 --steps 2000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ray  # noqa: E402
import torch  # noqa: E402

from interp.models import MLPConfig, TransformerConfig  # noqa: E402
from interp.tasks import TaskSpec  # noqa: E402
from interp.train import TrainConfig, train_many  # noqa: E402


@dataclasses.dataclass
class Settings:
    """The benchmark sweep and how it runs."""

    p: int = 59
    models: int = 8  # per shape group
    steps: int = 600
    device: str = "cpu"
    threads: int = 0  # torch threads of the local run (0: torch's default)
    ray_cpus: int = 0  # CPUs of the local Ray (0: every core); 1 with --threads 1 isolates Ray's overhead
    cpus_per_task: int = 1
    repeats: int = 2


def sweep(s: Settings) -> list:
    """Two shape groups of `s.models` each: Doshi MLPs (wd x noise x seed) and transformers (seeds)."""
    mlp = MLPConfig(p=s.p, width=256, act="quad")
    tf = TransformerConfig(p=s.p, d_model=64, n_heads=4, d_head=16, d_mlp=256)
    grid = [(wd, xi, seed) for wd in (0.0, 5.0) for xi in (0.0, 0.35) for seed in range(s.models)][: s.models]
    base = TrainConfig(steps=s.steps, eval_every=s.steps // 4, device=s.device, warmup_steps=10)
    jobs = [
        (
            mlp,
            TaskSpec(op="x+y", p=s.p, frac_train=0.5, label_noise=xi, noise_kind="all"),
            dataclasses.replace(base, lr=1e-2, weight_decay=wd, loss="mse", seed=seed),
        )
        for wd, xi, seed in grid
    ]
    jobs += [
        (tf, TaskSpec(op="x+y", p=s.p, frac_train=0.3), dataclasses.replace(base, lr=1e-3, seed=seed))
        for seed in range(s.models)
    ]
    return jobs


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def max_weight_difference(a, b) -> float:
    return max(
        float((x.detach().cpu() - y.detach().cpu()).abs().max())
        for ra, rb in zip(a, b)
        for x, y in zip(ra.model.parameters(), rb.model.parameters())
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Settings):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    s = Settings(**{k: v for k, v in vars(ap.parse_args()).items()})
    if s.threads:
        torch.set_num_threads(s.threads)
    jobs = sweep(s)
    model_steps = len(jobs) * s.steps
    local_s, ray_s = [], []
    with tempfile.TemporaryDirectory(prefix="grokscope-bench-ray-") as tmp:
        t_init, _ = timed(
            ray.init, address="local", num_cpus=s.ray_cpus or None, include_dashboard=False, log_to_driver=False
        )
        resources = ray.cluster_resources()
        for r in range(s.repeats):  # interleaved, so load on a shared machine hits both alike
            dt, local = timed(train_many, jobs, out=Path(tmp) / f"local{r}")
            local_s.append(dt)
            dt, remote = timed(
                train_many, jobs, out=Path(tmp) / f"ray{r}", backend="ray", cpus_per_task=s.cpus_per_task
            )
            ray_s.append(dt)
        ray.shutdown()
    best_local, best_ray = min(local_s), min(ray_s)
    report = {
        "settings": dataclasses.asdict(s),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
            "ray": ray.__version__,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "ray_resources": {k: v for k, v in resources.items() if k in ("CPU", "GPU")},
        },
        "model_steps": model_steps,
        "local_s": local_s,
        "ray_s": ray_s,
        "ray_start_s": t_init,
        "local_model_steps_per_s": model_steps / best_local,
        "ray_model_steps_per_s": model_steps / best_ray,
        "ratio_ray_over_local": best_ray / best_local,
        "ratio_with_ray_start": (best_ray + t_init) / best_local,
        "max_weight_difference": max_weight_difference(local, remote),
    }
    print(json.dumps(report, indent=1))
    print(
        f"\n{len(jobs)} models x {s.steps} steps ({model_steps} model-steps), best of {s.repeats}: local "
        f"{best_local:.1f} s ({report['local_model_steps_per_s']:.0f} model-steps/s), Ray {best_ray:.1f} s "
        f"({report['ray_model_steps_per_s']:.0f} model-steps/s); Ray / local = {report['ratio_ray_over_local']:.2f}"
        f" ({report['ratio_with_ray_start']:.2f} counting Ray's {t_init:.1f} s start-up); final weights differ by "
        f"at most {report['max_weight_difference']:.2g}."
    )


if __name__ == "__main__":
    main()
