"""Training an EDM denoiser, and continuing its training (the control of the distillation study),
through grokscope's one training engine (`interp.train.train` with `studies.diffusion.objectives`):
the batched Adam of interp.train.optim, run directories that `interp.checkpoints.load()` reads
(`out=`), `resume=`, a progress bar, a clear error when the loss stops being finite."""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from interp.device import model_device, resolve_device
from interp.errors import ShapeError, SpecError
from interp.train import TrainConfig, TrainState, raise_if_diverged, train_many
from studies.diffusion.checks import check_count, check_real, check_seed
from studies.diffusion.data import measured_sigma_data
from studies.diffusion.edm import EDMConfig, EDMDenoiser
from studies.diffusion.objectives import BATCH_SIZE, PointData, training_batch  # noqa: F401 (training_batch: re-exported)

LOG_EVERY = 100  # the loss is recorded every this many steps (and at the last one)


def check_schedule(name: str, steps: int, lr: float, seed=0, batch_size: int | None = BATCH_SIZE) -> None:
    """Refuse a step count below one (training nothing), a learning rate that is not a positive number, a
    bad seed or batch size."""
    check_count(name, "steps", steps, fix="steps=0 would return the model untrained.")
    check_real(name, "lr", lr, positive=True)
    check_seed(name, seed)
    if batch_size is not None:
        check_count(name, "batch_size", batch_size)


def adam_config(*, steps: int, lr: float, seed: int, batch_size: int | None, device) -> TrainConfig:
    """The train config of the study's loops: Adam (torch.optim.Adam's defaults: betas (0.9, 0.999), no
    weight decay), constant lr, the loss recorded every LOG_EVERY steps."""
    return TrainConfig(
        steps=steps, lr=lr, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0,
        batch_size=batch_size, eval_every=LOG_EVERY, seed=seed, device=str(device),
    )  # fmt: skip


def progress_bar(progress, total: int, desc: str):
    """(callback for the engine, close): `progress` True draws a tqdm bar, a callable gets the steps done."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)
    return bar.update, bar.close


def fit(model_config, points: PointData, cfg: TrainConfig, *, targets=None, init=None, out=None, resume=False,
        overwrite=False, progress=None, snapshot_steps=(), desc="train") -> EDMDenoiser:  # fmt: skip
    """Train through the engine and return the model with the study's attributes: `.history` (the
    loss at every evaluation after the start), `.step`, `.snapshots`, `.optimizer_state` (to continue),
    `.data_spec`, `.run_dir`."""
    job = (model_config, points, cfg) if targets is None else (model_config, points, cfg, targets)
    start = 0 if init is None else init.step
    callback, close = progress_bar(progress, cfg.steps - start, desc)
    try:
        (result,) = train_many(
            [job], out=[out], resume=resume, overwrite=overwrite, progress=callback, init=[init], keep_state=True,
            snapshot_steps=snapshot_steps,
        )  # fmt: skip
        raise_if_diverged(result)
    finally:
        close()
    model = result.model.eval()
    model.history = [h for h in result.history if h["step"] > start]
    model.step, model.snapshots = cfg.steps, dict(result.snapshots)
    model.optimizer_state, model.data_spec, model.run_dir = result.state.optimizer, points.spec, result.out
    return model


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
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
) -> EDMDenoiser:
    """Train an EDM denoiser on `data` ([n, d] or [n, C, H, W]) with Adam for `steps` steps.

    Returns the model (in eval mode) with `.history` (the loss every 100 steps, on one fixed draw of
    batch and noise), `.step`, and, for each step in `snapshot_steps`, a copy of its weights in
    `.snapshots` (see `at_step`). `out`: a run directory written as it trains (run.json, checkpoints/,
    state/; `interp.checkpoints.load(out).model` is the denoiser); `resume=True` continues it;
    `progress=True` shows a progress bar (or pass a callable taking the number of steps done)."""
    check_schedule("train_denoiser", steps, lr, seed, batch_size)
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    points = PointData(data, device=dev)
    x = points.x
    sigma_data = config.sigma_data if getattr(config, "sigma_data", None) is not None else measured_sigma_data(x)
    model_config = EDMConfig(config, tuple(x.shape[1:]), sigma_data)
    cfg = adam_config(steps=steps, lr=lr, seed=seed, batch_size=batch_size, device=dev)
    return fit(model_config, points, cfg, out=out, resume=resume, overwrite=overwrite, progress=progress,
               snapshot_steps=snapshot_steps, desc="denoiser")  # fmt: skip


def continue_training(
    model: EDMDenoiser,
    data,
    *,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = BATCH_SIZE,
    out=None,
    progress=None,
) -> EDMDenoiser:
    """A copy of `model` trained `steps` more steps on `data`, resuming its Adam state when it has one
    (a model from train_denoiser or continue_training; a loaded one starts a fresh Adam at its step)."""
    check_schedule("continue_training", steps, lr, seed, batch_size)
    if not isinstance(model, EDMDenoiser) or model.kind != "edm":
        raise SpecError("continue_training", "model", type(model).__name__, "an EDM denoiser from train_denoiser")
    dev = model_device(model)
    points = PointData(data, device=dev)
    if tuple(points.x.shape[1:]) != model.data_shape:
        raise ShapeError(
            f"data points have shape {tuple(points.x.shape[1:])}, the model was trained on {model.data_shape}."
        )
    start = int(model.step or 0)
    params = {k: v.detach() for k, v in model.state_dict().items()}
    init = TrainState(start, params, model.optimizer_state or {}, list(model.history))
    cfg = adam_config(steps=start + steps, lr=lr, seed=seed, batch_size=batch_size, device=dev)
    clone = fit(model.cfg, points, cfg, init=init, out=out, progress=progress, desc="continue")
    clone.history = list(model.history) + clone.history
    return clone


def at_step(model: EDMDenoiser, step: int) -> EDMDenoiser:
    """A copy of `model` holding the weights it had at `step` (one of the `snapshot_steps` it was trained with)."""
    snaps = getattr(model, "snapshots", {})
    if step not in snaps:
        raise SpecError(
            "at_step", "step", step, f"one of the snapshot steps {sorted(snaps)}", "Pass it in snapshot_steps."
        )
    clone = copy.deepcopy(model)
    clone.load_state_dict(snaps[step], strict=False)  # snapshots hold the trained parameters
    clone.step, clone.snapshots, clone.optimizer_state = step, {}, None
    return clone.eval()
