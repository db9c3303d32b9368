"""A new model family is one new file: this test file defines a toy family (a config and a hookable
model), registers it, trains it with `interp.train` (stacked generically through torch.func: no
hand-written batched forward), saves and loads its run directory, and runs a probe and a circuit on
it. Nothing outside this file knows the family."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from circuits.ablation import ablate
from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load, load_run
from interp.models import ModelFamily, build_model, register_family
from interp.models.hooks import HookedModel, HookPoint
from interp.train import TrainConfig, train, train_many
from probes.fourier import neuron_activation_grid


@dataclass(frozen=True)
class EmbedSumConfig:
    """logits = W relu(E_a[a] + E_b[b]): one embedding table per operand, summed, one hidden layer."""

    p: int = 11
    width: int = 48

    family = "embed-sum-toy"
    n_layers = 1

    def to_dict(self) -> dict:
        return {"family": self.family, **dataclasses.asdict(self)}


class EmbedSum(HookedModel):
    """The toy model, with the surface the analysis reads (see interp.models.mlp.MLP)."""

    neuron_hook = "hook_post"
    GLOBAL_HOOKS = {"pre": "hook_pre", "post": "hook_post", "logits": "hook_logits"}

    def __init__(self, cfg: EmbedSumConfig):
        super().__init__()
        self.cfg = cfg
        self.E_a = nn.Parameter(torch.randn(cfg.p, cfg.width) / cfg.width**0.5)  # [p, width]
        self.E_b = nn.Parameter(torch.randn(cfg.p, cfg.width) / cfg.width**0.5)
        self.W = nn.Parameter(torch.randn(cfg.p, cfg.width) / cfg.width**0.5)  # [p, width]
        self.hook_pre, self.hook_post, self.hook_logits = HookPoint(), HookPoint(), HookPoint()
        self.setup()

    @property
    def p(self) -> int:
        return self.cfg.p

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """pairs [B, 2] -> logits [B, p]."""
        pre = self.hook_pre(self.E_a[pairs[:, 0]] + self.E_b[pairs[:, 1]])  # [B, width]
        post = self.hook_post(torch.relu(pre))
        return self.hook_logits(post @ self.W.T)

    def pair_logits(self, pairs: torch.Tensor) -> torch.Tensor:
        return self(pairs)

    def answer_logits(self, pairs: torch.Tensor, full: bool = True) -> torch.Tensor:
        return self(pairs)

    def hook_layout(self, hook_name: str) -> str:
        return "units"

    def hook_width(self, hook_name: str) -> int:
        return self.cfg.p if hook_name == "hook_logits" else self.cfg.width

    def expansion_point(self, hook_name: str) -> str | None:
        return hook_name

    def linear_readout(self, hook_name: str):
        return (self.W.T, lambda x: x) if hook_name == "hook_post" else None

    def neuron_in_weights(self) -> torch.Tensor:
        return torch.stack([self.E_a.T, self.E_b.T], dim=1)  # [width, 2, p]

    def neuron_out_weights(self) -> torch.Tensor:
        return self.W.T  # [width, p]


register_family(ModelFamily("embed-sum-toy", EmbedSumConfig, EmbedSum))

TASK = TaskSpec(op="x+y", p=11, frac_train=0.6, seed=0)
CONFIG = TrainConfig(steps=150, lr=2e-2, weight_decay=0.1, eval_every=50)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    return train(EmbedSumConfig(), Task(TASK), CONFIG, out=out)


def test_the_toy_family_trains_through_the_engine_and_fits_its_training_set(run):
    assert run.ok and [h["step"] for h in run.history] == [0, 50, 100, 150]
    assert run.history[0]["train_acc"] < 0.3 and run.final["train_acc"] == 1.0
    assert isinstance(run.model, EmbedSum)
    # the history (stacked forward through torch.func) agrees with the model's own forward
    assert evaluate(run.model, run.task)["train_loss"] == pytest.approx(run.final["train_loss"], rel=1e-5)


def test_a_sweep_of_the_toy_family_is_vmapped_and_matches_training_each_alone(run):
    seeds = [TrainConfig(**{**CONFIG.to_dict(), "seed": s, "betas": CONFIG.betas}) for s in (0, 1)]
    sweep = train_many([(EmbedSumConfig(), Task(TASK), c) for c in seeds])  # one group of 2: vmap
    for a, b in zip(sweep[0].model.parameters(), run.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(sweep[1].model.parameters(), run.model.parameters()))
    assert sweep[1].final["train_acc"] == 1.0


def test_the_run_directory_loads_back_as_a_toy_model(run):
    ckpt = load(run.out)
    assert isinstance(ckpt.model, EmbedSum) and ckpt.step == 150 and ckpt.model_config == EmbedSumConfig()
    for a, b in zip(ckpt.model.parameters(), run.model.parameters()):
        assert torch.equal(a, b)
    assert load_run(run.out).steps == [0, 150]
    fresh = build_model(EmbedSumConfig(), seed=0)
    assert not torch.equal(fresh.W, ckpt.model.W)


def test_a_probe_and_a_circuit_run_on_the_loaded_toy_model(run):
    ckpt = load(run.out)
    grid = neuron_activation_grid(ckpt)  # [p, p, width] through the model's own hook vocabulary
    assert grid.shape == (11, 11, 48) and bool((grid >= 0).all())  # after a ReLU
    every = ablate(ckpt, neurons=list(range(48)), kind="zero")
    assert every.baseline["train_acc"] == 1.0 and every.n_neurons_ablated == 48
    assert every.metrics["train_acc"] < 0.3  # no hidden neuron left: the logits are zero
    one = ablate(ckpt, neurons=[0], kind="mean")
    assert one.metrics["train_acc"] >= 0.8
