"""The objective of the arithmetic tasks: models of any family fit to a task's pairs (or to given
`Targets`), evaluated on the clean and noisy training examples and the test set.

Per step: one batched forward of the group's stacker (the family's hand-written one, or the generic
interp.models.functional.FunctionalStack), logits [M, B, p], per-model losses [M] (cross-entropy or
MSE on one-hot targets in `loss_dtype`, or soft targets at a temperature). Minibatches (when
`batch_size` is set) follow `minibatch_order(seed, epoch)`. Evaluations compute every metric of
every model on the whole table in a few batched passes.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from interp.data_spec import DataSpec
from interp.errors import ShapeError, SpecError
from interp.metrics import METRIC_SUBSETS
from interp.models import build_model, get_family
from interp.models.functional import FunctionalStack
from interp.tasks import Task
from interp.train.objective import Objective
from interp.train.targets import check_targets, run_extra
from interp.train_config import torch_dtype

_STREAM_MINIBATCH = 11  # keeps minibatch order independent of the task's own random streams


def minibatch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a permutation of range(n) from a PCG64 stream keyed by
    (seed, epoch), identical on every machine, so a resumed run draws the same batches."""
    bits = np.random.PCG64(np.random.SeedSequence([int(seed), _STREAM_MINIBATCH, int(epoch)])).random_raw(n)
    return np.argsort(bits, kind="stable")


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


def n_fit(job) -> int:
    """Number of examples a pair job trains on."""
    return job.task.n_train if job.targets is None else len(job.targets.inputs)


def stacker_class(model_config) -> type:
    """The family's batched forward, or the generic one (torch.func) for a family without one."""
    return get_family(model_config.family).stacked_class or FunctionalStack


class _GroupData:
    """The tasks of a group as stacked tensors on the device (rebuilt when models drop out)."""

    def __init__(self, jobs, stacker, device):
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


