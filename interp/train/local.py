"""Training prepared jobs on this machine: group them by shape and run each group's batched loop.

`train_many(backend="local")` calls `run_local` in its own process; `backend="ray"` calls it inside
each Ray task (interp.train.ray_backend), so both backends share one training path.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from interp.device import resolve_device
from interp.locks import check_owner
from interp.train.engine import GroupTrainer, Hooks, Job, Outcome, group_key
from interp.train.rundir import prepare_run_dir
from interp.train.targets import check_resume


def prepare_jobs(jobs: list[Job], *, resume: bool, overwrite: bool) -> tuple[dict[int, Outcome], list[Job]]:
    """Check each job's run directory and set `job.resume`: the outcomes of runs already finished, and
    the jobs left to train."""
    finished: dict[int, Outcome] = {}
    todo: list[Job] = []
    for job in jobs:
        saved = None
        if job.run_dir is not None:
            if job.lock_token is not None:  # on a Ray worker: still the lock the driver took for this sweep
                check_owner(job.run_dir, job.lock_token)
            saved = prepare_run_dir(
                job.run_dir,
                model_config=job.model_config,
                task=job.task,
                train_config=job.cfg,
                resume=resume,
                overwrite=overwrite,
            )
            if saved is not None:
                check_resume(job.run_dir, job.targets)  # the same teacher and settings, or none on both sides
        job.resume = saved if saved is not None else job.init
        if job.resume is not None and job.resume.step >= job.cfg.steps:
            r = job.resume
            finished[job.index] = Outcome("complete", r.history, r.params, state=r if job.keep_state else None)
        else:
            todo.append(job)
    return finished, todo


def run_local(jobs: list[Job], hooks: Hooks, max_models: int | None = None) -> dict[int, Outcome]:
    """Train `jobs` (their run directories prepared, `job.resume` set) on this machine; {job.index: Outcome}."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        device = resolve_device(job.cfg.device)
        groups.setdefault(group_key(job, device), []).append(job)
    outcomes: dict[int, Outcome] = {}
    for members in groups.values():
        device = resolve_device(members[0].cfg.device)
        if device.type == "cpu":
            tune_cpu_allocator()
        limit = max_models or models_that_fit(members[0], device)
        for k in range(0, len(members), limit):
            outcomes.update(GroupTrainer(members[k : k + limit], device, hooks).run())
    return outcomes


def models_that_fit(job: Job, device) -> int:
    """How many models of this shape to stack at once: the objective's generous estimate of one model's
    training memory (activations, float64 logits, gradients, optimizer state) against a share of the device's."""
    per_model = job.objective.bytes_per_model(job)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.6 * free
    else:
        try:
            budget = 0.3 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            budget = 4 * 2**30
    return max(1, int(budget // per_model))


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> None:
    """Keep freed large blocks in glibc's heap instead of returning them to the OS at once.

    By default glibc serves every allocation above a few MB with its own mmap and unmaps it on free,
    so each CPU training step pays page faults again for all its large activations (on a VM this was
    most of the step). Raising the mmap and trim thresholds once makes batched CPU training up to
    about 2x faster. Linux/glibc only; set GROKSCOPE_MALLOC_TUNING=0 to leave the allocator alone.
    """
    global _ALLOCATOR_TUNED
    if (
        _ALLOCATOR_TUNED
        or os.environ.get("GROKSCOPE_MALLOC_TUNING", "1") == "0"
        or not sys.platform.startswith("linux")
    ):
        return
    _ALLOCATOR_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 31)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass
