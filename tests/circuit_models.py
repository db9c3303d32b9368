"""Small models trained once per test session for the circuits tests (and the settings that work).

The test_circuits_* modules import these cached builders: Zhong et al.'s clock/pizza transformers come
from the zoo; the noisy-label quadratic MLP of Doshi et al.'s pruning experiment and the coexistence
paper's ReLU MLP train in seconds on a CPU.
"""

from __future__ import annotations

import functools

from interp import Task, TaskSpec, zoo
from interp.models import MLPConfig
from interp.train import TrainConfig, train

# Zhong et al.'s clock (attention rate 1) and pizza (attention rate 0) transformers: the zoo's trained
# entries ((a + b) mod 59, tokens `a b`, no causal mask, 1 layer), loaded rather than trained here, so
# the tests do not depend on how this machine's floating point steers a short training run.
ZHONG_ENTRIES = {1.0: "clock-transformer", 0.0: "pizza-transformer"}


@functools.cache
def zhong_transformer(attention_rate: float):
    """The zoo's 1-layer transformer with the given attention rate (1: clock, 0: pizza): (model, task)."""
    ckpt = zoo.load(ZHONG_ENTRIES[attention_rate])
    ckpt.model.eval()
    return ckpt.model, ckpt.task


# Doshi et al.'s noisy-label quadratic MLP scaled down (pruning, patching and partition tests).
NOISY_TASK = TaskSpec(op="x+y", p=31, frac_train=0.7, label_noise=0.25, noise_kind="all", seed=0)
NOISY_MLP = MLPConfig(p=31, width=256, act="quad")
NOISY_TRAIN = TrainConfig(steps=800, lr=1e-2, weight_decay=5.0, loss="mse", eval_every=800, device="cpu", seed=0)


@functools.cache
def noisy_mlp():
    """A quadratic MLP that memorises 25% noisy labels and still generalises ((a + b) mod 31, 70% of
    the table, MSE, AdamW lr 1e-2, weight decay 5, 800 steps): (model, task)."""
    task = Task(NOISY_TASK)
    run = train(NOISY_MLP, task, NOISY_TRAIN)
    run.model.eval()
    return run.model, task


# The coexistence paper's ReLU MLP scaled down: it memorises 20% noisy labels and its test accuracy
# is suppressed (~0.2), while frequency filtration recovers ~99% (partition tests).
RELU_TASK = TaskSpec(op="x+y", p=31, frac_train=0.7, label_noise=0.2, noise_kind="other", seed=0)
RELU_MLP = MLPConfig(p=31, width=256, act="relu")
RELU_TRAIN = TrainConfig(steps=1000, lr=1e-2, weight_decay=2.0, eval_every=1000, device="cpu", seed=0)


@functools.cache
def coexisting_relu_mlp():
    """(model, task): a ReLU MLP in the coexistence regime ((a + b) mod 31, 70% of the table, CE,
    AdamW lr 1e-2, weight decay 2, 1000 steps)."""
    task = Task(RELU_TASK)
    run = train(RELU_MLP, task, RELU_TRAIN)
    run.model.eval()
    return run.model, task
