"""The training loop, for a group of models of one shape trained as one batched computation.

`train` runs a group of one; `train_many` splits its jobs into groups of equal shape and runs each.
Per step: one batched forward (logits [M, B, p]), per-model losses [M], one backward, one vectorised
optimizer update; no host synchronisation. A per-model flag records the first non-finite loss; it is
read at evaluations, which compute every metric of every model on the whole table in a few batched
passes and bring them to the host in one transfer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from interp.checkpoints import checkpoint_path, save_weights, write_run_json
from interp.errors import RunLockedError
from interp.locks import check_owner
from interp.metrics import METRIC_SUBSETS
from interp.models import build_model
from interp.models.stacked import StackedModels
from interp.train.distill import Targets, run_extra
from interp.train.optim import BatchedOptimizer
from interp.train.rundir import ResumePoint, state_path, write_state
from interp.train_config import torch_dtype

_STREAM_MINIBATCH = 11  # keeps minibatch order independent of the task's own random streams


@dataclass
class Job:
    """One model to train: configs, where it writes, and where it restarts from."""

    index: int
    model_config: object
    task: object
    cfg: object  # TrainConfig
    run_dir: Path | None = None
    resume: ResumePoint | None = None
    targets: Targets | None = None  # None: the task's training split and its (given) labels
    lock_token: str | None = None  # the writer lock run_dir is held under (interp.locks); checked before writes

    @property
    def n_fit(self) -> int:
        """Number of examples the model trains on."""
        return self.task.n_train if self.targets is None else len(self.targets.inputs)


@dataclass
class Outcome:
    """How a job ended: status "complete" or "diverged", its history and final weights."""

    status: str
    history: list[dict]
    state_dict: dict[str, torch.Tensor] | None = None
    message: str = ""
    diverged_step: int | None = None
    last_good_checkpoint: int | None = None


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


def minibatch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a permutation of range(n) from a PCG64 stream keyed by
    (seed, epoch), identical on every machine, so a resumed run draws the same batches."""
    bits = np.random.PCG64(np.random.SeedSequence([int(seed), _STREAM_MINIBATCH, int(epoch)])).random_raw(n)
    return np.argsort(bits, kind="stable")


def eval_steps(cfg) -> set[int]:
    """Steps at which a model is evaluated: every eval_every, the last step, and its checkpoint steps."""
    return set(range(0, cfg.steps + 1, cfg.eval_every)) | {cfg.steps} | set(cfg.checkpoint_steps())


