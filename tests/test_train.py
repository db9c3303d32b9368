"""Training one model: grokking, metrics that match the saved checkpoints, resume, divergence,
optimizers and losses, config validation."""

from __future__ import annotations

import json
import math

import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.checkpoints import checkpoint_path, load, load_run
from interp.errors import CheckpointError, DeviceError, ShapeError, SpecError, TrainingDiverged
from interp.models import MLPConfig, TransformerConfig
from interp.train import TrainConfig, train
from interp.train.engine import minibatch_order
from interp.train.optim import BatchedOptimizer, newton_schulz


@pytest.fixture(scope="module")
def noisy_task():
    return Task(TaskSpec(op="x+y", p=23, frac_train=0.5, label_noise=0.2, seed=1))


def same_history(a: list[dict], b: list[dict], rel: float = 0.0) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.keys() != y.keys():
            return False
        for k in x:
            u, v = x[k], y[k]
            if isinstance(u, float) and math.isnan(u):
                if not (isinstance(v, float) and math.isnan(v)):
                    return False
            elif not math.isclose(u, v, rel_tol=rel, abs_tol=rel * 1e-3):
                return False
    return True


def test_quadratic_mlp_memorises_long_before_it_generalises():
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.5))
    cfg = TrainConfig(steps=1500, lr=1e-2, weight_decay=1.0, eval_every=25)
    run = train(MLPConfig(p=23, width=128, act="quad"), task, cfg)
    memorised = next(h["step"] for h in run.history if h["train_acc"] == 1.0)
    generalised = next(h["step"] for h in run.history if h["test_acc"] >= 0.99)
    assert memorised <= 200
    assert generalised >= 4 * memorised + 300  # grokking: a long plateau at 100% train accuracy
    assert run.final["test_acc"] >= 0.99


def test_history_matches_evaluate_on_every_saved_checkpoint(tmp_path, noisy_task):
    cfg = TrainConfig(steps=60, lr=3e-3, eval_every=20, checkpoint_every=30, checkpoint_log=4, warmup_steps=5)
    result = train(MLPConfig(p=23, width=48), noisy_task, cfg, out=tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.status == "complete"
    assert run.steps == cfg.checkpoint_steps() == [0, 1, 4, 15, 30, 60]
    by_step = {h["step"]: h for h in result.history}
    assert sorted(by_step) == [0, 1, 4, 15, 20, 30, 40, 60]  # eval_every plus every checkpoint
    for step in run.steps:
        ckpt = run.load(step)
        direct = evaluate(ckpt.model, ckpt.task)
        for key, value in direct.items():
            assert by_step[step][key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), (step, key)
        norm = sum(p.double().pow(2).sum() for p in ckpt.model.parameters()).sqrt().item()
        assert by_step[step]["weight_norm"] == pytest.approx(norm, rel=1e-9)
    # noisy examples are scored against both label sets
    assert 0 < noisy_task.noisy_mask.sum() < noisy_task.n_train
    assert not math.isnan(by_step[60]["train_noisy_true_acc"])
    # the returned model is the last checkpoint
    last = load(tmp_path / "run")
    assert all(torch.equal(a, b) for a, b in zip(last.model.parameters(), result.model.parameters()))


class Interrupt(Exception):
    pass


def interrupt_at(step):
    def callback(index, entry):
        if entry["step"] == step:
            raise Interrupt

    return callback


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, noisy_task):
    # minibatches, warm-up and a cosine schedule: the resumed run must restore all of them
    cfg = TrainConfig(steps=40, lr=3e-3, eval_every=10, batch_size=50, schedule="cosine", warmup_steps=8)
    mc = MLPConfig(p=23, width=32)
    full = train(mc, noisy_task, cfg, out=tmp_path / "full")
    with pytest.raises(Interrupt):
        train(mc, noisy_task, cfg, out=tmp_path / "cut", callback=interrupt_at(20), state_every_s=0)
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "running"
    resumed = train(mc, noisy_task, cfg, out=tmp_path / "cut", resume=True)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert same_history(full.history, resumed.history)
    assert load_run(tmp_path / "cut").steps == load_run(tmp_path / "full").steps


