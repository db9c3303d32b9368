"""The reference training loop: one model, torch.optim, a plain Python loop.

This is the specification of what the stacked engine (interp.train.engine, interp.train.optim)
computes for each model of a sweep, written the way a paper's appendix would: build the model from
its seed, take one torch.optim step per batch with the learning rate of `TrainConfig.lr_at`, draw
minibatches in the engine's order (`minibatch_order`), compute the loss on float64 logits, and record
the metrics at the engine's evaluation steps. tests/test_train_reference.py checks that `train` and
this loop give the same losses and weights within a stated tolerance. It is slower than `train`
(one model, a host synchronisation per step) and writes nothing; use it to read, not to run sweeps.
`weight_difference`, `loss_difference` and `optimizer_drift` are the measures of agreement that the
test and bench/bench_reference.py use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interp.device import resolve_device
from interp.errors import SpecError
from interp.metrics import check_task, evaluate
from interp.models import ModelConfig, build_model
from interp.tasks import Task, TaskSpec
from interp.train import loss_fn, make_optimizer, weight_norm
from interp.train.engine import eval_steps, minibatch_order
from interp.train.optim import BatchedOptimizer
from interp.train_config import TrainConfig, torch_dtype

REFERENCE_OPTIMIZERS = ("adamw", "adam", "sgd")
# b_K has no effect on any output: q . b_K is added to every key's score of a query and softmax ignores
# a shift, so its gradient is zero in exact arithmetic and rounding noise in practice, which Adam
# normalises into lr-sized, arbitrary steps. Weight comparisons leave it out; the losses cover it.
NO_EFFECT = ("b_K",)


@dataclass
class ReferenceRun:
    """What `train_reference` returns: the model, the loss of every update, and the metrics history."""

    model: torch.nn.Module
    losses: list[float] = field(default_factory=list)  # the batch loss of update s, s = 0 .. steps - 1
    history: list[dict] = field(default_factory=list)  # as TrainResult.history


def train_reference(
    model_config: ModelConfig,
    task: Task | TaskSpec,
    train_config: TrainConfig | None = None,
    *,
    reverse_batches: bool = False,
) -> ReferenceRun:
    """Train one model with torch.optim in a plain loop: what `interp.train.train` computes, written out.

    reverse_batches=True sums every batch in the reverse order: the same maths with other rounding,
    the yardstick for how far float32 rounding alone moves a run.
    """
    cfg = train_config if train_config is not None else TrainConfig()
    task = task if isinstance(task, Task) else Task(task)
    if cfg.optimizer not in REFERENCE_OPTIMIZERS:
        raise SpecError(
            "train_reference",
            "optimizer",
            cfg.optimizer,
            f"one of {list(REFERENCE_OPTIMIZERS)}",
            "Muon's batched update is checked against torch.optim.Muon in tests/test_train.py; train it with train().",
        )
    device = resolve_device(cfg.device)
    model = build_model(model_config, seed=cfg.seed).to(device=device, dtype=torch_dtype(cfg.dtype))
    check_task(model, task)  # a ShapeError when model and task disagree on p, as in train
    optimizer = make_optimizer(model.parameters(), cfg)
    x, y = task.train_inputs.to(device), task.train_labels.to(device)  # [n_train, 2], [n_train]
    n = len(y)
    batch = None if cfg.batch_size is None or cfg.batch_size >= n else cfg.batch_size
    run, evaluate_at = ReferenceRun(model), eval_steps(cfg)
    for step in range(cfg.steps + 1):
        if step in evaluate_at:  # metrics after `step` updates
            run.history.append({"step": step, **evaluate(model, task), "weight_norm": weight_norm(model)})
        if step == cfg.steps:
            break
        xb, yb = x, y
        if batch is not None:  # the engine's order: epoch e is a seeded permutation, cut into n // batch batches
            epoch, k = divmod(step, n // batch)
            idx = torch.from_numpy(minibatch_order(cfg.seed, epoch, n)[k * batch : (k + 1) * batch]).to(device)
            xb, yb = x[idx], y[idx]  # [batch, 2], [batch]
        if reverse_batches:
            xb, yb = xb.flip(0), yb.flip(0)
        for group in optimizer.param_groups:  # warm-up and schedule, set by hand as in nanoGPT
            group["lr"] = cfg.lr_at(step)
        logits = model.pair_logits(xb)  # [B, p]
        loss = loss_fn(logits.to(torch_dtype(cfg.loss_dtype)), yb, cfg.loss)  # float64 by default, as the engine
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.losses.append(loss.item())
    return run


# ----- how close two runs are ------------------------------------------------------------------------
def weight_difference(a: torch.nn.Module, b: torch.nn.Module, skip: tuple[str, ...] = NO_EFFECT) -> float:
    """max |a - b| over the parameters of two models of one architecture, except names ending in `skip`."""
    return max(
        (pa - pb).abs().max().item()
        for (name, pa), pb in zip(a.named_parameters(), b.parameters())
        if not name.endswith(skip)
    )


def loss_difference(history_a: list[dict], history_b: list[dict]) -> float:
    """max |a - b| over every loss ("*_loss", NaN left out) of two metric histories of the same steps."""
    if [h["step"] for h in history_a] != [h["step"] for h in history_b]:
        raise SpecError("loss_difference", "history_b", [h["step"] for h in history_b], "the steps of history_a")
    return max(
        abs(a[key] - b[key])
        for a, b in zip(history_a, history_b)
        for key in a
        if key.endswith("_loss") and a[key] == a[key]
    )


def optimizer_drift(kind: str, dtype: torch.dtype = torch.float32, steps: int = 1000, seed: int = 1) -> float:
    """How far BatchedOptimizer's weights drift from torch.optim's given the same gradients: the largest
    max |ours - torch.optim| / max |w| over `steps` steps, in units of `dtype`'s eps."""
    gen = torch.Generator().manual_seed(seed)
    init = [torch.randn(64, 23, generator=gen, dtype=dtype), torch.randn(23, generator=gen, dtype=dtype)]
    theirs = [w.clone() for w in init]
    cfg = TrainConfig(optimizer=kind, lr=1e-2 if kind == "sgd" else 1e-3, weight_decay=1.0, momentum=0.9)
    reference = make_optimizer(theirs, cfg)
    ours = torch.cat([w.reshape(-1) for w in init]).unsqueeze(0)  # [1, P]
    batched = BatchedOptimizer(
        kind, ours, [("U", (64, 23)), ("b", (23,))], weight_decay=[1.0], betas=[cfg.betas], momentum=[0.9]
    )
    lr, worst = torch.tensor([cfg.lr], dtype=torch.float64), 0.0
    for _ in range(steps):
        # gradients spread over seven orders of magnitude, as in a network with quiet and busy weights
        grads = [
            torch.randn(w.shape, generator=gen, dtype=dtype)
            * 10 ** torch.empty(w.shape, dtype=dtype).uniform_(-6, 1, generator=gen)
            for w in init
        ]
        for w, g in zip(theirs, grads):
            w.grad = g.clone()
        reference.step()
        batched.step(ours, torch.cat([g.reshape(-1) for g in grads]).unsqueeze(0), lr)
        expected = torch.cat([w.reshape(-1) for w in theirs])  # [P]
        worst = max(worst, ((ours[0] - expected).abs().max() / expected.abs().max()).item())
    return worst / torch.finfo(dtype).eps
