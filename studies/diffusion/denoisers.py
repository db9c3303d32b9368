"""The raw networks F(c_in x, c_noise) inside an EDM denoiser: an MLP for vectors, a small U-Net for images.

Each config is a frozen dataclass; `build_net(config, data_shape)` makes the network. The EDM
preconditioning (c_skip, c_out, c_in, c_noise) lives in `studies.diffusion.edm`; these networks only
see the scaled input and the noise level's embedding.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from interp.errors import ShapeError, SpecError


@dataclass(frozen=True)
class DenoiserConfig:
    """An MLP denoiser for vectors (docs/papers.md, B.5 / B.6: residual SiLU layers of width 128, sinusoidal noise embedding)."""

    width: int = 128  # hidden width of every block
    depth: int = 3  # hidden residual layers h <- h + SiLU(Linear(h)), after h = SiLU(W_in x + emb(sigma))
    sigma_data: float | None = None  # EDM's sigma_data; None: the data's per-coordinate std, measured at training
    embed_dim: int = 64  # size of the sinusoidal embedding of c_noise = ln(sigma) / 4

    def __post_init__(self):
        _check_positive("DenoiserConfig", self, ("width", "depth", "embed_dim"))
        _check_sigma_data("DenoiserConfig", self.sigma_data)


@dataclass(frozen=True)
class UNetConfig:
    """A small U-Net denoiser for images [C, H, W] (H and W divisible by 2^(len(channel_mult) - 1))."""

    channels: int = 32  # channels of the first level
    channel_mult: tuple[int, ...] = (1, 2)  # per level; each level after the first halves H and W
    blocks_per_level: int = 1  # residual blocks per level, on the way down and on the way up
    sigma_data: float | None = None  # as DenoiserConfig
    embed_dim: int = 64

    def __post_init__(self):
        _check_positive("UNetConfig", self, ("channels", "blocks_per_level", "embed_dim"))
        _check_sigma_data("UNetConfig", self.sigma_data)
        mult = tuple(int(m) for m in self.channel_mult)
        if not mult or min(mult) < 1:
            raise SpecError(
                "UNetConfig", "channel_mult", self.channel_mult, "a non-empty tuple of positive ints", "Try (1, 2)."
            )
        object.__setattr__(self, "channel_mult", mult)


@dataclass(frozen=True)
class RandomFeatureConfig:
    """Bonnaire et al.'s random-feature model as an EDM network: F(u, c_noise) = A tanh((W u + V e(c_noise)) / sqrt(d)),
    W [p, d] and V [p, embed_dim] Gaussian and frozen, only A [d, p] trained (from A = 0)."""

    p: int = 512  # number of random features
    sigma_data: float | None = None
    embed_dim: int = 16  # sinusoidal features of c_noise fed through the frozen V
    seed: int = 0  # seed of W and V (the frozen features), independent of the training seed

    def __post_init__(self):
        _check_positive("RandomFeatureConfig", self, ("p", "embed_dim"))
        _check_sigma_data("RandomFeatureConfig", self.sigma_data)


CONFIGS = {"DenoiserConfig": DenoiserConfig, "UNetConfig": UNetConfig, "RandomFeatureConfig": RandomFeatureConfig}


def config_to_dict(config) -> dict:
    """A config as JSON values, with its kind under "kind"."""
    return {"kind": type(config).__name__, **dataclasses.asdict(config)}


def config_from_dict(d: dict):
    """The config that `config_to_dict` wrote."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in CONFIGS:
        raise SpecError(
            "denoiser config", "kind", kind, f"one of {sorted(CONFIGS)}", "The file was not written by grokscope."
        )
    if "channel_mult" in d:
        d["channel_mult"] = tuple(d["channel_mult"])
    return CONFIGS[kind](**d)


def _check_positive(name: str, config, fields: tuple[str, ...]) -> None:
    for f in fields:
        v = getattr(config, f)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SpecError(name, f, v, "a positive int")


def _check_sigma_data(name: str, sigma_data) -> None:
    if sigma_data is not None and not (
        isinstance(sigma_data, (int, float)) and math.isfinite(sigma_data) and sigma_data > 0
    ):
        raise SpecError(name, "sigma_data", sigma_data, "None (measured from the data) or a positive number")


class NoiseEmbedding(nn.Module):
    """Sinusoidal features of c_noise mapped linearly to out_dim: [B] -> [B, out_dim]."""

    def __init__(self, embed_dim: int, out_dim: int):
        super().__init__()
        half = max(1, embed_dim // 2)
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(30.0), half)), persistent=False)
        self.proj = nn.Linear(2 * half, out_dim)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        angles = c_noise[:, None] * self.freqs  # [B, half]
        return self.proj(torch.cat([angles.sin(), angles.cos()], dim=1))  # [B, out_dim]