def test_resume_refuses_a_run_trained_with_other_settings(tmp_path, noisy_task):
    mc = MLPConfig(p=23, width=16)
    cfg = TrainConfig(steps=10, eval_every=5)
    train(mc, noisy_task, cfg, out=tmp_path / "run")
    with pytest.raises(CheckpointError, match="train_config.lr"):
        train(mc, noisy_task, TrainConfig(steps=10, eval_every=5, lr=5e-3), out=tmp_path / "run", resume=True)
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(mc, noisy_task, cfg, out=tmp_path / "run")
    again = train(mc, noisy_task, cfg, out=tmp_path / "run", resume=True)  # finished: nothing to do
    assert again.final["step"] == 10 and again.model is not None
    fresh = train(mc, noisy_task, cfg, out=tmp_path / "run", overwrite=True)
    assert same_history(fresh.history, again.history)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, noisy_task):
    cfg = TrainConfig(
        steps=50, lr=1e4, optimizer="sgd", momentum=0.0, eval_every=10, warmup_steps=0, checkpoint_every=10
    )
    with pytest.raises(TrainingDiverged, match=r"at step \d+.*lower the learning rate") as info:
        train(MLPConfig(p=23, width=16, act="quad"), noisy_task, cfg, out=tmp_path / "run")
    step = info.value.step
    assert 0 <= step < 50
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["status"] == "diverged" and doc["extra"]["diverged"]["step"] == step
    good = doc["extra"]["diverged"]["last_good_checkpoint"]
    assert good is not None and good <= step
    ckpt = load(checkpoint_path(tmp_path / "run", good))
    assert all(torch.isfinite(p).all() for p in ckpt.model.parameters())
    assert all(h["step"] <= step for h in doc["history"])


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd", "muon"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_every_optimizer_and_loss_fits_the_training_set(optimizer, loss):
    task = Task(TaskSpec(op="x-y", p=13, frac_train=0.6))
    lr = {"adamw": 3e-2, "adam": 3e-2, "sgd": 0.5, "muon": 0.1}[optimizer]
    cfg = TrainConfig(steps=40, lr=lr, weight_decay=0.01, optimizer=optimizer, loss=loss, eval_every=40, warmup_steps=2)
    run = train(MLPConfig(p=13, width=32, bias=True), task, cfg)
    assert run.history[0]["train_acc"] < 0.2
    assert run.history[-1]["train_acc"] > 0.6


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_other_weight_dtypes_train_and_save(tmp_path, dtype):
    task = Task(TaskSpec(op="x+y", p=13, frac_train=0.6))
    cfg = TrainConfig(steps=20, lr=3e-2, dtype=dtype, eval_every=20)
    run = train(MLPConfig(p=13, width=32), task, cfg, out=tmp_path / dtype)
    assert next(run.model.parameters()).dtype == getattr(torch, dtype)
    assert run.final["train_acc"] > run.history[0]["train_acc"]
    assert load(tmp_path / dtype).step == 20


def test_transformer_trains_and_its_history_matches_evaluate(tmp_path):
    task = Task(TaskSpec(op="x+y", p=17, frac_train=0.5))
    mc = TransformerConfig(p=17, d_model=32, n_heads=2, d_head=16, d_mlp=64)
    cfg = TrainConfig(steps=40, lr=3e-3, eval_every=20)
    run = train(mc, task, cfg, out=tmp_path / "tf")
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    ckpt = load(tmp_path / "tf")
    assert ckpt.step == 40
    # the engine's stacked forward and the model's own forward round float32 differently (another order
    # of the same sums): the mean loss agrees to float32 rounding (measured 2.4e-9 relative on one CPU,
    # below 1e-9 on another), not bit for bit
    assert evaluate(ckpt.model, task)["test_loss"] == pytest.approx(run.final["test_loss"], rel=1e-6)


