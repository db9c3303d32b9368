"""`TrainConfig`: how to train one model.

It lives below storage and training (interp.checkpoints reads it back from run.json; interp.train
trains with it), so that storage never imports the training code.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from interp.errors import SpecError
from interp.validation import check_choice, check_fraction, check_int, check_number, check_type

OPTIMIZERS = ("adamw", "adam", "sgd", "muon")
SCHEDULES = ("constant", "cosine")
LOSSES = ("ce", "mse")
DTYPES = ("float32", "float64", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model. Defaults follow Nanda et al. (full-batch AdamW, lr 1e-3, betas (0.9, 0.98))."""

    steps: int = 1000  # optimizer steps (= epochs when full batch)
    lr: float = 1e-3
    weight_decay: float = 1.0
    optimizer: str = "adamw"  # adamw | adam | sgd | muon
    betas: tuple[float, float] = (0.9, 0.98)
    momentum: float = 0.9  # sgd and muon
    warmup_steps: int = 10  # linear warm-up from 0 to lr
    schedule: str = "constant"  # constant | cosine (after warm-up)
    loss: str = "ce"  # ce: cross-entropy | mse: MSE on one-hot targets (Doshi et al.)
    batch_size: int | None = None  # None = full batch
    eval_every: int = 100  # metrics every k steps (and at the last step)
    checkpoint_every: int | None = None  # a weight file every k steps (the last step is always saved)
    checkpoint_log: int = 0  # also this many log-spaced checkpoints between step 1 and `steps`
    seed: int = 0  # model init and minibatch order
    device: str = "auto"  # auto: CUDA when present
    dtype: str = "float32"  # parameter dtype
    loss_dtype: str = "float64"  # dtype of the logits in the loss (Nanda et al. use float64)

    def __post_init__(self):
        where = "TrainConfig"
        check_int(where, "steps", self.steps, min_value=0)
        check_number(
            where, "lr", self.lr, min_value=0, inclusive=False, fix="e.g. 1e-3 (AdamW) or 1e-2 (Doshi et al.'s MLP)."
        )
        check_number(where, "weight_decay", self.weight_decay, min_value=0)
        check_choice(where, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(where, "schedule", self.schedule, SCHEDULES)
        check_choice(where, "loss", self.loss, LOSSES)
        check_choice(where, "dtype", self.dtype, DTYPES)
        check_choice(where, "loss_dtype", self.loss_dtype, DTYPES)
        try:
            betas = tuple(float(b) for b in self.betas)
        except (TypeError, ValueError):
            betas = ()
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise SpecError(where, "betas", self.betas, "two numbers in [0, 1), e.g. (0.9, 0.98)")
        object.__setattr__(self, "betas", betas)
        check_fraction(where, "momentum", self.momentum, inclusive=(True, False))
        if self.batch_size is not None:
            check_int(where, "batch_size", self.batch_size, min_value=1, expected="None (full batch) or a positive int")
        check_int(where, "eval_every", self.eval_every, min_value=1)
        if self.checkpoint_every is not None:
            check_int(where, "checkpoint_every", self.checkpoint_every, min_value=1, expected="None or a positive int")
        check_int(
            where, "checkpoint_log", self.checkpoint_log, min_value=0,
            expected="a non-negative int (number of log-spaced checkpoints)",
        )  # fmt: skip
        check_int(where, "warmup_steps", self.warmup_steps, min_value=0)
        check_int(where, "seed", self.seed, min_value=0)
        if isinstance(self.device, torch.device):
            object.__setattr__(self, "device", str(self.device))
        check_type(where, "device", self.device, str, "'auto', 'cpu', 'cuda' or 'cuda:N'")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise SpecError("TrainConfig", unknown[0], d[unknown[0]], f"one of the fields {sorted(fields)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def lr_at(self, step: int) -> float:
        """Learning rate used for the update taken at `step` (0-based): linear warm-up, then schedule."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "cosine":
            span = max(1, self.steps - self.warmup_steps)
            return self.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))
        return self.lr

    def checkpoint_steps(self) -> list[int]:
        """Steps after which a weight file is written (always including 0 and the last step)."""
        steps = {0, self.steps}
        if self.checkpoint_every:
            steps.update(range(0, self.steps + 1, self.checkpoint_every))
        if self.checkpoint_log and self.steps > 0:
            n = self.checkpoint_log
            steps.update(int(round(self.steps ** (i / max(1, n - 1)))) for i in range(n))
        return sorted(s for s in steps if 0 <= s <= self.steps)


DTYPE_BY_NAME = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a TrainConfig dtype name ("float32", "float64", "bfloat16")."""
    return DTYPE_BY_NAME[name]
