"""What a sweep will cost before it starts (`interp.train.estimate_sweep`): models, parameters, memory,
disk, time.

The numbers come from a documented model, checked against measured sweeps (bench/README.md, "Sweep
estimates"):
- memory: the largest batch trained at once (interp.train.local.models_that_fit's per-model estimate
  times the models stacked), plus what the driver holds until the sweep returns: each run's final
  weights (twice: the outcome and the TrainResult's model, unless `keep_models=False`) and its history
  (about 1.5 KiB per evaluation as Python dicts);
- disk: per run, every checkpoint (the weights plus about 2 KiB of specs), the resume state (weights and
  optimizer state) and run.json (about 0.7 KiB per evaluation); runs already on disk are counted too, so
  it is an upper bound when resuming;
- time: a few steps of each shape group (about 0.3 s) measured on this machine with up to 8 models stacked, scaled
  linearly in models and steps (batching makes a big group faster than that, so this errs long), or
  None when not measured.

`train_many` refuses a sweep whose memory or disk estimate exceeds what this machine has
(`size_check=False`, `interp-train --no-size-check`, overrides it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import torch

from interp.errors import SpecError
from interp.models import count_params
from interp.results import Result
from interp.train.engine import GroupTrainer, Hooks, Job, group_key
from interp.train.local import models_that_fit
from interp.train.optim import state_slots
from interp.train_config import torch_dtype

HISTORY_ENTRY_BYTES = 1536  # one evaluation as a Python dict of 14 floats, held by the driver
RUN_JSON_ENTRY_BYTES = 700  # one evaluation in run.json
SPECS_BYTES = 2048  # the JSON specs in a weight file's metadata, and run.json's header
MEASURE_MODELS = 8  # models stacked when timing a group


@dataclasses.dataclass(frozen=True)
class SweepEstimate(Result):
    """The size of a sweep and what it will take: bytes, seconds (None where not measured)."""

    models: int
    groups: int
    parameters: int  # all models together
    model_steps: int
    memory_bytes: int  # training peak + results held by the driver
    training_memory_bytes: int
    results_memory_bytes: int
    disk_bytes: int
    available_memory_bytes: int | None
    free_disk_bytes: int | None
    seconds_per_model_step: float | None
    seconds: float | None

    def problems(self) -> list[str]:
        """Why the sweep cannot fit on this machine (empty when it can)."""
        out = []
        if self.available_memory_bytes is not None and self.memory_bytes > self.available_memory_bytes:
            out.append(
                f"it needs about {_size(self.memory_bytes)} of memory ({_size(self.training_memory_bytes)} to train "
                f"the largest batch, {_size(self.results_memory_bytes)} for the {self.models} results held until "
                f"it returns) and {_size(self.available_memory_bytes)} is available"
            )
        if self.free_disk_bytes is not None and self.disk_bytes > self.free_disk_bytes:
            out.append(f"it writes about {_size(self.disk_bytes)} and {_size(self.free_disk_bytes)} is free there")
        return out

    def summary(self) -> str:
        """One paragraph for a person: the size, then each estimate against what there is."""
        avail = f", {_size(self.available_memory_bytes)} available" if self.available_memory_bytes else ""
        free = f", {_size(self.free_disk_bytes)} free" if self.free_disk_bytes is not None else ""
        text = (
            f"{self.models} model{'s' * (self.models != 1)} in {self.groups} batch group"
            f"{'s' * (self.groups != 1)}, {_count(self.parameters)} parameters, {_count(self.model_steps)} "
            f"model-steps; memory about {_size(self.memory_bytes)} (training {_size(self.training_memory_bytes)} + "
            f"results {_size(self.results_memory_bytes)}{avail}); disk about {_size(self.disk_bytes)}{free}"
        )
        if self.seconds_per_model_step is not None:
            text += (
                f"; {self.seconds_per_model_step * 1e3:.3g} ms per model-step measured here, about "
                f"{_duration(self.seconds)} in all (an upper bound: big batches run faster per model)"
            )
        return text + "."


def estimate_prepared(jobs: list[Job], out=None, *, keep_models: bool = True, measure: bool = False,
                   max_models: int | None = None, here: bool = True) -> SweepEstimate:  # fmt: skip
    """The estimate of training prepared `jobs` (interp.train.engine.Job) into `out` (a folder or None).

    measure=True times each shape group here (a second or so per group); here=False (a Ray driver):
    training memory and time are the workers', so only the results held and the disk are estimated."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(group_key(job, _device(job)), []).append(job)
    training, seconds = 0, 0.0
    for members in groups.values():
        device = _device(members[0])
        limit = max_models or models_that_fit(members[0], device)
        if here and device.type == "cpu":  # GPU memory is budgeted by models_that_fit against the free memory itself
            training = max(training, min(len(members), limit) * members[0].objective.bytes_per_model(members[0]))
        if measure and here:
            seconds += _seconds_per_model_step(members, device) * sum(
                j.cfg.steps - (j.resume.step if j.resume else 0) for j in members
            )
    results = sum(_result_bytes(j, keep_models) for j in jobs)
    disk = sum(_disk_bytes(j) for j in jobs) if out is not None else 0
    model_steps = sum(j.cfg.steps for j in jobs)
    return SweepEstimate(
        models=len(jobs),
        groups=len(groups),
        parameters=sum(count_params(j.model_config) for j in jobs),
        model_steps=model_steps,
        memory_bytes=training + results,
        training_memory_bytes=training,
        results_memory_bytes=results,
        disk_bytes=disk,
        available_memory_bytes=available_memory(),
        free_disk_bytes=free_disk(out) if out is not None else None,
        seconds_per_model_step=(seconds / max(1, model_steps)) if measure and here else None,
        seconds=seconds if measure and here else None,
    )