def _flat(tensors: dict) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()]).unsqueeze(0)  # [1, P]


def test_batched_adam_family_matches_torch_optim():
    torch.manual_seed(0)
    init = {"U": torch.randn(7, 5), "b": torch.randn(5)}
    layout = [(k, tuple(v.shape)) for k, v in init.items()]
    grads = [{k: torch.randn_like(v) for k, v in init.items()} for _ in range(6)]
    for kind, make in [
        ("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.3)),
        ("adam", lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.3)),
        ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.7, weight_decay=0.3)),
    ]:
        ref = {k: v.clone() for k, v in init.items()}
        opt = make(list(ref.values()))
        flat = _flat(init)
        ours = BatchedOptimizer(kind, flat, layout, weight_decay=[0.3], betas=[[0.8, 0.95]], momentum=[0.7])
        for g in grads:
            for k, p in ref.items():
                p.grad = g[k].clone()
            opt.step()
            ours.step(flat, _flat(g), torch.tensor([0.01], dtype=torch.float64))
        torch.testing.assert_close(flat[0], _flat(ref)[0], rtol=1e-6, atol=1e-7)


def test_batched_muon_matches_torch_muon_on_matrices():
    torch.manual_seed(0)
    W = torch.randn(6, 9)
    grads = [torch.randn(6, 9) for _ in range(4)]
    ref = W.clone()
    opt = torch.optim.Muon([ref], lr=0.02, weight_decay=0.1, momentum=0.9)
    flat = W.reshape(1, -1).clone()
    ours = BatchedOptimizer("muon", flat, [("W", (6, 9))], weight_decay=[0.1], betas=[[0.9, 0.98]], momentum=[0.9])
    for g in grads:
        ref.grad = g.clone()
        opt.step()
        ours.step(flat, g.reshape(1, -1), torch.tensor([0.02], dtype=torch.float64))
    torch.testing.assert_close(flat.view(6, 9), ref, rtol=0, atol=2e-3)  # bfloat16 Newton-Schulz
    # a batch of matrices is orthogonalised one by one
    G = torch.randn(3, 6, 9)
    torch.testing.assert_close(newton_schulz(G)[1], newton_schulz(G[1:2])[0])


def test_minibatch_order_is_a_seeded_permutation_per_epoch():
    a, b = minibatch_order(3, 0, 50), minibatch_order(3, 1, 50)
    assert sorted(a.tolist()) == list(range(50)) and not (a == b).all()
    assert (minibatch_order(3, 0, 50) == a).all()


@pytest.mark.parametrize(
    "field,value",
    [
        ("steps", -1),
        ("steps", 1.5),
        ("lr", 0),
        ("lr", float("nan")),
        ("weight_decay", -0.1),
        ("optimizer", "adagrad"),
        ("schedule", "linear"),
        ("loss", "hinge"),
        ("betas", (0.9,)),
        ("betas", (0.9, 1.0)),
        ("momentum", 1.0),
        ("batch_size", 0),
        ("eval_every", 0),
        ("checkpoint_every", 0),
        ("checkpoint_log", -1),
        ("warmup_steps", -5),
        ("seed", -1),
        ("dtype", "float16"),
        ("device", 3),
    ],
)
def test_train_config_rejects_impossible_values_naming_the_field(field, value):
    with pytest.raises(SpecError, match=f"TrainConfig.{field}="):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_a_dict():
    cfg = TrainConfig(steps=7, betas=[0.8, 0.9], checkpoint_log=3, device="cpu")
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_device_error(tmp_path, noisy_task):
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        train(MLPConfig(p=23, width=8), noisy_task, TrainConfig(steps=1, device="cuda"), out=tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written


def test_model_and_task_must_agree_on_p(noisy_task):
    with pytest.raises(ShapeError, match="p=29 but the task has p=23"):
        train(MLPConfig(p=29, width=8), noisy_task, TrainConfig(steps=1))
