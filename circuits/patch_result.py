"""The result of activation patching, named and shaped like TransformerLens's: `PatchResult` (values
per patched cell, optionally per example, with the unpatched baselines), and the percentile bootstrap
over examples behind its confidence intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from interp.errors import SpecError
from interp.results import Result

__all__ = [
    "PatchResult",
    "bootstrap_ci",
]

BOOTSTRAP_ELEMENTS = 2**24  # resampled values held at once: [cells, resamples, examples]


def bootstrap_ci(
    values: torch.Tensor, *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0, statistic: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile bootstrap interval (low, high) of the `statistic` ("mean" or "median") of `values`
    [..., n] over its last axis (the examples), for every leading cell at once; the same `seed` gives
    the same examples resampled for every cell."""
    if statistic not in ("mean", "median"):
        raise SpecError("bootstrap_ci", "statistic", statistic, "'mean' or 'median'")
    if not 0.0 < confidence < 1.0:
        raise SpecError("bootstrap_ci", "confidence", confidence, "a number in (0, 1), e.g. 0.95")
    if n_resamples < 1 or values.ndim < 1 or values.shape[-1] < 1:
        raise SpecError("bootstrap_ci", "n_resamples", n_resamples, "a positive int, over a non-empty example axis")
    n = values.shape[-1]
    cells = max(1, values[..., 0].numel())
    chunk = max(1, min(n_resamples, BOOTSTRAP_ELEMENTS // (cells * n)))
    gen = torch.Generator().manual_seed(seed)
    draws = []
    for start in range(0, n_resamples, chunk):
        idx = torch.randint(0, n, (min(chunk, n_resamples - start), n), generator=gen).to(values.device)  # [r, n]
        resampled = values[..., idx].double()  # [..., r, n]
        draws.append(resampled.mean(-1) if statistic == "mean" else resampled.median(-1).values)
    draws = torch.cat(draws, dim=-1)  # [..., n_resamples]
    alpha = (1.0 - confidence) / 2
    return torch.quantile(draws, alpha, dim=-1).float(), torch.quantile(draws, 1 - alpha, dim=-1).float()


@dataclass(frozen=True, eq=False)
class PatchResult(Result):
    """The metric after each patch, named and shaped like TransformerLens's patching results.

    `values` is [*axes] (`reduced`), or [*axes, batch] with reduce="none" (one value per example, as
    TransformerLens 4's `PatchingResult`); `baseline` is the unpatched target run's metric (the
    corrupted run when denoising, TransformerLens's baseline) and `source_baseline` the unpatched
    source run's, each [] or [batch]. `mean()`, `stderr()`, `effect()`, `bootstrap_ci()` and
    `normalized` work as TransformerLens 4's.
    """

    values: torch.Tensor  # [*axes] or [*axes, batch], e.g. [n_layers, pos]
    axis_names: tuple[str, ...]  # e.g. ("layer", "pos"), ("layer", "head"), ("neuron",); "batch" not included
    hooks: tuple[str, ...]  # the full hook names patched (one per layer)
    per: str  # all | pos | head | head_pos | neuron | sets
    metric: str  # logit_diff | logprob | accuracy | the user function's name
    direction: str  # denoise: clean into corrupted run; noise: corrupted into clean run
    corruption: str  # a | b | both | user
    clean_metric: float  # metric of the unpatched clean run (mean over examples)
    corrupted_metric: float  # metric of the unpatched corrupted run (mean over examples)
    n_pairs: int
    method: str  # closed_form (linear readout of cached activations) | expanded_batch
    n_forward_passes: int  # forward passes spent on the patched runs (not counting the two baselines)
    reduced: bool = True  # False: the last axis of values is the batch (reduce="none")
    baseline: torch.Tensor | None = None  # unpatched target run: [] or [batch]
    source_baseline: torch.Tensor | None = None  # unpatched source run: [] or [batch]

    frame_field = "values"  # to_frame: one row per patched cell (and example)

    def mean(self) -> torch.Tensor:
        """[*axes] the batch mean per cell (`values` itself when already reduced)."""
        return self.values if self.reduced else self.values.mean(-1)

    def _per_example(self, what: str) -> torch.Tensor:
        if self.reduced:
            raise SpecError(
                "PatchResult",
                what,
                "on a reduced result",
                "per-example values",
                "Run activation_patch with reduce='none'.",
            )
        return self.values

    def stderr(self) -> torch.Tensor:
        """[*axes] the standard error of the batch mean per cell."""
        v = self._per_example("stderr")
        return v.std(-1) / math.sqrt(v.shape[-1])

    def effect(self) -> torch.Tensor:
        """values - baseline: the change each patch makes to the unpatched target run (per example when
        not reduced)."""
        return self.values - self.baseline.to(self.values.device)

    def bootstrap_ci(
        self,
        *,
        confidence: float = 0.95,
        n_resamples: int = 1000,
        seed: int = 0,
        statistic: str = "mean",
        of_effect: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) [*axes]: percentile bootstrap interval over examples of each cell's batch
        `statistic` (of `effect()` with of_effect=True); needs reduce="none"."""
        v = self._per_example("bootstrap_ci")
        return bootstrap_ci(
            self.effect() if of_effect else v,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
            statistic=statistic,
        )

    @property
    def normalized(self) -> torch.Tensor:
        """(values - target run) / (source run - target run): 0 = the patch changed nothing, 1 = it
        fully restored the source run's metric (target = corrupted run when denoising); on the batch
        means, so it is [*axes] also with reduce="none"."""
        src, tgt = (
            (self.clean_metric, self.corrupted_metric)
            if self.direction == "denoise"
            else (self.corrupted_metric, self.clean_metric)
        )
        return (self.mean() - tgt) / (src - tgt)

    def frame_axes(self, shape: tuple[int, ...]) -> tuple[str, ...]:
        """`to_frame`'s index columns: the patched axes, and "example" with reduce="none"."""
        names = self.axis_names + (() if self.reduced else ("example",))
        return names if len(names) == len(shape) else super().frame_axes(shape)
