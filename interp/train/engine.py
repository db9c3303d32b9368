"""The training loop, for a group of models trained as one batched computation, whatever they learn.

`train` runs a group of one; `train_many` splits its jobs into groups and runs each. The loop is the
same for every kind of problem; what is specific to one (its data and randomness, its loss, its
metrics, its initial weights, state beyond the weights) is the group's objective
(interp.train.objective; the arithmetic tasks' is interp.train.pairs.PairObjective, the studies bring
theirs). Per step: each model's loss [M] from the objective, one backward, one vectorised optimizer
update on the flat weights [M, P]; no host synchronisation. A per-model flag records the first
non-finite loss; it is read at evaluations, which bring every metric of every model to the host in
one transfer. At evaluations the loop writes weight files, run.json and resume states, stops models
that diverged (the others go on) and calls the caller's hooks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.checkpoints import checkpoint_path, save_weights, write_run_json
from interp.errors import RunLockedError
from interp.locks import check_owner
from interp.train.objective import default_eval_steps
from interp.train.optim import BatchedOptimizer
from interp.train.pairs import PairObjective, minibatch_order, per_model_loss
from interp.train.rundir import TrainState, state_path, write_state
from interp.train_config import torch_dtype

__all__ = [
    "GroupTrainer",
    "Hooks",
    "Job",
    "Outcome",
    "eval_steps",
    "group_key",
    "minibatch_order",
    "per_model_loss",
]

eval_steps = default_eval_steps  # the steps at which a model is evaluated (the reference loop's too)


@dataclass
class Job:
    """One model to train: configs, what it fits, where it writes, and where it starts from."""

    index: int
    model_config: object
    task: object  # a Task for the arithmetic tasks; the objective's data otherwise
    cfg: object  # TrainConfig
    run_dir: Path | None = None
    resume: TrainState | None = None  # where it starts: a saved state, `init`, or None (fresh weights)
    targets: object = None  # what it fits besides the task: Targets (pairs), a teacher (a study's objective)
    objective: type | None = None  # the Objective class (None: PairObjective)
    init: TrainState | None = None  # start from this state in memory when the run directory holds none
    snapshot_steps: tuple[int, ...] = ()  # also checkpoint these steps and keep their weights in memory
    keep_state: bool = False  # hand back the final optimizer and extra state (to continue in memory)
    lock_token: str | None = None  # the writer lock run_dir is held under (interp.locks); checked before writes

    def __post_init__(self):
        if self.objective is None:
            self.objective = PairObjective


@dataclass
class Outcome:
    """How a job ended: status "complete" or "diverged", its history and final weights."""

    status: str
    history: list[dict]
    state_dict: dict[str, torch.Tensor] | None = None
    message: str = ""
    diverged_step: int | None = None
    last_good_checkpoint: int | None = None
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    state: TrainState | None = None  # the final state, with Job.keep_state


@dataclass
class Hooks:
    """Caller hooks: `callback(job_index, history_entry)` after each evaluation has been written;
    `progress(n)` with the number of model-steps done since the last call (about twice a second)."""

    callback: object = None
    progress: object = None
    state_every_s: float = 60.0
    keep_weights: bool = True  # False: outcomes carry no final weights (a big sweep's driver need not hold them)
    _last_progress: float = field(default=0.0)
    _pending: int = field(default=0)


class GroupTrainer:
    """Trains the jobs of one group (same objective, shapes, steps and optimizer kind; `group_key`)."""

    def __init__(self, jobs: list[Job], device: torch.device, hooks: Hooks):
        self.jobs = list(jobs)
        self.device, self.hooks = device, hooks
        cfg = jobs[0].cfg
        self.steps, self.kind = cfg.steps, cfg.optimizer
        self.objective = jobs[0].objective(self.jobs, device, torch_dtype(cfg.dtype))
        self.layout = self.objective.layout
        self.start = jobs[0].resume.step if jobs[0].resume else 0

        states = [j.resume.params if j.resume is not None else self.objective.initial_state(j) for j in jobs]
        self.flat = self.layout.stack(states, device, torch_dtype(cfg.dtype))  # [M, P]: every weight of every model
        self.opt = BatchedOptimizer(
            self.kind,
            self.flat,
            self.layout.layout,
            weight_decay=[j.cfg.weight_decay for j in jobs],
            betas=[list(j.cfg.betas) for j in jobs],
            momentum=[j.cfg.momentum for j in jobs],
        )
        if self.start and all(j.resume.optimizer for j in jobs):
            where = [state_path(j.run_dir) if j.run_dir is not None else f"model {j.index}" for j in jobs]
            self.opt.load_model_states([j.resume.optimizer for j in jobs], t=self.start, where=where)
        self.objective.begin(self.flat.detach(), [j.resume.extra if j.resume else None for j in jobs])
        self.history = [list(j.resume.history) if j.resume else [] for j in jobs]
        self.eval_at = [self.objective.eval_steps(j) | set(j.snapshot_steps) | {j.cfg.steps} for j in jobs]
        self.ckpt_at = [(set(j.cfg.checkpoint_steps()) | set(j.snapshot_steps)) & e for j, e in zip(jobs, self.eval_at)]
        self.last_ckpt = [j.resume.last_checkpoint if j.resume else None for j in jobs]
        self.snapshots: list[dict[int, dict]] = [{} for _ in jobs]
        self.outcomes: dict[int, Outcome] = {}
        self._reset_flags()
        self._last_state_write = -math.inf

    # ----- per-step pieces ---------------------------------------------------------------------
    def _reset_flags(self):
        M = len(self.jobs)
        self.first_bad = torch.full((M,), -1, dtype=torch.long, device=self.device)
        self.bad_loss = torch.zeros(M, dtype=torch.float64, device=self.device)

    def _lr_table(self, s0: int, s1: int) -> torch.Tensor:
        """[s1 - s0, M] learning rates (float64) for the updates s0..s1-1, on the device."""
        table = [[j.cfg.lr_at(s) for j in self.jobs] for s in range(s0, s1)]
        return torch.tensor(table, dtype=torch.float64).to(self.device)

    def _train_step(self, step: int, lr: torch.Tensor):
        losses, grad = self.objective.loss_and_grad(self.flat, step)  # [M], [M, P]
        with torch.no_grad():
            newly_bad = ~torch.isfinite(losses) & (self.first_bad < 0)
            self.first_bad = torch.where(newly_bad, step, self.first_bad)
            self.bad_loss = torch.where(newly_bad, losses.double(), self.bad_loss)
        self.opt.step(self.flat, grad, lr)
        self.objective.after_update(self.flat.detach())

    # ----- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def _evaluate(self) -> list[list[float]]:
        """Per model: the objective's metrics, the weight norm, the first bad step and its loss."""
        metrics = self.objective.evaluate(self.flat.detach()).double()  # [M, K]
        wn = self.flat.detach().double().pow(2).sum(1).sqrt()
        packed = torch.cat([metrics, wn[:, None], self.first_bad[:, None].double(), self.bad_loss[:, None]], 1)
        return packed.cpu().tolist()

    # ----- the loop ----------------------------------------------------------------------------
    def run(self) -> dict[int, Outcome]:
        points = sorted(set().union(*self.eval_at))
        if self.start in points and not any(h and h[-1]["step"] == self.start for h in self.history):
            self._at_eval(self.start)  # a fresh start (a saved state has evaluated its step already)
        s = self.start
        for nxt in (q for q in points if q > self.start):
            if not self.jobs:
                break
            lrs = self._lr_table(s, nxt)
            for step in range(s, nxt):
                self._train_step(step, lrs[step - s])
                self._tick(len(self.jobs))
            s = nxt
            self._at_eval(s)
        return self.outcomes

    def seconds_per_step(self, warmup: int = 2, budget_s: float = 0.3, max_steps: int = 50) -> float:
        """Wall-clock seconds of one training step of the whole group: `warmup` untimed steps, then steps
        timed until `budget_s` seconds or `max_steps` steps (the weights change; nothing is written)."""
        lrs = self._lr_table(0, warmup + max_steps)
        for step in range(warmup):
            self._train_step(step, lrs[step])
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda device=None: None)
        sync(self.device)
        t0, n = time.perf_counter(), 0
        while n < max_steps and (n == 0 or time.perf_counter() - t0 < budget_s):
            self._train_step(warmup + n, lrs[warmup + n])
            n += 1
            sync(self.device)
        return (time.perf_counter() - t0) / n

    def _tick(self, n_models: int):
        h = self.hooks
        if h.progress is None:
            return
        h._pending += n_models
        now = time.perf_counter()
        if now - h._last_progress >= 0.5:
            h.progress(h._pending)
            h._pending, h._last_progress = 0, now

    def _flush_progress(self):
        h = self.hooks
        if h.progress is not None and h._pending:
            h.progress(h._pending)
            h._pending = 0

    def _at_eval(self, step: int):
        rows = self._evaluate()
        keys = list(self.objective.metric_names)
        K = len(keys)
        final = step == self.steps
        now = time.monotonic()
        write_state_now = final or now - self._last_state_write >= self.hooks.state_every_s
        keep = []
        for i, (job, row) in enumerate(zip(self.jobs, rows)):
            entry = {"step": step, **dict(zip(keys, row[:K])), "weight_norm": row[K]}
            first_bad, bad_loss = int(row[K + 1]), row[K + 2]
            loss = entry[self.objective.loss_metric]
            if first_bad >= 0 or not math.isfinite(row[K]) or not math.isfinite(loss):
                self._diverge(i, step if first_bad < 0 else first_bad, bad_loss if first_bad >= 0 else loss)
                continue
            if step not in self.eval_at[i]:
                keep.append(i)
                continue
            self.history[i].append(entry)
            is_ckpt = step in self.ckpt_at[i]
            if job.run_dir is not None:
                try:
                    self._write(i, step, entry, is_ckpt, final, write_state_now or is_ckpt)
                except RunLockedError as exc:  # another writer took the directory: stop this run, the others go on
                    self.outcomes[job.index] = Outcome("failed", self.history[i], None, str(exc))
                    continue
            keep.append(i)
            if is_ckpt:
                self.last_ckpt[i] = step
            if step in job.snapshot_steps:
                self.snapshots[i][step] = self.layout.state(self.flat, i)
            if final:
                self.outcomes[job.index] = self._complete(i)
            if self.hooks.callback is not None:
                self.hooks.callback(job.index, entry)
        if write_state_now:
            self._last_state_write = now
        if len(keep) < len(self.jobs):
            self._select(keep)
        self._flush_progress()

    def _complete(self, i: int) -> Outcome:
        job, weights = self.jobs[i], self.layout.state(self.flat, i)
        state = None
        if job.keep_state:
            state = TrainState(
                step=self.steps,
                params=dict(weights),
                optimizer={k: v.clone() for k, v in self.opt.model_state(i).items()},
                history=list(self.history[i]),
                status="complete",
                last_checkpoint=self.last_ckpt[i],
                extra={k: v.clone() for k, v in self.objective.extra_state(i).items()},
            )
        if not self.hooks.keep_weights:  # a big sweep's driver need not hold every model
            weights = None
        return Outcome("complete", self.history[i], weights, snapshots=self.snapshots[i], state=state)

    def _write(self, i: int, step: int, entry: dict, is_ckpt: bool, final: bool, state: bool):
        job = self.jobs[i]
        if job.lock_token is not None:
            check_owner(job.run_dir, job.lock_token)
        specs = dict(model_config=job.model_config, task_spec=job.task, train_config=job.cfg)
        if is_ckpt:
            model = self.objective.model_at(self.flat, i)
            save_weights(checkpoint_path(job.run_dir, step), model, step=step, metrics=entry, **specs)
        status = "complete" if final else "running"
        write_run_json(
            job.run_dir, history=self.history[i], status=status, extra=self.objective.run_extra(job), **specs
        )
        if state:
            write_state(
                job.run_dir,
                step=step,
                params={n: w[0] for n, w in self.layout.views(self.flat.detach()[i : i + 1]).items()},
                optimizer=self.opt.model_state(i),
                history=self.history[i],
                model_config=job.model_config,
                task=job.task,
                train_config=job.cfg,
                status=status,
                extra=self.objective.extra_state(i),
            )

    def _diverge(self, i: int, step: int, value: float):
        job = self.jobs[i]
        cfg = job.cfg
        where = (
            f"the last good checkpoint is {checkpoint_path(job.run_dir, self.last_ckpt[i])} (step {self.last_ckpt[i]})"
            if job.run_dir is not None and self.last_ckpt[i] is not None
            else f"the last good evaluation is step {self.history[i][-1]['step']}"
            if self.history[i]
            else "no good evaluation was recorded"
        )
        msg = (
            f"training diverged: the loss became {value} at step {step} "
            f"(optimizer={cfg.optimizer}, lr={cfg.lr:g}, weight_decay={cfg.weight_decay:g}); {where}. "
            + self.objective.divergence_advice(cfg)
        )
        lost = None
        if job.run_dir is not None and job.lock_token is not None:
            try:
                check_owner(job.run_dir, job.lock_token)
            except RunLockedError as exc:
                lost = str(exc)
        if lost is not None:
            self.outcomes[job.index] = Outcome("failed", self.history[i], None, lost)
            return
        if job.run_dir is not None:
            write_run_json(
                job.run_dir,
                model_config=job.model_config,
                task_spec=job.task,
                train_config=cfg,
                history=self.history[i],
                status="diverged",
                extra={
                    **self.objective.run_extra(job),
                    "diverged": {
                        "step": step,
                        "loss": value,
                        "message": msg,
                        "last_good_checkpoint": self.last_ckpt[i],
                    },
                },
            )
        self.outcomes[job.index] = Outcome(
            "diverged", self.history[i], None, msg, diverged_step=step, last_good_checkpoint=self.last_ckpt[i]
        )

    def _select(self, keep: list[int]):
        """Drop the models not in `keep` from every stacked tensor."""
        idx = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.flat = self.flat.detach().index_select(0, idx).requires_grad_(True)
        self.opt.select(idx)
        self.objective.select(idx)
        for name in ("jobs", "history", "eval_at", "ckpt_at", "last_ckpt", "snapshots"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self.first_bad = self.first_bad.index_select(0, idx)
        self.bad_loss = self.bad_loss.index_select(0, idx)


def group_key(job: Job, device) -> tuple:
    """Jobs with equal keys are trained as one batched computation: the same objective, device, dtype,
    optimizer, number of steps and starting step, and whatever else the objective needs them to share."""
    cfg = job.cfg
    return (
        f"{job.objective.__module__}.{job.objective.__qualname__}",
        str(device),
        cfg.dtype,
        cfg.optimizer,
        cfg.steps,
        job.resume.step if job.resume else -1,  # a state saved at step 0 is not a fresh start
        bool(job.resume and job.resume.optimizer),
    ) + tuple(job.objective.group_key(job))
