"""The one JSON encoder and the base of every analysis result.

`to_jsonable` turns what grokscope computes into strict JSON values; every JSON file the package
writes (run.json, checkpoints' metadata, reports, sweep indexes) and every `Result.to_dict()` goes
through it, so they agree: tensors and arrays become (nested) lists, NaN and infinities become
`null`, tuples and sets become lists, dict keys become strings.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import torch


def to_jsonable(x: Any) -> Any:
    """`x` as plain JSON values (dict, list, str, int, float, bool, None).

    NaN, +inf and -inf become None (JSON has no literal for them: `json.dumps` would write `NaN`,
    which strict parsers refuse). Dataclasses become dicts of their fields, leaving out fields declared
    with `repr=False` (models and large tensors kept on a result for convenience); objects with a
    `to_dict()` use it; complex tensors become [..., 2] lists of (real, imag); modules become None.
    """
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            x = torch.view_as_real(x)
        return to_jsonable(x.tolist())
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, torch.nn.Module):
        return None
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if isinstance(x, Result):
            return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x) if f.repr}
        if callable(getattr(x, "to_dict", None)):
            return to_jsonable(x.to_dict())
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x) if f.repr}
    if callable(getattr(x, "to_dict", None)):
        return to_jsonable(x.to_dict())
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "item"):  # other array scalars
        return to_jsonable(x.item())
    return str(x)


def dumps(obj: Any, indent: int | None = 1) -> str:
    """Strict JSON text of `obj` (see `to_jsonable`); never writes NaN or Infinity."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def flat_fields(obj: dict, prefix: str = "") -> dict:
    """Nested dicts flattened to one level, keys joined with dots: {"g": {"test_acc": 1}} -> {"g.test_acc": 1}."""
    out = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(flat_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def as_column(value) -> np.ndarray | None:
    """A tensor, array, list or tuple of scalars as a NumPy array with at least one axis; None otherwise."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        value = np.asarray(value, dtype=object if any(v is None for v in value) else None)
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.size > 0:
        return value
    return None


class Result:
    """Base class of analysis results: subclass it as a frozen dataclass.

    `to_dict()` gives every field (except those declared with `repr=False`) as strict JSON values:
    NaN and infinities are written as `null`. `to_frame()` gives a tidy pandas DataFrame.
    """

    def to_dict(self) -> dict:
        """The result as strict JSON values (NaN and infinities as None)."""
        return to_jsonable(self)

    frame_field: str | None = None  # the array field whose shape gives to_frame's rows (default: the commonest)

    def frame_axes(self, shape: tuple[int, ...]) -> tuple[str, ...]:
        """Names of the index columns of `to_frame` for arrays of `shape` (subclasses name theirs)."""
        return ("index",) if len(shape) == 1 else tuple(f"index{i}" for i in range(len(shape)))

    def to_frame(self):
        """The result as a tidy pandas DataFrame: one row per element of its per-item arrays (the
        shape most of its array fields share, or `frame_field`'s: per neuron, per frequency, per patched cell),
        index columns named by `frame_axes`, one column per such array, and every scalar field (nested
        dicts flattened to "a.b") as a constant column, so results of a sweep concatenate with
        `pandas.concat`. Arrays of other shapes are left out (read them from the result)."""
        try:
            import pandas as pd  # optional extra: only turning results into tables needs it
        except ImportError as exc:
            raise ImportError(
                f"{type(self).__name__}.to_frame() needs pandas, an optional extra: pip install grokscope[pandas]"
            ) from exc
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        arrays = {k: a for k, v in fields.items() if (a := as_column(v)) is not None and a.size > 1}
        scalars = flat_fields({k: v for k, v in to_jsonable(fields).items() if k not in arrays})
        scalars = {k: v for k, v in scalars.items() if not isinstance(v, list) or len(v) == 1}  # [] has no value
        shapes = [a.shape for a in arrays.values()]
        if not shapes:
            return pd.DataFrame([scalars])
        if self.frame_field in arrays:
            shape = arrays[self.frame_field].shape
        else:
            shape = max(set(shapes), key=lambda s: (shapes.count(s), int(np.prod(s))))
        index = np.indices(shape).reshape(len(shape), -1)  # [ndim, n_rows]
        table = dict(zip(self.frame_axes(shape), index))
        table.update({k: a.reshape(-1) for k, a in arrays.items() if a.shape == shape})
        frame = pd.DataFrame(table)
        for k, v in scalars.items():
            frame[k] = v[0] if isinstance(v, list) else v
        return frame
