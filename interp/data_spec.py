"""`DataSpec`: what a run trained on when it is not an arithmetic task (points, images, ...).

A run directory records its task in run.json and in every weight file: an arithmetic task as its
`task_spec` (and split), any other training data as a `DataSpec` under "data" (with "task_spec": null),
so that one on-disk format and one `load()` serve every model family. The data themselves are not
stored; the spec says what they were (kind, size, shape of a point) and carries a fingerprint of their
values, so that resuming a run with other data is refused. A loaded run's `task` is its DataSpec, and
`DataSpec.spec` is the spec itself, as a Task's `spec` is its TaskSpec.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from interp.errors import SpecError


@dataclass(frozen=True)
class DataSpec:
    """Training data other than an arithmetic task, as run.json records it."""

    kind: str  # what a point is: "vectors" [n, d], "images" [n, C, H, W], or a study's own word
    n: int  # number of training points (0: not recorded)
    shape: tuple[int, ...]  # the shape of one point
    fingerprint: str  # sha256 of the points' float32 values (C order): the same data, or not
    name: str = ""  # where they came from, in words ("gaussian_mixture(64, 8, seed=0)", a file name, ...)

    def __post_init__(self):
        if not isinstance(self.kind, str) or not self.kind:
            raise SpecError("DataSpec", "kind", self.kind, "a non-empty string")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
            raise SpecError("DataSpec", "n", self.n, "a non-negative int (0: not recorded)")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def spec(self) -> DataSpec:
        return self

    @classmethod
    def of(cls, data: torch.Tensor, *, kind: str | None = None, name: str = "") -> DataSpec:
        """The spec of a tensor of points [n, ...] (kind: "vectors" for [n, d], "images" for [n, C, H, W])."""
        if not isinstance(data, torch.Tensor) or data.ndim < 2:
            raise SpecError("DataSpec.of", "data", type(data).__name__, "a tensor of points [n, ...]")
        kind = kind or ("vectors" if data.ndim == 2 else "images" if data.ndim == 4 else f"arrays{data.ndim - 1}d")
        values = data.detach().to("cpu", torch.float32).contiguous().numpy()
        return cls(kind, int(data.shape[0]), tuple(data.shape[1:]), hashlib.sha256(values.tobytes()).hexdigest(), name)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "n": self.n,
            "shape": list(self.shape),
            "fingerprint": self.fingerprint,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        if not isinstance(d, dict):
            raise SpecError("DataSpec", "data", type(d).__name__, "a JSON object (a DataSpec's to_dict())")
        unknown = sorted(set(d) - {"kind", "n", "shape", "fingerprint", "name"})
        if unknown:
            raise SpecError("DataSpec", unknown[0], d[unknown[0]], "one of kind, n, shape, fingerprint, name")
        return cls(d["kind"], d["n"], tuple(d["shape"]), d["fingerprint"], d.get("name", ""))

    def __repr__(self) -> str:
        what = f" ({self.name})" if self.name else ""
        return f"DataSpec({self.n} {self.kind} of shape {list(self.shape)}{what})"
