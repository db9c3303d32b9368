"""The zoo's recipes: how each shipped entry (and its GPU-scale version, NAME-gpu) is trained.

Each recipe is the full task, model and train spec of one entry plus what it is for; `interp.zoo`
builds entries from these, records them in the manifest and loads them. The comments beside each
group say what was measured when its CPU-scale settings were chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.checkpoints.catalog import GPU_SUFFIX
from interp.errors import SpecError
from interp.models import MLPConfig, ModelConfig, TransformerConfig
from interp.tasks import TaskSpec
from interp.train_config import TrainConfig

SCALES = ("cpu", "gpu")


@dataclass(frozen=True)
class Recipe:
    """How to train one zoo entry: its specs, what it is for, and whether to keep its trajectory."""

    name: str
    group: str  # entries of a group are trained together by train_many
    description: str
    task: TaskSpec
    model: ModelConfig
    train: TrainConfig
    trajectory: bool = False  # keep every checkpoint (else the final step only)
    scale: str = "cpu"

    @property
    def command(self) -> str:
        base = self.name[: -len(GPU_SUFFIX)] if self.scale == "gpu" else self.name
        return f"interp-zoo build --scale gpu {base}" if self.scale == "gpu" else f"interp-zoo build {base}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "scale": self.scale,
            "trajectory": self.trajectory,
            "task_spec": self.task.to_dict(),
            "model_config": self.model.to_dict(),
            "train_config": self.train.to_dict(),
            "command": self.command,
        }


def _coexistence(scale: str) -> list[Recipe]:
    # The coexistence paper: ReLU MLP with an output bias, noise over the p - 1 wrong classes,
    # full-batch AdamW, widths 2^k + 1. With the paper's lr 1e-3 / weight decay 0.1 no width-513 model
    # had generalised after 4000 steps at p = 59 (noise-free test accuracy 0.00), so the CPU entries
    # use lr 1e-2 / weight decay 1 (noise-free test accuracy 1.00 by step 600).
    if scale == "cpu":
        p, small, large, steps, lr, wd = 59, 65, 513, 2000, 1e-2, 1.0
    else:
        p, small, large, steps, lr, wd = 113, 65, 4097, 20000, 1e-3, 0.1
    out = []
    for noise in (0, 50, 80):
        for size, width in (("small", small), ("large", large)):
            out.append(
                Recipe(
                    name=f"mlp-noise{noise}-{size}",
                    group="coexistence",
                    description=(
                        f"Two-layer ReLU MLP, width {width}, on (a + b) mod {p} with {noise}% of the training labels "
                        "replaced by wrong classes (the coexistence paper's setting)."
                    ),
                    task=TaskSpec("x+y", p, 0.5, label_noise=noise / 100, noise_kind="other", seed=0),
                    model=MLPConfig(p=p, width=width, act="relu", bias=True),
                    train=TrainConfig(
                        steps=steps,
                        lr=lr,
                        weight_decay=wd,
                        eval_every=max(1, steps // 100),
                        seed=0,
                        loss_dtype="float32",
                    ),
                    scale=scale,
                )
            )
    return out


def _doshi(scale: str) -> list[Recipe]:
    # Doshi et al. 2024: quadratic activation, no biases, MSE on one-hot targets, full-batch AdamW
    # lr 1e-2, a fraction xi = 0.35 of training labels uniform over all classes, data fraction 0.5.
    # p = 97 and width 500 as in the paper: the three phases appear within a few hundred steps.
    p, width, steps = (97, 500, 800) if scale == "cpu" else (97, 500, 10000)
    return [
        Recipe(
            name=f"doshi-wd{wd}",
            group="doshi",
            description=(
                f"Quadratic MLP (Doshi et al.), width {width}, MSE loss, on (a + b) mod {p} with 35% random labels, "
                f"weight decay {wd} (the paper: {regime} at p = 97)."
            ),
            task=TaskSpec("x+y", p, 0.5, label_noise=0.35, noise_kind="all", seed=0),
            model=MLPConfig(p=p, width=width, act="quad", bias=False),
            train=TrainConfig(
                steps=steps,
                lr=1e-2,
                weight_decay=float(wd),
                loss="mse",
                eval_every=max(1, steps // 100),
                seed=0,
                loss_dtype="float32",
            ),
            scale=scale,
        )
        for wd, regime in ((0, "coexistence"), (5, "partial inversion"), (15, "full inversion"))
    ]


def _grok_transformer(scale: str) -> list[Recipe]:
    # Nanda et al. 2023 (scaled down on CPU): 1-layer transformer on `a b =`, full-batch AdamW
    # lr 1e-3, weight decay 1, betas (0.9, 0.98), 10-step warm-up, float64 loss.
    if scale == "cpu":
        # At p = 53 a 40% split had not grokked by 4000 steps; with 50% train accuracy reaches 99% by
        # step ~200 and test accuracy by ~1700.
        p, frac, d_model, heads, d_head, d_mlp, steps, every, n_log = 53, 0.5, 64, 4, 16, 256, 3000, 200, 20
    else:
        p, frac, d_model, heads, d_head, d_mlp, steps, every, n_log = 113, 0.3, 128, 4, 32, 512, 40000, 500, 40
    return [
        Recipe(
            name="grok-transformer",
            group="grok",
            description=(
                f"One-layer transformer (Nanda et al.'s architecture{'' if scale == 'gpu' else ', scaled down'}) on "
                f"(a + b) mod {p} with {round(frac * 100)}% of pairs for training; it memorises first and groks later. "
                f"Keeps {n_log} log-spaced checkpoints plus one every {every} steps."
            ),
            task=TaskSpec("x+y", p, frac, seed=0),
            model=TransformerConfig(p=p, n_layers=1, d_model=d_model, n_heads=heads, d_head=d_head, d_mlp=d_mlp),
            train=TrainConfig(
                steps=steps,
                lr=1e-3,
                weight_decay=1.0,
                eval_every=max(1, steps // 200),
                checkpoint_every=every,
                checkpoint_log=n_log,
                seed=0,
            ),
            trajectory=True,
            scale=scale,
        )
    ]


def _clock_pizza(scale: str) -> list[Recipe]:
    # Zhong et al. 2023: tokens `a b` (no '='), no causal mask, 80% train, weight decay 2; the
    # attention rate alpha = 1 trains the clock model, alpha = 0 the pizza model.
    # On CPU: Zhong et al.'s p = 59 with half their width and lr 3e-3; over 4 seeds each, every
    # alpha = 1 model measured as a clock and every alpha = 0 model as a pizza (test accuracy 1.0).
    if scale == "cpu":
        p, d_model, heads, d_head, d_mlp, steps, lr = 59, 64, 4, 16, 256, 1000, 3e-3
    else:
        p, d_model, heads, d_head, d_mlp, steps, lr = 59, 128, 4, 32, 512, 20000, 1e-3
    return [
        Recipe(
            name=f"{kind}-transformer",
            group="clock-pizza",
            description=(
                f"One-layer transformer on (a + b) mod {p} with tokens `a b`, attention rate {rate} "
                f"(Zhong et al.: {'learned attention, the clock setting' if rate else 'uniform attention, the pizza setting'})."
            ),
            task=TaskSpec("x+y", p, 0.8, seed=0),
            model=TransformerConfig(
                p=p,
                n_layers=1,
                d_model=d_model,
                n_heads=heads,
                d_head=d_head,
                d_mlp=d_mlp,
                attention_rate=rate,
                eq_token=False,
                causal=False,
            ),
            train=TrainConfig(steps=steps, lr=lr, weight_decay=2.0, eval_every=max(1, steps // 100), seed=0),
            scale=scale,
        )
        for kind, rate in (("clock", 1.0), ("pizza", 0.0))
    ]


def _capacity(scale: str) -> list[Recipe]:
    # Random labels over the training pairs of modular division (Song and Ye): memorisation only,
    # for T_mem and capacity in bits across parameter counts.
    p, widths, steps = (23, (2, 4, 6, 8, 16, 32), 3000) if scale == "cpu" else (97, (16, 32, 64, 128, 256, 512), 20000)
    return [
        Recipe(
            name=f"random-labels-w{w}",
            group="capacity",
            description=(
                f"Two-layer ReLU MLP, width {w}, fitting uniformly random labels on half the pairs of a / b mod {p} "
                "(memorisation only: for capacity in bits)."
            ),
            task=TaskSpec("x/y", p, 0.5, random_labels=True, seed=0),
            model=MLPConfig(p=p, width=w, act="relu"),
            train=TrainConfig(
                steps=steps,
                lr=1e-2 if scale == "cpu" else 3e-3,
                weight_decay=0.0,
                eval_every=max(1, steps // 100),
                seed=0,
            ),
            scale=scale,
        )
        for w in widths
    ]


def _groups(scale: str) -> list[Recipe]:
    # Chughtai et al. 2023 (composition in a group) scaled down. On CPU a width-256 ReLU MLP on S4 with
    # 80% of the table reaches test accuracy 1.0 by step ~1000 (lr 1e-2, weight decay 1; with 60% it had
    # not generalised by step 4000); with 20% label noise it memorises every noisy label and its test
    # accuracy falls to ~0.2, while irrep filtration brings G back to ~0.95 (examples/groups.py). The GPU
    # versions are S5 at Chughtai et al.'s learning rate. And the issue's x*y report: a quadratic MLP on
    # x*y mod 31 (circuit_models' recipe), periodic in the discrete-log basis of Z_31^*.
    if scale == "cpu":
        g, order, width, frac, lr, steps, p_mul, mul_steps = "S4", 24, 256, 0.8, 1e-2, 1500, 31, 1500
    else:
        g, order, width, frac, lr, steps, p_mul, mul_steps = "S5", 120, 512, 0.5, 1e-3, 50000, 113, 10000
    out = [
        Recipe(
            name=f"group-mlp{'-noise20' if noise else ''}",
            group="groups",
            description=(
                f"Two-layer ReLU MLP, width {width}, on composition in {g} ({g}:x*y, {order} elements) with "
                f"{round(frac * 100)}% of the table for training"
                + (", 20% of the training labels moved to a wrong class" if noise else "")
                + " (Chughtai et al.'s task; irreps in probes.representations)."
            ),
            task=TaskSpec(f"{g}:x*y", order, frac, label_noise=noise, seed=0),
            model=MLPConfig(p=order, width=width, act="relu"),
            train=TrainConfig(
                steps=steps,
                lr=lr,
                weight_decay=1.0,
                betas=(0.9, 0.98),
                eval_every=max(1, steps // 100),
                seed=0,
            ),
            scale=scale,
        )
        for noise in (0.0, 0.2)
    ]
    out.append(
        Recipe(
            name="mul-mlp",
            group="groups",
            description=(
                f"Quadratic MLP, width 256, MSE, on x*y mod {p_mul} with 60% of the table for training: periodic in "
                f"the discrete-log Fourier basis of Z_{p_mul}^* (the multiplicative group), not in Z_{p_mul}'s."
            ),
            task=TaskSpec("x*y", p_mul, 0.6, seed=0),
            model=MLPConfig(p=p_mul, width=256, act="quad"),
            train=TrainConfig(
                steps=mul_steps,
                lr=1e-2,
                weight_decay=5.0,
                loss="mse",
                eval_every=max(1, mul_steps // 100),
                seed=0,
            ),
            scale=scale,
        )
    )
    return out


_BUILDERS = (_coexistence, _doshi, _grok_transformer, _clock_pizza, _capacity, _groups)


def recipes(scale: str = "cpu") -> dict[str, Recipe]:
    """{name: Recipe} of the zoo at a scale: "cpu" (shipped) or "gpu" (names end in -gpu)."""
    if scale not in SCALES:
        raise SpecError("zoo", "scale", scale, f"one of {list(SCALES)}")
    out = {}
    for builder in _BUILDERS:
        for r in builder(scale):
            if scale == "gpu":
                r = Recipe(**{**r.__dict__, "name": r.name + GPU_SUFFIX})
            out[r.name] = r
    return out


def recipe(name: str) -> Recipe:
    """The recipe of one entry (a name ending in -gpu is the GPU-scale version)."""
    scale = "gpu" if name.endswith(GPU_SUFFIX) else "cpu"
    all_ = recipes(scale)
    if name not in all_:
        raise SpecError("zoo", "name", name, f"one of {sorted(recipes('cpu'))} (or NAME-gpu)", "Run `interp-zoo list`.")
    return all_[name]
