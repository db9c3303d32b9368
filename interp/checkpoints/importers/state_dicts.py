"""Reading a foreign state dict (a torch file or a safetensors file) without unpickling code, and
the JSON configs saved beside them; shared by the importers of single checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch

from interp.errors import CheckpointError, UnsafeCheckpointError
from interp.files import load_tensors

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def safe_torch_load(path: Path, allowed=(), how_to_convert: str = ""):
    """torch.load(path, weights_only=True) on the CPU, admitting only `allowed` globals besides tensors,
    dicts, lists, numbers and strings: the one reader of torch files. A file that would unpickle
    anything else is refused (UnsafeCheckpointError naming the global, then `how_to_convert`); a
    truncated or corrupted file is a CheckpointError."""
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not looks_like_pickle(path):  # neither torch.save's zip nor a pickle: nothing was about to run
            raise CheckpointError(
                f"{path} is not a file torch.save wrote (neither its zip archive nor a pickle: "
                f"{short_reason(exc)}). It is corrupted or in another format: re-copy it, or pass the file that "
                "holds the weights."
            ) from exc
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        allow = "tensors, dicts, lists, numbers, strings" + (", NumPy arrays" if allowed else "")
        if m:
            why = f"loading it would unpickle {m.group(1)}, which is not on grokscope's allow-list ({allow})"
        else:
            why = f"it is a pickle that torch's weights-only reader will not read ({short_reason(exc)}; grokscope reads {allow})"
        raise UnsafeCheckpointError(
            f"{path} was refused: {why}. Unpickling runs arbitrary code, so grokscope never unpickles code. "
            + how_to_convert
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(
            f"{path} is not a readable torch file ({type(exc).__name__}: {first}). "
            "It may be truncated or corrupted: re-copy it."
        ) from exc


def looks_like_pickle(path: Path) -> bool:
    """Whether the file starts as torch.save's zip archive ("PK") or as a pickle of protocol 2 or later
    (the PROTO opcode, as a legacy torch.save file and any pickled object do)."""
    with open(path, "rb") as f:
        head = f.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def short_reason(exc: Exception) -> str:
    """The line of a torch.load error that says what was wrong ("Unsupported operand 103", ...)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if re.match(r"(Unsupported|invalid|could not|pickle data)", line)]
    return (said or lines or [type(exc).__name__])[0]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """{name: tensor} of a safetensors file, or of a torch file read with weights_only=True (tensors
    saved on a GPU land on the CPU); anything but a flat dict of tensors is refused."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_tensors(path)[0]
    if not path.is_file():
        raise CheckpointError(f"no such file: {path}.")
    data = safe_torch_load(
        path,
        how_to_convert="If it is the progress-measures paper's full_run_data.pth, use load(path, layout='progress_measures').",
    )
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(
            f"{path} holds a {type(data).__name__} that is not a state dict (a dict of tensors). "
            "Pass layout='progress_measures' for the progress-measures paper's run files."
        )
    return dict(data)


def read_json_config(config, what: str) -> dict:
    """A config given as a dict, a path to a JSON file, or an object with `to_dict()` (a
    HookedTransformerConfig) -> dict."""
    if isinstance(config, dict):
        return dict(config)
    if isinstance(config, (str, os.PathLike)):
        f = Path(config)
        if not f.is_file():
            raise CheckpointError(f"no such {what} file: {f}. Pass config= a path to the JSON file or a dict.")
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{f} is not valid JSON ({exc}); the {what} file is damaged.") from exc
        if not isinstance(doc, dict):
            raise CheckpointError(f"{f} holds a JSON {type(doc).__name__}, not the {what} (an object).")
        return doc
    if callable(getattr(config, "to_dict", None)):
        return dict(config.to_dict())
    raise CheckpointError(
        f"config={type(config).__name__} is not a {what}: pass a dict, a path to a JSON file or a config object."
    )
