"""Training an EDM denoiser with Adam, and continuing its training (the control of the distillation study)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from interp.device import model_device, resolve_device
from interp.diffusion.checks import check_count, check_seed
from interp.diffusion.data import as_training_data, measured_sigma_data
from interp.diffusion.denoisers import build_net
from interp.diffusion.edm import EDMDenoiser, edm_loss
from interp.errors import ShapeError, SpecError, TrainingDiverged

BATCH_SIZE = 256
LOG_EVERY = 100


def training_batch(data: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A batch of training points: all n repeated round(batch_size / n) times when n <= batch_size
    (every point in every step, fresh noise: B.6's recipe), else batch_size points drawn at random."""
    n = data.shape[0]
    if n <= batch_size:
        return data.repeat(max(1, round(batch_size / n)), *([1] * (data.ndim - 1)))  # [reps * n, ...]
    idx = torch.randint(0, n, (batch_size,), generator=generator, device=data.device)  # [batch_size]
    return data[idx]


def check_schedule(name: str, steps: int, lr: float, seed=0, batch_size: int = BATCH_SIZE) -> None:
    """Refuse a step count below 1 (training nothing), a non-positive learning rate, a bad seed or batch size."""
    check_count(name, "steps", steps, fix="steps=0 would return the model untrained.")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise SpecError(name, "lr", lr, "a positive number", "Adam's usual range for these models is 1e-4 to 1e-3.")
    check_seed(name, seed)
    check_count(name, "batch_size", batch_size)


def _check_snapshots(where: str, snapshot_steps, steps: int) -> None:
    for s in snapshot_steps:
        check_count(where, "snapshot_steps", s, fix=f"Each is a step in [1, {steps}] at which to keep a copy.")


def seeded_build(config, data_shape: tuple[int, ...], seed: int):
    """The raw network for `config`, initialised from `seed` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_net(config, data_shape)


def train_denoiser(
    data,
    config,
    *,
    steps: int,
    lr: float,
    seed: int,
    device=None,
    batch_size: int = BATCH_SIZE,
    snapshot_steps: Sequence[int] = (),
) -> EDMDenoiser:
    """Train an EDM denoiser on `data` ([n, d] or [n, C, H, W]) with Adam for `steps` steps.

    Returns the model (in eval mode) with `.history` (loss every 100 steps), `.step`, and, for each
    step in `snapshot_steps`, a copy of its weights in `.snapshots` (see `at_step`)."""
    check_schedule("train_denoiser", steps, lr, seed, batch_size)
    _check_snapshots("train_denoiser", snapshot_steps, steps)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    x = as_training_data(data, device=dev)
    sigma_data = config.sigma_data if config.sigma_data is not None else measured_sigma_data(x)
    model = EDMDenoiser(seeded_build(config, tuple(x.shape[1:]), seed), config, tuple(x.shape[1:]), sigma_data).to(dev)
    model.step, model.snapshots, model.optimizer_state = 0, {}, None
    return _fit(model, x, steps=steps, lr=lr, seed=seed, batch_size=batch_size, snapshot_steps=snapshot_steps)


def continue_training(
    model: EDMDenoiser, data, *, steps: int, lr: float, seed: int, batch_size: int = BATCH_SIZE
) -> EDMDenoiser:
    """A copy of `model` trained `steps` more steps on `data`, resuming its Adam state when it has one."""
    check_schedule("continue_training", steps, lr, seed, batch_size)
    if not isinstance(model, EDMDenoiser) or model.kind != "edm":
        raise SpecError("continue_training", "model", type(model).__name__, "an EDM denoiser from train_denoiser")
    x = as_training_data(data, device=model_device(model))
    if tuple(x.shape[1:]) != model.data_shape:
        raise ShapeError(f"data points have shape {tuple(x.shape[1:])}, the model was trained on {model.data_shape}.")
    clone = copy.deepcopy(model)
    clone.snapshots = {}
    return _fit(clone, x, steps=steps, lr=lr, seed=seed, batch_size=batch_size, snapshot_steps=())


def _fit(model: EDMDenoiser, x: torch.Tensor, *, steps, lr, seed, batch_size, snapshot_steps) -> EDMDenoiser:
    gen = torch.Generator(device=x.device).manual_seed(seed + 7919 * getattr(model, "step", 0))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if getattr(model, "optimizer_state", None) is not None:
        opt.load_state_dict(model.optimizer_state)
        for group in opt.param_groups:
            group["lr"] = lr
    wanted = {int(s) for s in snapshot_steps}
    model.train()
    start = model.step
    for k in range(1, steps + 1):
        loss = edm_loss(model, training_batch(x, batch_size, gen), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.step = start + k
        if k % LOG_EVERY == 0 or k == steps:
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"the EDM loss became {value} at step {model.step} (lr={lr}). Lower lr.")
            model.history.append({"step": model.step, "loss": value})
        if model.step in wanted:
            model.snapshots[model.step] = {k2: v.detach().clone() for k2, v in model.state_dict().items()}
    model.optimizer_state = opt.state_dict()
    return model.eval()


def at_step(model: EDMDenoiser, step: int) -> EDMDenoiser:
    """A copy of `model` holding the weights it had at `step` (one of the `snapshot_steps` it was trained with)."""
    snaps = getattr(model, "snapshots", {})
    if step not in snaps:
        raise SpecError(
            "at_step", "step", step, f"one of the snapshot steps {sorted(snaps)}", "Pass it in snapshot_steps."
        )
    clone = copy.deepcopy(model)
    clone.load_state_dict(snaps[step])
    clone.step, clone.snapshots, clone.optimizer_state = step, {}, None
    return clone.eval()
