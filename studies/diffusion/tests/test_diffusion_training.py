"""Denoisers and consistency students train through grokscope's one engine: run directories that
`interp.checkpoints.load` reads, resume (the EMA target too), in-memory continuation, sweeps stacked
through torch.func, torch.optim's Adam to rounding, the older single-file format, and bad input refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from interp.checkpoints import load as load_checkpoint
from interp.data_spec import DataSpec
from interp.errors import CheckpointError, ShapeError, SpecError, TrainingDiverged
from interp.files import load_tensors, save_tensors
from interp.train import TrainConfig, train, train_many
from interp.train.rundir import state_path
from studies.diffusion import (
    ConsistencyConfig,
    ConsistencyModel,
    DenoiserConfig,
    DenoisingObjective,
    EDMConfig,
    EDMDenoiser,
    PointData,
    UNetConfig,
    consistency_distill,
    continue_training,
    gaussian_mixture,
    load,
    sample,
    save,
    train_denoiser,
)
from studies.diffusion.denoisers import config_to_dict

DATA = gaussian_mixture(16, 2, seed=0)
NET = DenoiserConfig(width=16, depth=1)


def small(steps: int, **kw):
    return train_denoiser(DATA, NET, steps=steps, lr=1e-3, seed=0, batch_size=32, **kw)


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_denoiser_run_directory_loads_back_and_trains_longer_bit_for_bit(tmp_path):
    whole = small(40, out=tmp_path / "whole")
    doc = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert doc["task_spec"] is None and doc["model_config"]["family"] == "edm" and doc["status"] == "complete"
    assert doc["data"] == DataSpec.of(DATA).to_dict() and doc["data"]["n"] == 16
    ckpt = load_checkpoint(tmp_path / "whole")
    assert isinstance(ckpt.model, EDMDenoiser) and ckpt.step == 40 and same_weights(ckpt.model, whole)
    assert ckpt.task == DataSpec.of(DATA) and ckpt.task_spec is None
    small(20, out=tmp_path / "split")
    longer = small(40, out=tmp_path / "split", resume=True)  # the noise is keyed by (seed, step)
    assert same_weights(longer, whole) and longer.history[-1] == whole.history[-1]  # (it also evaluated step 20)
    assert [h["step"] for h in whole.history] == [40] and math.isfinite(whole.history[-1]["loss"])
    with pytest.raises(CheckpointError, match="other settings"):
        train_denoiser(DATA * 2, NET, steps=40, lr=1e-3, seed=0, batch_size=32, out=tmp_path / "split", resume=True)


@pytest.mark.slow  # a fresh interpreter: a few seconds of imports
def test_load_builds_a_denoiser_without_importing_the_study_first(tmp_path):
    small(5, out=tmp_path / "run")
    code = "import sys; from interp.checkpoints import load; m = load(sys.argv[1]).model; print(type(m).__name__, 'studies.diffusion' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["EDMDenoiser", "True"]  # found through the grokscope.model_families entry point


def test_a_teacher_continued_in_memory_equals_one_longer_run():
    whole = small(40)
    ticks = []
    half = small(20, progress=ticks.append)  # progress: the steps done, about twice a second and at the end
    assert sum(ticks) == 20
    assert half.step == 20 and half.optimizer_state  # Adam's state travels with the model
    rest = continue_training(half, DATA, steps=20, lr=1e-3, seed=0, batch_size=32)
    assert rest.step == 40 and same_weights(rest, whole) and half.step == 20  # a copy: the teacher is unchanged


def test_consistency_distillation_resumes_with_its_ema_target(tmp_path):
    teacher = small(20)
    kw = dict(steps=12, lr=1e-3, seed=0, batch_size=16, ema=0.9)
    whole = consistency_distill(teacher, DATA, **kw, out=tmp_path / "whole")
    consistency_distill(teacher, DATA, **{**kw, "steps": 6}, out=tmp_path / "split")
    assert "extra.target" in load_tensors(state_path(tmp_path / "split"))[0]  # the EMA target is saved
    resumed = consistency_distill(teacher, DATA, **kw, out=tmp_path / "split", resume=True)
    assert same_weights(resumed, whole)
    student = load_checkpoint(tmp_path / "whole").model
    assert isinstance(student, ConsistencyModel) and same_weights(student, whole)
    x = torch.randn(5, 2)
    assert torch.allclose(student(x, torch.tensor(0.002)), x)
    other = small(21)
    with pytest.raises(CheckpointError, match="other targets"):
        consistency_distill(other, DATA, **kw, out=tmp_path / "split", resume=True)


def engine_config(steps: int, seed: int = 0) -> TrainConfig:
    return TrainConfig(
        steps=steps, lr=1e-3, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0,
        batch_size=32, eval_every=steps, seed=seed, device="cpu",
    )  # fmt: skip


@pytest.mark.parametrize(
    "net, data",
    [(NET, DATA), (UNetConfig(channels=8, channel_mult=(1, 2)), torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0)))],
    ids=["mlp", "unet"],
)  # fmt: skip
def test_a_sweep_of_denoisers_is_one_vmapped_computation_equal_to_each_alone(net, data):
    points = PointData(data)
    cfg = EDMConfig(net, tuple(points.x.shape[1:]), 0.5)
    steps = 3 if isinstance(net, UNetConfig) else 20
    sweep = train_many([(cfg, points, engine_config(steps, seed)) for seed in (0, 1)])  # M = 2: torch.func.vmap
    alone = train(cfg, points, engine_config(steps, 0))
    x, sigma = points.x[:6], torch.full((6,), 0.7)
    with torch.no_grad():  # the outputs (parameters in front of a GroupNorm have no effect, and gradients ~0)
        torch.testing.assert_close(sweep[0].model(x, sigma), alone.model(x, sigma), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(sweep[1].model(x, sigma), alone.model(x, sigma), atol=1e-3)
    assert sweep[0].history[-1]["loss"] == pytest.approx(alone.history[-1]["loss"], rel=1e-4)


def test_the_engines_adam_is_torch_optim_adam_to_rounding_on_the_denoising_objective():
    points = PointData(DATA)
    cfg = EDMConfig(NET, (2,), 0.5)
    tc = engine_config(200)
    engine = train(cfg, points, tc).model
    from interp.train.engine import Job  # the reference: the same objective, torch.optim.Adam, a plain loop

    objective = DenoisingObjective(
        [Job(0, cfg, points, tc, objective=DenoisingObjective)], torch.device("cpu"), torch.float32
    )
    flat = objective.layout.stack([objective.initial_state(Job(0, cfg, points, tc))])
    opt = torch.optim.Adam([flat], lr=tc.lr)
    for step in range(tc.steps):
        opt.zero_grad()
        objective.losses(flat, step).sum().backward()
        opt.step()
    reference = objective.layout.views(flat.detach())
    scale = max(float(v.abs().max()) for v in reference.values())
    worst = max(float((reference[n][0] - p.detach()).abs().max()) for n, p in engine.named_parameters())
    assert worst <= 8 * torch.finfo(torch.float32).eps * scale  # measured: 1.4 eps over 200 steps, 2.6 over 2000


def test_the_older_single_file_format_still_loads_and_save_writes_the_one_format(tmp_path):
    teacher = small(5)
    spec = {
        "format": "grokscope-diffusion", "version": 1, "kind": "edm", "config": config_to_dict(NET),
        "data_shape": [2], "sigma_data": teacher.sigma_data, "sigma_min": None, "step": 5, "history": [],
    }  # fmt: skip
    save_tensors(tmp_path / "old.safetensors", teacher.net.state_dict(), metadata={"grokscope": json.dumps(spec)})
    old = load(tmp_path / "old.safetensors")
    assert type(old) is EDMDenoiser and torch.equal(
        sample(old, 8, seed=0, steps=2), sample(teacher, 8, seed=0, steps=2)
    )
    path = save(teacher, tmp_path / "new.safetensors")
    ckpt = load_checkpoint(path)  # the one format: interp.checkpoints reads it
    assert same_weights(ckpt.model, teacher) and ckpt.step == 5 and ckpt.task == teacher.data_spec


def test_bad_values_are_refused_before_anything_is_trained(tmp_path):
    for steps in (0, -3, 2.5):
        with pytest.raises(SpecError, match=f"steps={steps}"):
            train_denoiser(DATA, NET, steps=steps, lr=1e-3, seed=0)
    for lr in (0.0, -1e-3, math.nan, math.inf):
        with pytest.raises(SpecError, match="lr="):
            train_denoiser(DATA, NET, steps=5, lr=lr, seed=0)
    with pytest.raises(SpecError, match="batch_size=0"):
        train_denoiser(DATA, NET, steps=5, lr=1e-3, seed=0, batch_size=0)
    with pytest.raises(ShapeError, match="0 point"):
        train_denoiser(np.zeros((0, 2)), NET, steps=5, lr=1e-3, seed=0)
    nan = DATA.clone()
    nan[2, 1] = math.nan
    with pytest.raises(SpecError, match="NaN"):
        consistency_distill(small(2), nan, steps=2, lr=1e-4, seed=0)
    with pytest.raises(ShapeError, match=r"shape \(3,\), but the model config is for points of shape \(2,\)"):
        train(EDMConfig(NET, (2,), 1.0), PointData(torch.randn(8, 3)), engine_config(2))
    with pytest.raises(SpecError, match="ConsistencyTargets"):
        train(ConsistencyConfig(NET, (2,), 1.0), PointData(DATA), engine_config(2))
    with pytest.raises(SpecError, match="a Task or TaskSpec"):
        train(EDMConfig(NET, (2,), 1.0), DATA, engine_config(2))  # raw points: wrap them in PointData
    with pytest.raises(SpecError, match="EDMConfig.sigma_data"):
        EDMConfig(NET, (2,), -1.0)
    assert not (tmp_path / "run").exists()


def test_a_diverging_denoiser_stops_with_a_clear_message(tmp_path):
    with pytest.raises(
        TrainingDiverged, match=r"the loss became nan at step \d+ .*lr=1e\+30.*Fix: lower the learning rate"
    ):
        train_denoiser(DATA, NET, steps=50, lr=1e30, seed=0, out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


def test_the_random_feature_trainers_refuse_bad_values():
    from studies.diffusion.random_features import rf_weights, train_rf_score
    from studies.diffusion.rf_distillation import rf_consistency_distill

    W, x = rf_weights(4, 8, seed=0), torch.randn(5, 4)
    with pytest.raises(SpecError, match="steps=0"):
        train_rf_score(x, W, steps=0)
    with pytest.raises(SpecError, match="lr_scale"):
        train_rf_score(x, W, steps=5, lr_scale=-1.0)
    with pytest.raises(SpecError, match="W"):
        train_rf_score(torch.randn(5, 3), W, steps=5)
    bad = x.clone()
    bad[1, 2] = math.inf
    with pytest.raises(SpecError, match="infinite"):
        train_rf_score(bad, W, steps=5)
    A = train_rf_score(x, W, steps=5).A
    with pytest.raises(SpecError, match="lr"):
        rf_consistency_distill(A, W, x, steps=5, lr=math.nan)
    with pytest.raises(SpecError, match="ema"):
        rf_consistency_distill(A, W, x, steps=5, ema=1.0)
    with pytest.raises(ShapeError, match="A_teacher"):
        rf_consistency_distill(A.T, W, x, steps=5)
