"""Rules-and-Facts data: Gaussian inputs, a teacher rule, random-label facts, a fresh test set.

Every training input, rule or fact, is a fresh x ~ N(0, I_d). The teacher w* ~ N(0, I_d) labels the
rule samples y = sign(w* . x / sqrt(d)); the first round(epsilon n) samples are facts with labels
uniform on {-1, +1}, independent of x and w*; the test set is fresh inputs labelled by the teacher.
Seeds are drawn on the CPU with one torch.Generator each (so a seed gives the same data on any
device), in float64, and stacked on a leading seed axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interp.device import resolve_device
from studies.raf.spec import RAFSpec


@dataclass(frozen=True)
class RAFData:
    """S data sets of one spec (seeds spec.seed + 0 .. S-1), stacked on the first axis."""

    spec: RAFSpec
    seeds: tuple[int, ...]
    teacher: Tensor  # [S, d] w*
    x_train: Tensor  # [S, n, d]
    y_train: Tensor  # [S, n] labels in {-1, +1} (float64)
    is_fact: Tensor  # [n] bool: the first n_facts samples are facts
    x_test: Tensor  # [S, n_test, d]
    y_test: Tensor  # [S, n_test] teacher labels

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.x_train.device

    def select(self, s: int) -> RAFData:
        """The data set of seed index s alone (a batch of one)."""
        pick = slice(s, s + 1)
        return RAFData(
            self.spec,
            (self.seeds[s],),
            self.teacher[pick],
            self.x_train[pick],
            self.y_train[pick],
            self.is_fact,
            self.x_test[pick],
            self.y_test[pick],
        )


def teacher_label(x: Tensor, teacher: Tensor) -> Tensor:
    """sign(w* . x / sqrt(d)) as +-1 floats: x [S, N, d], teacher [S, d] -> [S, N]."""
    z = torch.einsum("snd,sd->sn", x, teacher)  # [S, N]
    return torch.where(z >= 0, 1.0, -1.0).to(x.dtype)


def _one_seed(spec: RAFSpec, seed: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64, generator=g)
    teacher = torch.randn(spec.d, **f64)  # [d]
    x_train = torch.randn(spec.n, spec.d, **f64)  # [n, d]
    fact_labels = torch.randint(0, 2, (spec.n_facts,), generator=g).to(torch.float64) * 2 - 1  # [n_facts]
    x_test = torch.randn(spec.n_test, spec.d, **f64)  # [n_test, d]
    return teacher, x_train, fact_labels, x_test


def make_data(spec: RAFSpec, seeds: int = 1, device=None) -> RAFData:
    """Draw `seeds` data sets of `spec` (seeds spec.seed .. spec.seed + seeds - 1) onto `device` (default CPU)."""
    dev = resolve_device("cpu" if device is None else device)
    seed_list = tuple(spec.seed + s for s in range(seeds))
    parts = [_one_seed(spec, s) for s in seed_list]
    teacher, x_train, fact_labels, x_test = (torch.stack(p).to(dev) for p in zip(*parts))
    y_train = teacher_label(x_train, teacher)  # [S, n]
    y_train[:, : spec.n_facts] = fact_labels  # facts: random labels
    is_fact = torch.arange(spec.n, device=dev) < spec.n_facts  # [n]
    return RAFData(spec, seed_list, teacher, x_train, y_train, is_fact, x_test, teacher_label(x_test, teacher))