def check_fits(estimate: SweepEstimate, flag: str = "size_check=False (interp-train --no-size-check)") -> None:
    """SpecError naming what does not fit and the override, when the sweep cannot fit on this machine."""
    problems = estimate.problems()
    if problems:
        raise SpecError(
            "train_many", "jobs", f"{estimate.models} models",
            "a sweep that fits on this machine",
            f"This sweep cannot fit: {'; '.join(problems)}. Split it (fewer models per call, or backend='ray'), "
            f"free space, or pass {flag} to start it anyway. Nothing was trained.",
        )  # fmt: skip


def _device(job: Job) -> torch.device:
    from interp.device import resolve_device

    try:
        return resolve_device(job.cfg.device)
    except Exception:  # noqa: BLE001 - on a Ray driver the workers' devices count: estimate for the CPU
        return torch.device("cpu")


def _weight_bytes(job: Job) -> int:
    return count_params(job.model_config) * torch.tensor([], dtype=torch_dtype(job.cfg.dtype)).element_size()


def _result_bytes(job: Job, keep_models: bool) -> int:
    evals = len(job.objective.eval_steps(job))
    return (2 * _weight_bytes(job) if keep_models else 0) + evals * HISTORY_ENTRY_BYTES


def _disk_bytes(job: Job) -> int:
    weights = _weight_bytes(job)
    checkpoints = len(job.cfg.checkpoint_steps()) * (weights + SPECS_BYTES)
    slots = len(state_slots(job.cfg.optimizer, (2, 2)))  # matrices: the most state per parameter
    state = weights * (1 + slots) + SPECS_BYTES + len(job.objective.eval_steps(job)) * RUN_JSON_ENTRY_BYTES
    run_json = SPECS_BYTES + len(job.objective.eval_steps(job)) * RUN_JSON_ENTRY_BYTES
    return checkpoints + state + run_json


def _seconds_per_model_step(members: list[Job], device) -> float:
    """Seconds per model-step of this shape group, timed on up to MEASURE_MODELS models (nothing is written)."""
    sample = [dataclasses.replace(j, run_dir=None, resume=None, lock_token=None) for j in members[:MEASURE_MODELS]]
    return GroupTrainer(sample, device, Hooks()).seconds_per_step() / len(sample)


def available_memory() -> int | None:
    """Memory this machine can still give (Linux: MemAvailable), else its total; None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def free_disk(folder) -> int | None:
    """Free bytes on the filesystem that holds `folder` (or its nearest existing ancestor)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    for unit, size in (("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.1f} s"
