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


class Result:
    """Base class of analysis results: subclass it as a frozen dataclass.

    `to_dict()` gives every field (except those declared with `repr=False`) as strict JSON values:
    NaN and infinities are written as `null`.
    """

    def to_dict(self) -> dict:
        """The result as strict JSON values (NaN and infinities as None)."""
        return to_jsonable(self)
