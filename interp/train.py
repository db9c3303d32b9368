"""Training: `TrainConfig` and `train` (one model). Full-batch by default, as in the papers."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from interp.errors import SpecError, TrainingDiverged, resolve_device
from interp.metrics import subset_metrics
from interp.models import ModelConfig, build_model

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
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise SpecError("TrainConfig", "steps", self.steps, "a non-negative int")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise SpecError("TrainConfig", "lr", self.lr, "a positive number")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise SpecError("TrainConfig", "weight_decay", self.weight_decay, "a non-negative number")
        if self.optimizer not in OPTIMIZERS:
            raise SpecError("TrainConfig", "optimizer", self.optimizer, f"one of {list(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise SpecError("TrainConfig", "schedule", self.schedule, f"one of {list(SCHEDULES)}")
        if self.loss not in LOSSES:
            raise SpecError("TrainConfig", "loss", self.loss, f"one of {list(LOSSES)}")
        if self.dtype not in DTYPES:
            raise SpecError("TrainConfig", "dtype", self.dtype, f"one of {list(DTYPES)}")
        if self.loss_dtype not in DTYPES:
            raise SpecError("TrainConfig", "loss_dtype", self.loss_dtype, f"one of {list(DTYPES)}")
        if len(tuple(self.betas)) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise SpecError("TrainConfig", "betas", self.betas, "two numbers in [0, 1)")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise SpecError("TrainConfig", "batch_size", self.batch_size, "None (full batch) or a positive int")
        if not isinstance(self.eval_every, int) or self.eval_every < 1:
            raise SpecError("TrainConfig", "eval_every", self.eval_every, "a positive int")
        if self.checkpoint_every is not None and (not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1):
            raise SpecError("TrainConfig", "checkpoint_every", self.checkpoint_every, "None or a positive int")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise SpecError("TrainConfig", "warmup_steps", self.warmup_steps, "a non-negative int")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
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


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}[name]


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss over the batch: cross-entropy, or MSE against one-hot targets (sum over classes,
    mean over examples, as Doshi et al.)."""
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return (logits - onehot).pow(2).sum(-1).mean()


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if not hasattr(torch.optim, "Muon"):
        raise SpecError("TrainConfig", "optimizer", "muon", "an optimizer this torch has", "torch>=2.9 ships Muon.")
    return torch.optim.Muon(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


class TrainResult:
    """What `train` returns: the trained model, the task, the configs and the metrics history."""

    def __init__(self, model, task, model_config, train_config, history, out=None):
        self.model, self.task = model, task
        self.model_config, self.train_config = model_config, train_config
        self.history = history  # list of {"step": int, "test_acc": ..., ...}
        self.out = out

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def __repr__(self):
        f = self.final
        return (
            f"TrainResult(step={f.get('step')}, train_acc={f.get('train_acc', float('nan')):.3f}, "
            f"test_acc={f.get('test_acc', float('nan')):.3f}, out={self.out!r})"
        )


def weight_norm(model) -> float:
    """Total L2 norm of all parameters, sqrt(sum of squared weights)."""
    return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()) ** 0.5)


def train(model_config: ModelConfig, task, train_config: TrainConfig | None = None, out=None, resume: bool = False):
    """Train one model on `task` and return a `TrainResult`. Metrics at every `eval_every` steps:
    loss and accuracy on clean and noisy training examples (given and true labels), test, and the
    total weight norm."""
    cfg = train_config or TrainConfig()
    if model_config.p != task.p:
        raise SpecError("model_config", "p", model_config.p, f"the task's p={task.p}")
    device = resolve_device(cfg.device)
    dtype = torch_dtype(cfg.dtype)
    model = build_model(model_config, seed=cfg.seed).to(device=device, dtype=dtype)
    model.validate_inputs = False
    opt = make_optimizer(model.parameters(), cfg)
    x_train = task.train_inputs.to(device)
    y_train = task.train_labels.to(device)
    all_inputs = task.inputs.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    loss_dtype = torch_dtype(cfg.loss_dtype)
    history = []

    def record(step):
        model.eval()
        with torch.no_grad():
            m = subset_metrics(model.pair_logits(all_inputs).float(), task)
        model.train()
        history.append({"step": step, **m, "weight_norm": weight_norm(model)})

    for step in range(cfg.steps):
        if step % cfg.eval_every == 0:
            record(step)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        if cfg.batch_size is None or cfg.batch_size >= len(x_train):
            xb, yb = x_train, y_train
        else:
            idx = torch.randint(0, len(x_train), (cfg.batch_size,), generator=gen).to(device)
            xb, yb = x_train[idx], y_train[idx]
        loss = loss_fn(model.pair_logits(xb).to(loss_dtype), yb, cfg.loss)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss.item()} at step {step}. Lower the learning rate.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    record(cfg.steps)
    model.validate_inputs = True
    return TrainResult(model, task, model_config, cfg, history, out=out)
