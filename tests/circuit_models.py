"""Small models trained once per test session for the circuits tests (and the settings that work).

The test_circuits_* modules import these cached builders; each model trains in seconds on
a CPU. The settings are the ones reported to the zoo: Zhong et al.'s clock/pizza transformers scaled
down, and a noisy-label quadratic MLP for Doshi et al.'s pruning experiment.
"""

from __future__ import annotations

import functools

from interp import Task, TaskSpec
from interp.models import MLPConfig, TransformerConfig
from interp.train import TrainConfig, train

# (a + b) mod p, tokens `a b`, no causal mask, 1 layer (Zhong et al. 2023, scaled down).
ZHONG_P = 29
ZHONG_TASK = TaskSpec(op="x+y", p=ZHONG_P, frac_train=0.8, seed=0)
ZHONG_TRAIN = TrainConfig(
    steps=400, lr=1e-2, weight_decay=2.0, betas=(0.9, 0.98), warmup_steps=10, eval_every=400, device="cpu", seed=0
)


def zhong_config(attention_rate: float) -> TransformerConfig:
    return TransformerConfig(
        p=ZHONG_P,
        n_layers=1,
        d_model=32,
        n_heads=4,
        d_head=8,
        d_mlp=64,
        attention_rate=attention_rate,
        eq_token=False,
        causal=False,
    )


@functools.cache
def zhong_transformer(attention_rate: float):
    """A 1-layer transformer trained on (a + b) mod 29 with the given attention rate: (model, task)."""
    task = Task(ZHONG_TASK)
    run = train(zhong_config(attention_rate), task, ZHONG_TRAIN)
    run.model.eval()
    return run.model, task


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