class MLPNet(nn.Module):
    """F(x, c_noise) for vectors: h = SiLU(W_in x + emb), then `depth` residual layers h += SiLU(W h), then W_out h."""

    def __init__(self, config: DenoiserConfig, dim: int):
        super().__init__()
        w = config.width
        self.embed = NoiseEmbedding(config.embed_dim, w)
        self.inp = nn.Linear(dim, w)
        self.blocks = nn.ModuleList(nn.Linear(w, w) for _ in range(config.depth))
        self.out = nn.Linear(w, dim)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        h = nn.functional.silu(self.inp(x) + self.embed(c_noise))  # [B, w]
        for layer in self.blocks:
            h = h + nn.functional.silu(layer(h))
        return self.out(h)  # [B, dim]


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the noise embedding added in between, 1x1 skip when channels change."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))  # [B, c_out, H, W]
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return self.skip(x) + h


def _groups(c: int) -> int:
    return math.gcd(c, 8)


class UNetNet(nn.Module):
    """F(x, c_noise) for images [B, C, H, W]: levels of residual blocks, average-pool down, nearest up, skips."""

    def __init__(self, config: UNetConfig, shape: tuple[int, ...]):
        super().__init__()
        c_img, emb = shape[0], 4 * config.channels
        chans = [config.channels * m for m in config.channel_mult]
        self.embed = NoiseEmbedding(config.embed_dim, emb)
        self.inp = nn.Conv2d(c_img, chans[0], 3, padding=1)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        c = chans[0]
        for ch in chans:
            self.down.append(
                nn.ModuleList(ResBlock(c if i == 0 else ch, ch, emb) for i in range(config.blocks_per_level))
            )
            c = ch
        self.middle = ResBlock(c, c, emb)
        for ch in reversed(chans):
            self.up.append(
                nn.ModuleList(ResBlock((c + ch) if i == 0 else ch, ch, emb) for i in range(config.blocks_per_level))
            )
            c = ch
        self.out = nn.Sequential(nn.GroupNorm(_groups(c), c), nn.SiLU(), nn.Conv2d(c, c_img, 3, padding=1))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.embed(c_noise)  # [B, E]
        h, skips = self.inp(x), []
        for level, blocks in enumerate(self.down):
            if level > 0:
                h = nn.functional.avg_pool2d(h, 2)  # [B, c, H/2, W/2]
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for blocks in self.up:
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = nn.functional.interpolate(h, size=skip.shape[-2:], mode="nearest")  # [B, c, 2H, 2W]
            h = torch.cat([h, skip], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.out(h)  # [B, C, H, W]


class RandomFeatureNet(nn.Module):
    """F(u, c_noise) = A tanh((W u + V e(c_noise)) / sqrt(d)) with frozen W, V (buffers) and trained A (zero at start)."""

    def __init__(self, config: RandomFeatureConfig, dim: int):
        super().__init__()
        g = torch.Generator().manual_seed(config.seed)
        half = max(1, config.embed_dim // 2)
        self.register_buffer("W", torch.randn(config.p, dim, generator=g))  # [p, d]
        self.register_buffer("V", torch.randn(config.p, 2 * half, generator=g))  # [p, e]
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(30.0), half)))
        self.A = nn.Parameter(torch.zeros(dim, config.p))  # [d, p]
        self.dim = dim

    def features(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """phi(u, sigma) [B, p]."""
        angles = c_noise[:, None] * self.freqs  # [B, half]
        e = torch.cat([angles.sin(), angles.cos()], dim=1)  # [B, e]
        return torch.tanh((u @ self.W.T + e @ self.V.T) / math.sqrt(self.dim))

    def forward(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return self.features(u, c_noise) @ self.A.T  # [B, d]


def check_data_shape(config, data_shape: tuple[int, ...]) -> None:
    """A ShapeError when the network of `config` cannot take data points of `data_shape`."""
    if isinstance(config, DenoiserConfig):
        if len(data_shape) != 1:
            raise ShapeError(
                f"DenoiserConfig is an MLP for vectors, but the data points have shape {data_shape}. "
                "Use UNetConfig for images [C, H, W], or flatten the data to [n, d]."
            )
    elif isinstance(config, RandomFeatureConfig):
        if len(data_shape) != 1:
            raise ShapeError(
                f"RandomFeatureConfig is for vectors [d]; the data points have shape {data_shape}. Flatten them."
            )
    elif isinstance(config, UNetConfig):
        factor = 2 ** (len(config.channel_mult) - 1)
        if len(data_shape) != 3 or data_shape[1] % factor or data_shape[2] % factor:
            raise ShapeError(
                f"UNetConfig with channel_mult={config.channel_mult} needs images [C, H, W] with H and W divisible by "
                f"{factor}; the data points have shape {data_shape}. Pad the images or use fewer levels."
            )
    else:
        raise SpecError(
            "denoiser", "config", type(config).__name__, "a DenoiserConfig, UNetConfig or RandomFeatureConfig"
        )


def build_net(config, data_shape: tuple[int, ...]) -> nn.Module:
    """The raw network for `config` and one data point's shape ([d] for the MLP, [C, H, W] for the U-Net)."""
    data_shape = tuple(int(s) for s in data_shape)
    check_data_shape(config, data_shape)
    if isinstance(config, DenoiserConfig):
        return MLPNet(config, data_shape[0])
    if isinstance(config, RandomFeatureConfig):
        return RandomFeatureNet(config, data_shape[0])
    return UNetNet(config, data_shape)
