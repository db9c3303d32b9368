"""arithmetic_bridge: the Rules-and-Facts question asked of (a + b) mod p with all-class label noise."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load
from interp.errors import SpecError
from studies.raf import ArithmeticBridge, arithmetic_bridge, default_bridge_config

P, EPS, FRACTIONS, NARROW, WIDE, SEEDS = 23, 0.2, (0.4, 0.95), 32, 128, (0, 1)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory) -> ArithmeticBridge:
    config = dataclasses.replace(default_bridge_config(), steps=400, eval_every=400)
    out = tmp_path_factory.mktemp("bridge")
    return arithmetic_bridge(
        EPS, FRACTIONS, p=P, widths=(NARROW, WIDE), seeds=SEEDS, train_config=config, device="cpu", out=out
    )


def test_bridge_numbers_are_evaluate_on_the_returned_models_and_on_their_run_directories(bridge):
    keys = {"test_acc": "test_acc", "noisy_fit": "train_noisy_acc", "clean_fit": "train_clean_acc"}
    for w, width in enumerate(bridge.widths):
        for f, fraction in enumerate(bridge.fractions):
            for s, seed in enumerate(bridge.seeds):
                run = bridge.run(width, fraction, seed)
                assert run.task.spec == TaskSpec("x+y", P, fraction, label_noise=EPS, noise_kind="all", seed=seed)
                assert run.model.cfg.width == width and run.model.cfg.act == "relu"
                direct = evaluate(run.model, run.task)
                ckpt = load(run.out)
                from_disk = evaluate(ckpt.model, ckpt.task)
                for name, key in keys.items():
                    assert bridge.per_seed[name][w, f, s] == pytest.approx(direct[key], abs=1e-12)
                    assert bridge.per_seed[name][w, f, s] == pytest.approx(from_disk[key], abs=1e-12)
    for name in keys:
        values = bridge.per_seed[name]  # [W, F, S]
        np.testing.assert_allclose(getattr(bridge, name), values.mean(-1), atol=1e-12)
        se = values.std(-1, ddof=1) / math.sqrt(len(SEEDS))
        np.testing.assert_allclose(getattr(bridge, f"{name}_se"), se, atol=1e-12)


def test_bridge_counts_every_resampled_label_as_a_fact_and_reports_the_lucky_draws(bridge):
    for f, fraction in enumerate(FRACTIONS):
        tasks = [Task(TaskSpec("x+y", P, fraction, label_noise=EPS, noise_kind="all", seed=s)) for s in SEEDS]
        assert bridge.n_train[f] == tasks[0].n_train == round(fraction * P * P)
        assert bridge.n_noisy[f] == int(tasks[0].noisy_mask.sum()) == round(EPS * tasks[0].n_train)
        lucky = [int((t.noisy_mask & (t.train_labels == t.train_true_labels)).sum()) for t in tasks]
        assert bridge.resampled_to_true[f] == pytest.approx(np.mean(lucky))
        assert bridge.alpha[f] == pytest.approx(bridge.n_train[f] / P)
    assert bridge.n_params == [3 * P * NARROW, 3 * P * WIDE]
    np.testing.assert_allclose(bridge.samples_per_parameter[0], np.array(bridge.n_train) / (3 * P * NARROW))


def test_narrow_mlp_trades_the_facts_for_the_rule_as_the_training_fraction_grows(bridge):
    """Like linear RAF learners past their threshold: at fixed width, more data, more rule, fewer facts."""
    # measured per seed over seeds 0-7 (p = 23, width 32, 400 steps): noisy fit 0.95-0.98 at f = 0.4 against
    # 0.62-0.81 at f = 0.95; test accuracy 0.006-0.019 against 0.12-0.46
    narrow = bridge.widths.index(NARROW)
    assert bridge.noisy_fit[narrow, 1] < bridge.noisy_fit[narrow, 0] - 0.1
    assert bridge.test_acc[narrow, 1] > bridge.test_acc[narrow, 0] + 0.1


def test_wide_mlp_keeps_every_fact_while_it_learns_the_rule(bridge):
    """Like RAF's kernels: the wide network fits every noisy label at both fractions while its test accuracy rises."""
    # measured per seed over seeds 0-7: noisy fit 1.0 everywhere; test accuracy 0.003-0.025 at f = 0.4, 0.38-0.69 at 0.95
    wide = bridge.widths.index(WIDE)
    assert (bridge.per_seed["noisy_fit"][wide] >= 0.99).all()
    assert bridge.test_acc[wide, 1] > bridge.test_acc[wide, 0] + 0.2


def test_bridge_result_is_strict_json_without_the_models(bridge):
    d = bridge.to_dict()
    assert "runs" not in d and d["failed"] == []
    assert np.array(d["noisy_fit"]).shape == (2, 2) and np.array(d["per_seed"]["test_acc"]).shape == (2, 2, 2)
    json.dumps(d, allow_nan=False)
    frame = bridge.to_frame()  # one row per (width, fraction)
    assert len(frame) == 4 and {"width_index", "fraction_index", "test_acc", "noisy_fit"} <= set(frame.columns)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bridge_trains_on_cuda_and_its_numbers_are_evaluate_there():
    config = dataclasses.replace(default_bridge_config(), steps=50, eval_every=50)
    bridge = arithmetic_bridge(EPS, (0.5,), p=P, widths=NARROW, seeds=1, train_config=config, device="cuda")
    run = bridge.run(NARROW, 0.5, 0)
    assert next(run.model.parameters()).device.type == "cuda" and bridge.train_config["device"] == "cuda"
    direct = evaluate(run.model, run.task)
    assert bridge.per_seed["noisy_fit"][0, 0, 0] == pytest.approx(direct["train_noisy_acc"], abs=1e-12)
    assert bridge.per_seed["test_acc"][0, 0, 0] == pytest.approx(direct["test_acc"], abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": 1.0}, "epsilon"),
        ({"fractions": (0.5, 1.0)}, "fractions"),
        ({"fractions": ()}, "fractions"),
        ({"widths": (0,)}, "widths"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bridge_refuses_bad_arguments_naming_the_field(kwargs, field):
    args = {"epsilon": EPS, "fractions": FRACTIONS, "p": P, "widths": NARROW, "seeds": 1, **kwargs}
    with pytest.raises(SpecError, match=rf"arithmetic_bridge\.{field}="):
        arithmetic_bridge(args.pop("epsilon"), args.pop("fractions"), **args)