class PairObjective(Objective):
    """Models fit to the pairs of a `Task` (its training split and labels, or a job's `Targets`)."""

    metric_names = tuple(f"{s}_{m}" for s in METRIC_SUBSETS for m in ("acc", "loss"))
    loss_metric = "train_loss"

    def __init__(self, jobs, device: torch.device, dtype: torch.dtype):
        super().__init__(jobs, device, dtype)
        cfg = jobs[0].cfg
        self.loss_kind, self.loss_dtype = cfg.loss, torch_dtype(cfg.loss_dtype)
        self.stacker = stacker_class(jobs[0].model_config)(jobs[0].model_config, device, dtype)
        self.layout = self.stacker
        n_train = n_fit(jobs[0])
        self.batch_size = None if cfg.batch_size is None or cfg.batch_size >= n_train else cfg.batch_size
        self.seeds = [j.cfg.seed for j in jobs]
        self.data = _GroupData(jobs, self.stacker, device)
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    # ----- asked before a group exists ---------------------------------------------------------
    @classmethod
    def check_job(cls, job) -> None:
        if isinstance(job.task, DataSpec):
            raise SpecError(
                "train", "task", repr(job.task), "a Task or TaskSpec",
                "A run on other data resumes with its data: pass them again (for the diffusion study, "
                "train_denoiser / consistency_distill with out= and resume=True).",
            )  # fmt: skip
        if not isinstance(job.task, Task):
            raise SpecError("train", "task", type(job.task).__name__, "a Task or TaskSpec")
        p = getattr(job.model_config, "p", None)
        if p != job.task.p:
            raise ShapeError(
                f"the model config was built for p={p} but the task has p={job.task.p}. "
                "Build the model config with the task's p."
            )
        if job.targets is not None:
            check_targets(job.targets, job.task)

    @classmethod
    def group_key(cls, job) -> tuple:
        mc = job.model_config
        # Only the initial weights depend on these; the shapes do not.
        shape_cfg = mc.to_dict()
        shape_cfg.update({k: None for k in ("init_range",) if k in shape_cfg})
        if "init_scale" in shape_cfg:
            shape_cfg["init_scale"] = 1.0
        cfg, task, n = job.cfg, job.task, n_fit(job)
        batch = None if cfg.batch_size is None or cfg.batch_size >= n else cfg.batch_size
        return (
            json.dumps(shape_cfg, sort_keys=True),
            cfg.loss_dtype,
            cfg.loss,
            batch,
            task.n_train,
            len(task.inputs),
            None if job.targets is None else (n, job.targets.probs is not None),  # same training set size and loss
        )

    @classmethod
    def bytes_per_model(cls, job) -> int:
        n = n_fit(job) if job.cfg.batch_size is None else min(job.cfg.batch_size, n_fit(job))
        size = stacker_class(job.model_config).activation_size_of(job.model_config)
        n_params = getattr(job.model_config, "n_params", None)
        if size is None or n_params is None:  # a family without estimates: build one model to count
            model = build_model(job.model_config, seed=None)
            n_params = sum(p.numel() for p in model.parameters())
            size = size or 4 * max((max(p.shape, default=1) for p in model.parameters()), default=1)
        return 6 * n * size + 32 * n_params

    # ----- a step ------------------------------------------------------------------------------
    def initial_state(self, job) -> dict[str, torch.Tensor]:
        return build_model(job.model_config, seed=job.cfg.seed).state_dict()

    def _batch(self, step: int):
        """Inputs, labels [M, B] and soft targets [M, B, p] (or None) of the batch at `step`."""
        probs = self.data.train_probs
        if self.batch_size is None:
            return self.data.train_x, self.data.train_labels, probs
        n = self.data.train_labels.shape[1]
        per_epoch = n // self.batch_size
        epoch, k = divmod(step, per_epoch)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            orders = np.stack([minibatch_order(s, epoch, n) for s in self.seeds])
            self._epoch_cache = (epoch, torch.from_numpy(orders).to(self.device))
        idx = self._epoch_cache[1][:, k * self.batch_size : (k + 1) * self.batch_size]  # [M, bs]
        x = self.data.train_x
        xb = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        pb = None if probs is None else probs.gather(1, idx.unsqueeze(-1).expand(-1, -1, probs.shape[-1]))
        return xb, self.data.train_labels.gather(1, idx), pb

    def losses(self, flat: torch.Tensor, step: int) -> torch.Tensor:
        xb, yb, pb = self._batch(step)
        logits = self.stacker.forward(self.stacker.views(flat), xb)  # [M, B, p]
        return per_model_loss(logits, yb, self.loss_kind, self.loss_dtype, pb, self.data.temperature)  # [M]

    # ----- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, flat: torch.Tensor) -> torch.Tensor:
        """[M, 12]: the accuracy and loss of each of METRIC_SUBSETS, per model."""
        d = self.data
        params = self.stacker.views(flat)
        M, N = d.true.shape
        budget = (1 << 28) if self.device.type == "cuda" else (1 << 26)
        chunk = max(1, budget // max(1, M * self.stacker.activation_size()))
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
        return torch.stack([acc, loss], -1).reshape(M, 12)  # [M, 12]: acc, loss per subset

    # ----- records -----------------------------------------------------------------------------
    def model_at(self, flat: torch.Tensor, i: int):
        return self.stacker.model_at(flat, i, copy=False)

    def select(self, keep: torch.Tensor) -> None:
        self.data.select(keep)
        self.seeds = [self.seeds[i] for i in keep.tolist()]
        self._epoch_cache = None

    def run_extra(self, job) -> dict:
        return run_extra(job.targets)

    def divergence_advice(self, cfg) -> str:
        return (
            f"Fix: lower the learning rate (e.g. lr={cfg.lr / 10:g}) or add warm-up steps (warmup_steps={max(10, 2 * cfg.warmup_steps)})"
            + (
                ", and train in float32 with loss_dtype='float64'"
                if "float64" not in (cfg.loss_dtype,) or cfg.dtype == "bfloat16"
                else ""
            )
            + "."
        )
