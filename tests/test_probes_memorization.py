"""Memorisation and capacity: learning curves by subset, T_mem and T_gen, the grokking delay, the
log-log crossing, and memorised bits on random labels for models trained in the test."""

from __future__ import annotations

import json
import math

import pytest

from interp import Task, TaskSpec
from interp.errors import SpecError
from interp.models import MLPConfig
from interp.train import TrainConfig, train
from probes.memorization import (
    capacity,
    crossing_point,
    generalization_time,
    grokking_delay,
    learning_curves,
    memorization_time,
    memorized_bits,
    timescales,
)


def random_label_run(width: int, frac: float):
    task = Task(TaskSpec(op="x+y", p=23, frac_train=frac, random_labels=True, seed=0))
    return train(
        MLPConfig(p=23, width=width, act="relu"),
        task,
        TrainConfig(steps=1000, lr=1e-2, weight_decay=0.0, eval_every=25, device="cpu"),
    )


@pytest.fixture(scope="module")
def random_label_runs():
    """ReLU MLPs of width 4 and 32 on random labels over the whole table (529 pairs, 2393 bits of
    labels), and width 4 on 30% of it: the small model saturates, the large one memorises it all."""
    return {
        (4, 1.0): random_label_run(4, 1.0),
        (32, 1.0): random_label_run(32, 1.0),
        (4, 0.3): random_label_run(4, 0.3),
    }


@pytest.fixture(scope="module")
def grokking_run():
    """Quadratic MLP (MSE, AdamW lr 1e-2, weight decay 1) on (a + b) mod 23, half the table: it fits
    the training set within ~100 steps and the test set hundreds of steps later."""
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.5, seed=0))
    return train(
        MLPConfig(p=23, width=128, act="quad"),
        task,
        TrainConfig(steps=1000, lr=1e-2, weight_decay=1.0, loss="mse", eval_every=10, device="cpu"),
    )


def test_memorised_bits_grow_with_model_size_and_stay_below_the_label_information(random_label_runs):
    small = memorized_bits(random_label_runs[(4, 1.0)].model, random_label_runs[(4, 1.0)].task)
    large = memorized_bits(random_label_runs[(32, 1.0)].model, random_label_runs[(32, 1.0)].task)
    assert small.label_bits == pytest.approx(529 * math.log2(23))
    assert small.bits < large.bits <= large.label_bits
    assert small.bits < 0.5 * small.label_bits  # 276 parameters cannot hold 2393 bits
    assert 0.5 < small.bits_per_param < 4.0  # the order of the published 2.2-3.6 bits/param
    assert large.bits_unclipped <= large.bits
    json.dumps(large.to_dict())


def test_capacity_is_the_plateau_over_dataset_sizes(random_label_runs):
    results = [memorized_bits(r.model, r.task) for r in random_label_runs.values()]
    cap = capacity(results)
    assert cap.params == [4 * 23 * 3, 32 * 23 * 3]
    small = [r for r in results if r.n_params == 276]
    assert cap.plateau_bits[0] == max(r.bits for r in small)
    assert cap.dataset_sizes[0] == sorted(r.n_examples for r in small)
    assert cap.bits_per_param[0] == pytest.approx(cap.plateau_bits[0] / 276)
    with pytest.raises(SpecError):
        capacity([])


def test_larger_models_memorise_random_labels_faster(random_label_runs):
    t_small = memorization_time(random_label_runs[(4, 1.0)])
    t_large = memorization_time(random_label_runs[(32, 1.0)])
    assert t_large is not None and (t_small is None or t_large < t_small)
    ts = timescales(
        [random_label_runs[(4, 1.0)], random_label_runs[(32, 1.0)]],
        [(276, [{"step": 0, "test_acc": 0.0}, {"step": 500, "test_acc": 1.0}])],
    )
    assert ts.params == [276, 2208] and ts.t_mem[1] == t_large and ts.t_gen[0] == 500
    assert ts.n_gen_runs == [1, 0]
    json.dumps(ts.to_dict())


def test_grokking_delay_measures_test_accuracy_jumping_after_training_saturates(grokking_run):
    d = grokking_delay(grokking_run)
    assert d.e_train is not None and d.e_test is not None
    assert d.e_train <= 150 and d.delay >= 200
    assert generalization_time(grokking_run) >= d.e_test  # 99% comes no earlier than 98%
    curves = learning_curves(grokking_run)
    assert curves.first_reach["train"] == d.e_train and curves.first_reach["test"] == generalization_time(grokking_run)
    assert len(curves.acc["test"]) == len(curves.steps) == len(grokking_run.history)
    assert "train_noisy" in curves.acc and math.isnan(curves.acc["train_noisy"][0])  # no noisy subset here
    json.dumps(curves.to_dict())


def test_learning_curves_split_clean_and_noisy_training_examples():
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.7, label_noise=0.4, seed=0))
    run = train(
        MLPConfig(p=23, width=128), task, TrainConfig(steps=300, lr=1e-2, weight_decay=0.1, eval_every=10, device="cpu")
    )
    curves = learning_curves(run, threshold=0.9)
    assert curves.first_reach["train_noisy"] is not None and curves.first_reach["train_clean"] is not None
    assert curves.first_reach["test"] is None  # memorised, never generalised
    assert curves.acc["train_noisy_true"][-1] < 0.1  # the noisy pairs are fitted to their wrong labels


def test_crossing_point_interpolates_in_log_log_space():
    params = [1e3, 1e4, 1e5]
    t_mem = [1e4 * (1e3 / p) for p in params]  # T_mem ~ P^-1
    t_gen = [1e3 * (p / 1e3) ** 0.5 for p in params]  # T_gen ~ P^0.5
    # 1e7 / P = 10^1.5 P^0.5  =>  P^1.5 = 10^5.5  =>  P = 10^(11/3)
    assert crossing_point(params, t_mem, t_gen) == pytest.approx(10 ** (11 / 3), rel=1e-9)
    assert crossing_point(params, [1, 1, 1], [2, 2, 2]) is None
    assert crossing_point([1, 2], [math.inf, 1], [1, 1]) == 2  # never-reached points are left out


def test_histories_are_checked():
    with pytest.raises(SpecError, match="history"):
        memorization_time([{"train_acc": 1.0}])
    assert memorization_time([{"step": 5, "train_acc": 0.99}]) == 5
