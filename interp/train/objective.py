"""What a kind of training problem brings to the engine: an `Objective`.

The engine (interp.train.engine) owns the loop and everything that is the same for every problem: the
flat weights [M, P] of M models, the vectorised optimizer, the learning-rate table, evaluation points,
per-model non-finite flags read only at evaluations, divergence and its message, progress, weight files,
run.json and resume states, and dropping models that diverged. An objective owns what is specific to
one kind of problem, for a group of M jobs trained together:

- the weights: `layout` (each model's parameter names and shapes, in the order of the flat weights) and
  `initial_state(job)` (the weights of a fresh model);
- a step: `losses(flat, step)`, each model's loss [M] for the update taken at `step`, on its own data
  and randomness, drawn as a pure function of (the job's seed, step) so that a resumed run draws the same
  batches and noise (`step_generators`); `loss_and_grad` (autograd by default; a closed-form gradient
  where the objective has one); `after_update(flat)` for state that follows the weights (an EMA target);
- evaluation: `metric_names`, `evaluate(flat)` -> [M, K] float64 on the device (every model's metrics
  in one transfer), and `loss_metric`, the metric whose non-finite value means the model diverged;
- state beyond the weights and the optimizer: `begin(flat, saved)` sets it up (from the initial weights,
  or from what a resume file saved), `extra_state(i)` is what the resume file keeps of model i;
- records: `model_at(flat, i)` (the module a weight file stores), `run_extra(job)` (run.json's
  "extra"), `divergence_advice(cfg)` (the fix a divergence message proposes);
- `select(keep)`: keep only the models at `keep` (the others diverged).

Class methods are asked before a group exists: `check_job` (validation, before anything is written),
`group_key` (what else jobs must share to be stacked), `bytes_per_model` (how many models fit) and
`eval_steps` (when a model is evaluated).

The arithmetic tasks' objective is interp.train.pairs.PairObjective; the studies bring theirs
(studies.diffusion.objectives, studies.raf.two_layer; the random-feature objectives of
studies.diffusion keep a plain loop's one sequential generator per model, so that the study's numbers
stay what they were, and train in memory only). The weights are laid out by
interp.models.functional.FlatLayout (a family's stacker is one).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from interp.models.functional import FlatLayout


def default_eval_steps(cfg) -> set[int]:
    """Steps at which a model is evaluated: every eval_every, the last step, and its checkpoint steps."""
    return set(range(0, cfg.steps + 1, cfg.eval_every)) | {cfg.steps} | set(cfg.checkpoint_steps())


def seed_key(seed: int, stream: int, step: int) -> int:
    """A 64-bit seed for the random draws of (model seed, stream, step): a pure function of the three,
    identical on every machine, so a resumed run draws the same noise as an uninterrupted one."""
    return int(np.random.SeedSequence([int(seed), int(stream), int(step)]).generate_state(1, np.uint64)[0])


def step_generators(seeds, stream: int, step: int, device) -> list[torch.Generator]:
    """One torch.Generator per model, seeded by `seed_key(seed, stream, step)`, on `device`."""
    device = torch.device(device)
    return [torch.Generator(device=device).manual_seed(seed_key(s, stream, step)) for s in seeds]


class Objective:
    """The base of the objectives: defaults for everything but the problem itself (see the module doc).

    Subclasses set `layout`, `metric_names` and `loss_metric` in `__init__(jobs, device, dtype)` and
    implement `initial_state`, `losses`, `evaluate` and `model_at`."""

    metric_names: tuple[str, ...] = ("loss",)
    loss_metric: str = "loss"

    def __init__(self, jobs, device: torch.device, dtype: torch.dtype):
        self.jobs, self.device, self.dtype = list(jobs), device, dtype

    # ----- asked before a group exists ---------------------------------------------------------
    @classmethod
    def check_job(cls, job) -> None:
        """Raise a SpecError / ShapeError for a job this objective cannot train (nothing written yet)."""

    @classmethod
    def group_key(cls, job) -> tuple:
        """What jobs must share, beyond the engine's own key (device, dtype, optimizer, steps), to be
        stacked: default, the model config (same shapes)."""
        return (repr(job.model_config),)

    @classmethod
    def bytes_per_model(cls, job) -> int:
        """A generous estimate of one model's training memory, for sizing groups (default: 64 bytes
        per parameter: weights, gradients, optimizer state and activations of a small batch)."""
        n = getattr(job.model_config, "n_params", None)
        return 64 * int(n) if n else 1 << 24

    @classmethod
    def eval_steps(cls, job) -> set[int]:
        return default_eval_steps(job.cfg)

    # ----- the group ---------------------------------------------------------------------------
    layout: FlatLayout

    def initial_state(self, job) -> dict[str, Tensor]:
        raise NotImplementedError

    def losses(self, flat: Tensor, step: int) -> Tensor:
        """Each model's loss [M] for the update at `step`; flat [M, P] requires grad (`layout.views(flat)`
        gives the named parameters [M, ...])."""
        raise NotImplementedError

    def begin(self, flat: Tensor, saved: list[dict[str, Tensor] | None]) -> None:
        """Set up the extra state from the initial weights [M, P], or from `saved[i]` (the extra state a
        resume file or an in-memory TrainState holds; None for a fresh start)."""

    def loss_and_grad(self, flat: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """The losses [M] of `losses` and their gradient [M, P] with respect to flat (by autograd;
        an objective with a closed-form gradient may give it directly)."""
        losses = self.losses(flat, step)
        (grad,) = torch.autograd.grad(losses.sum(), flat)
        return losses, grad

    def after_update(self, flat: Tensor) -> None:
        """Called after every optimizer update with the new flat weights [M, P] (no grad)."""

    def evaluate(self, flat: Tensor) -> Tensor:
        """[M, K] (one row of `metric_names` per model) for the weights flat [M, P] (no grad)."""
        raise NotImplementedError

    def model_at(self, flat: Tensor, i: int):
        """Model i as a module (it may share memory with `flat`: it is saved at once, then dropped)."""
        raise NotImplementedError

    def extra_state(self, i: int) -> dict[str, Tensor]:
        return {}

    def select(self, keep: Tensor) -> None:
        """Keep only the models at indices `keep` (the others diverged)."""

    def run_extra(self, job) -> dict:
        return {}

    def divergence_advice(self, cfg) -> str:
        return f"Fix: lower the learning rate (e.g. lr={cfg.lr / 10:g})."