def per_model_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    kind: str,
    loss_dtype: torch.dtype,
    probs: torch.Tensor | None = None,
    temperature: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss of each model: logits [M, B, p], labels [M, B] -> [M]. Cross-entropy, or MSE on
    one-hot targets (sum over classes, mean over examples, as Doshi et al.). With soft targets
    probs [M, B, p] and temperature [M]: T^2 * CE(probs, softmax(logits / T)) (Hinton et al.)."""
    M, B, p = logits.shape
    lg = logits.to(loss_dtype)
    if probs is not None:
        t = temperature.to(lg.dtype)  # [M]
        logq = (lg / t.view(M, 1, 1)).log_softmax(-1)  # [M, B, p]
        return -(probs.to(lg.dtype) * logq).sum(-1).mean(-1) * t.pow(2)
    if kind == "ce":
        return F.cross_entropy(lg.reshape(M * B, p), labels.reshape(M * B), reduction="none").view(M, B).mean(1)
    return (lg - F.one_hot(labels, p).to(lg.dtype)).pow(2).sum(-1).mean(-1)


class _GroupData:
    """The tasks of a group as stacked tensors on the device (rebuilt when models drop out)."""

    def __init__(self, jobs: list[Job], stacker: StackedModels, device):
        self.stacker, self.device = stacker, device
        tasks = [j.task for j in jobs]
        fits = [j.targets for j in jobs]  # all None, or all set with equal sizes (group_key)
        pairs = [t.train_inputs if f is None else f.inputs for t, f in zip(tasks, fits)]
        labels = [t.train_labels if f is None else f.labels for t, f in zip(tasks, fits)]
        self.train_pairs = torch.stack(pairs).to(device)  # [M, n_train, 2]
        self.train_labels = torch.stack(labels).to(device)  # [M, n_train]
        self.train_probs, self.temperature = None, None  # soft targets [M, n_train, p], temperatures [M]
        if fits[0] is not None and fits[0].probs is not None:
            self.train_probs = torch.stack([f.probs for f in fits]).to(device)
            self.temperature = torch.tensor([f.temperature for f in fits], dtype=torch.float64, device=device)
        self.eval_pairs = torch.stack([t.inputs for t in tasks]).to(device)  # [M, N, 2]
        true = torch.stack([t.labels for t in tasks])  # [M, N]
        given = true.clone()
        N = true.shape[1]
        train_m, noisy_m, test_m = (torch.zeros(len(tasks), N, dtype=torch.bool) for _ in range(3))
        for i, t in enumerate(tasks):
            given[i, t.train_idx] = t.train_labels
            train_m[i, t.train_idx] = True
            noisy_m[i, t.train_idx[t.noisy_mask]] = True
            test_m[i, t.test_idx] = True
        clean_m = train_m & ~noisy_m
        self.true, self.given = true.to(device), given.to(device)
        # Subsets of METRIC_SUBSETS, each scored against the given or the true labels.
        self.given_masks = torch.stack([train_m, clean_m, noisy_m], 1).to(device, torch.float64)  # [M, 3, N]
        self.true_masks = torch.stack([noisy_m, train_m, test_m], 1).to(device, torch.float64)  # [M, 3, N]
        self._prepare()

    def _prepare(self):
        self.train_x = self.stacker.prepare(self.train_pairs)
        self.eval_x = self.stacker.prepare(self.eval_pairs)

    def select(self, keep: torch.Tensor):
        for name in ("train_pairs", "train_labels", "eval_pairs", "true", "given", "given_masks", "true_masks"):
            setattr(self, name, getattr(self, name).index_select(0, keep))
        if self.train_probs is not None:
            self.train_probs = self.train_probs.index_select(0, keep)
            self.temperature = self.temperature.index_select(0, keep)
        self._prepare()


def _metric_keys() -> list[str]:
    return [f"{s}_{m}" for s in METRIC_SUBSETS for m in ("acc", "loss")]


class GroupTrainer:
    """Trains the jobs of one group (same model shapes, task sizes, steps and optimizer kind)."""

    def __init__(self, jobs: list[Job], device: torch.device, hooks: Hooks):
        self.jobs = list(jobs)
        self.device, self.hooks = device, hooks
        cfg = jobs[0].cfg
        self.steps, self.kind = cfg.steps, cfg.optimizer
        self.loss_kind, self.loss_dtype = cfg.loss, torch_dtype(cfg.loss_dtype)
        self.stacker = StackedModels(jobs[0].model_config, device, torch_dtype(cfg.dtype))
        n_train = jobs[0].n_fit
        self.batch_size = None if cfg.batch_size is None or cfg.batch_size >= n_train else cfg.batch_size
        self.start = jobs[0].resume.step if jobs[0].resume else 0

        states = []
        for j in jobs:
            if j.resume is not None:
                states.append(j.resume.params)
            else:
                states.append(build_model(j.model_config, seed=j.cfg.seed).state_dict())
        self.flat = self.stacker.stack(states)  # [M, P]: every weight of every model
        self.opt = BatchedOptimizer(
            self.kind,
            self.flat,
            list(zip(self.stacker.names, self.stacker.shapes)),
            weight_decay=[j.cfg.weight_decay for j in jobs],
            betas=[list(j.cfg.betas) for j in jobs],
            momentum=[j.cfg.momentum for j in jobs],
        )
        if self.start:
            where = [state_path(j.run_dir) if j.run_dir is not None else f"model {j.index}" for j in jobs]
            self.opt.load_model_states([j.resume.optimizer for j in jobs], t=self.start, where=where)
        self.data = _GroupData(jobs, self.stacker, device)
        self.history = [list(j.resume.history) if j.resume else [] for j in jobs]
        self.eval_at = [eval_steps(j.cfg) for j in jobs]
        self.ckpt_at = [set(j.cfg.checkpoint_steps()) for j in jobs]
        self.last_ckpt = [j.resume.last_checkpoint if j.resume else None for j in jobs]
        self.outcomes: dict[int, Outcome] = {}
        self._epoch_cache: tuple[int, torch.Tensor] | None = None
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

    def _batch(self, step: int):
        """Inputs, labels [M, B] and soft targets [M, B, p] (or None) of the batch at `step`."""
        probs = self.data.train_probs
        if self.batch_size is None:
            return self.data.train_x, self.data.train_labels, probs
        n = self.data.train_labels.shape[1]
        per_epoch = n // self.batch_size
        epoch, k = divmod(step, per_epoch)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            orders = np.stack([minibatch_order(j.cfg.seed, epoch, n) for j in self.jobs])
            self._epoch_cache = (epoch, torch.from_numpy(orders).to(self.device))
        idx = self._epoch_cache[1][:, k * self.batch_size : (k + 1) * self.batch_size]  # [M, bs]
        x = self.data.train_x
        xb = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        pb = None if probs is None else probs.gather(1, idx.unsqueeze(-1).expand(-1, -1, probs.shape[-1]))
        return xb, self.data.train_labels.gather(1, idx), pb

    def _train_step(self, step: int, lr: torch.Tensor):
        xb, yb, pb = self._batch(step)
        logits = self.stacker.forward(self.stacker.views(self.flat), xb)  # [M, B, p]
        losses = per_model_loss(logits, yb, self.loss_kind, self.loss_dtype, pb, self.data.temperature)  # [M]
        (grad,) = torch.autograd.grad(losses.sum(), self.flat)  # [M, P]
        with torch.no_grad():
            newly_bad = ~torch.isfinite(losses) & (self.first_bad < 0)
            self.first_bad = torch.where(newly_bad, step, self.first_bad)
            self.bad_loss = torch.where(newly_bad, losses.double(), self.bad_loss)
        self.opt.step(self.flat, grad, lr)

    # ----- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def _evaluate(self) -> list[list[float]]:
        """Per model: the METRIC_SUBSETS accuracies and losses, weight norm, first bad step, bad loss."""
        d = self.data
        M, N = d.true.shape
        budget = (1 << 28) if self.device.type == "cuda" else (1 << 26)
        chunk = max(1, budget // max(1, M * self.stacker.activation_size()))
        params = self.stacker.views(self.flat.detach())
        cols = []  # per chunk: [M, 4, C] loss_given, loss_true, correct_given, correct_true
        for c0 in range(0, N, chunk):
            logits = self.stacker.forward(params, d.eval_x[:, c0 : c0 + chunk]).float().double()
            logp = logits.log_softmax(-1)
            g, t = d.given[:, c0 : c0 + chunk], d.true[:, c0 : c0 + chunk]
            pred = logits.argmax(-1)
            cols.append(
                torch.stack(
                    [
                        -logp.gather(-1, g.unsqueeze(-1)).squeeze(-1),
                        -logp.gather(-1, t.unsqueeze(-1)).squeeze(-1),
                        (pred == g).double(),
                        (pred == t).double(),
                    ],
                    1,
                )
            )
        per_pair = torch.cat(cols, -1)  # [M, 4, N]

        def scored(masks, loss, correct):  # masks [M, 3, N] -> acc, loss [M, 3]
            count = masks.sum(-1)
            return (masks * correct.unsqueeze(1)).sum(-1) / count, (masks * loss.unsqueeze(1)).sum(-1) / count

        acc_g, los_g = scored(d.given_masks, per_pair[:, 0], per_pair[:, 2])
        acc_t, los_t = scored(d.true_masks, per_pair[:, 1], per_pair[:, 3])
        # METRIC_SUBSETS order: train, train_clean, train_noisy (given), train_noisy_true, train_true, test (true)
        acc = torch.cat([acc_g, acc_t], 1)
        loss = torch.cat([los_g, los_t], 1)
        metrics = torch.stack([acc, loss], -1).reshape(M, 12)  # [M, 12]: acc, loss per subset
        wn = self.flat.detach().double().pow(2).sum(1).sqrt()
        packed = torch.cat([metrics, wn[:, None], self.first_bad[:, None].double(), self.bad_loss[:, None]], 1)
        return packed.cpu().tolist()

    # ----- the loop ----------------------------------------------------------------------------
    def run(self) -> dict[int, Outcome]:
        points = sorted(set().union(*self.eval_at))
        if not self.start and not any(j.resume for j in self.jobs):  # a state saved at step 0 has evaluated it
            self._at_eval(0)
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
        keys = _metric_keys()
        final = step == self.steps
        now = time.monotonic()
        write_state_now = final or now - self._last_state_write >= self.hooks.state_every_s
        keep = []
        for i, (job, row) in enumerate(zip(self.jobs, rows)):
            entry = {"step": step, **dict(zip(keys, row[:12])), "weight_norm": row[12]}
            first_bad, bad_loss = int(row[13]), row[14]
            if first_bad >= 0 or not math.isfinite(row[12]) or not math.isfinite(entry["train_loss"]):
                self._diverge(
                    i, step if first_bad < 0 else first_bad, bad_loss if first_bad >= 0 else entry["train_loss"]
                )
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
            if final:
                weights = self.stacker.views(self.flat.detach()[i : i + 1]) if self.hooks.keep_weights else None
                self.outcomes[job.index] = Outcome(
                    "complete", self.history[i], {n: w[0].clone() for n, w in weights.items()} if weights else None
                )
            if self.hooks.callback is not None:
                self.hooks.callback(job.index, entry)
        if write_state_now:
            self._last_state_write = now
        if len(keep) < len(self.jobs):
            self._select(keep)
        self._flush_progress()

    def _write(self, i: int, step: int, entry: dict, is_ckpt: bool, final: bool, state: bool):
        job = self.jobs[i]
        if job.lock_token is not None:
            check_owner(job.run_dir, job.lock_token)
        specs = dict(model_config=job.model_config, task_spec=job.task, train_config=job.cfg)
        if is_ckpt:
            model = self.stacker.model_at(self.flat, i, copy=False)
            save_weights(checkpoint_path(job.run_dir, step), model, step=step, metrics=entry, **specs)
        status = "complete" if final else "running"
        write_run_json(job.run_dir, history=self.history[i], status=status, extra=run_extra(job.targets), **specs)
        if state:
            write_state(
                job.run_dir,
                step=step,
                params={n: w[0] for n, w in self.stacker.views(self.flat.detach()[i : i + 1]).items()},
                optimizer=self.opt.model_state(i),
                history=self.history[i],
                model_config=job.model_config,
                task=job.task,
                train_config=job.cfg,
                status=status,
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
            f"Fix: lower the learning rate (e.g. lr={cfg.lr / 10:g}) or add warm-up steps (warmup_steps={max(10, 2 * cfg.warmup_steps)})"
            + (
                ", and train in float32 with loss_dtype='float64'"
                if "float64" not in (cfg.loss_dtype,) or cfg.dtype == "bfloat16"
                else ""
            )
            + "."
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
                    **run_extra(job.targets),
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
        self.data.select(idx)
        for name in ("jobs", "history", "eval_at", "ckpt_at", "last_ckpt"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self.first_bad = self.first_bad.index_select(0, idx)
        self.bad_loss = self.bad_loss.index_select(0, idx)
        self._epoch_cache = None


def group_key(job: Job, device) -> tuple:
    """Jobs with equal keys are trained as one batched computation."""
    mc = job.model_config
    # Only the initial weights depend on these; the shapes do not.
    shape_cfg = dataclasses.replace(mc, **{k: None for k in ("init_range",) if hasattr(mc, k)})
    if hasattr(mc, "init_scale"):
        shape_cfg = dataclasses.replace(shape_cfg, init_scale=1.0)
    cfg, task = job.cfg, job.task
    n_fit = job.n_fit
    batch = None if cfg.batch_size is None or cfg.batch_size >= n_fit else cfg.batch_size
    return (
        json.dumps(shape_cfg.to_dict(), sort_keys=True),
        str(device),
        cfg.dtype,
        cfg.loss_dtype,
        cfg.loss,
        cfg.optimizer,
        batch,
        cfg.steps,
        task.n_train,
        len(task.inputs),
        job.resume.step if job.resume else -1,  # a state saved at step 0 is not a fresh start
        None if job.targets is None else (n_fit, job.targets.probs is not None),  # same training set size and loss
    )
