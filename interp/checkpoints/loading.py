"""Loading checkpoints and runs: `load` (one checkpoint, in any layout grokscope reads) and `load_run`
(every checkpoint of a run, lazily).

Loading never unpickles: safetensors holds only tensors and the specs are JSON; torch files are read
with `weights_only=True`. `zoo:NAME` is resolved to the entry's run directory by
interp.checkpoints.catalog (storage never imports the zoo's code). Layouts (`load(path, layout=...)`,
sniffed from the path and the file when not given):

- "grokscope": a run directory (run.json) or one of its .safetensors weight files;
- "pretrained": a directory written by save_pretrained (config.json + model.safetensors);
- "progress_measures": the progress-measures paper's full_run_data.pth (Nanda et al. 2023);
- "zhong": Zhong et al. 2023's model_RUNID.pt, with config_RUNID.json beside it or `config=`;
- "hooked_transformer": a TransformerLens HookedTransformer state dict with `config=` and `task=`; also
  a folder of model.safetensors + config.json whose config is a HookedTransformerConfig (its required
  fields and no "family") rather than grokscope's.
- "chughtai": Chughtai et al. 2023's run folder (cfg.json + model.pt), or its model.pt.
"""

from __future__ import annotations

import os
from pathlib import Path

from interp.checkpoints import catalog
from interp.checkpoints.format import (
    RUN_FILE,
    UnknownSplitTask,
    existing,
    is_grokscope_meta,
    load_tensors,
    parse_meta,
    read_run_json,
    run_steps,
)
from interp.checkpoints.importers.chughtai import import_chughtai, is_chughtai_dir
from interp.checkpoints.importers.hooked_transformer import (
    REQUIRED_FIELDS,
    import_hooked_transformer,
    is_hooked_transformer_config,
    is_hooked_transformer_state_dict,
)
from interp.checkpoints.importers.progress_measures import import_progress_measures
from interp.checkpoints.importers.state_dicts import TORCH_SUFFIXES, read_json_config, read_state_dict
from interp.checkpoints.importers.zhong import import_zhong, is_zhong_state_dict
from interp.checkpoints.run import Checkpoint, Run, model_from, task_from, train_config_from
from interp.data_spec import DataSpec
from interp.errors import CheckpointError, SpecError, UnsafeCheckpointError
from interp.models import config_from_dict, from_pretrained
from interp.models.pretrained import CONFIG_NAME, EXTRA_KEY, WEIGHTS_NAME, read_pretrained_config
from interp.tasks import Task, TaskSpec

LAYOUTS = ("grokscope", "pretrained", "progress_measures", "zhong", "hooked_transformer", "chughtai")
LEGACY_SUFFIXES = TORCH_SUFFIXES


def stored_task(meta: dict, where) -> Task | DataSpec:
    """The Task of stored specs: {"task_spec", and "train_idx" or "split": "unknown"}; the DataSpec of
    a run on other data ({"task_spec": None, "data": ...})."""
    try:
        if meta.get("data") is not None:
            return DataSpec.from_dict(meta["data"])
        if meta.get("split") == "unknown":
            return UnknownSplitTask(TaskSpec.from_dict(meta["task_spec"]), meta.get("split_source") or "unrecorded")
        return task_from(meta["task_spec"], meta.get("train_idx"))
    except (SpecError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where} has a task spec this grokscope cannot read: {exc}") from exc


def load_weight_file(path: str | os.PathLike, device=None, history: list | None = None) -> Checkpoint:
    """Load one grokscope .safetensors checkpoint on its own."""
    path = existing(path)
    state, meta = load_tensors(path)
    m = parse_meta(meta, path)
    model = model_from(m["model_config"], state, path, device)
    return Checkpoint(
        model=model,
        task=stored_task(m, path),
        model_config=model.cfg,
        train_config=train_config_from(m["train_config"]),
        step=m["step"],
        history=history or [],
        metrics=m["metrics"],
        path=path,
    )


def load_pretrained(directory: str | os.PathLike, device=None) -> Checkpoint:
    """A Checkpoint of a save_pretrained directory; it needs the task that
    `interp.checkpoints.save_pretrained(directory, model, task)` writes into config.json."""
    directory = Path(directory)
    extra = read_pretrained_config(directory).get(EXTRA_KEY) or {}
    if "task_spec" not in extra:
        raise CheckpointError(
            f"{directory / CONFIG_NAME} records no task (it was written by model.save_pretrained). Load the model "
            "with interp.models.from_pretrained(directory) and pass its task to the analyses, or save it with "
            "interp.checkpoints.save_pretrained(directory, model, task)."
        )
    model = from_pretrained(directory, device=device)
    return Checkpoint(
        model=model,
        task=stored_task(extra, directory / CONFIG_NAME),
        model_config=model.cfg,
        train_config=train_config_from(extra.get("train_config")),
        step=int(extra.get("step", 0)),
        path=directory,
    )


def load_run_dir(path: Path, device=None, step: int | None = None) -> Checkpoint:
    """A run directory's checkpoint at `step` (default: the last)."""
    doc = read_run_json(path)
    steps = run_steps(path)
    if not steps:
        raise CheckpointError(f"{path} has a {RUN_FILE} but no checkpoints/step_XXXXXXX.safetensors files yet.")
    step = max(steps) if step is None else step
    if step not in steps:
        raise CheckpointError(f"{path} has no checkpoint at step {step}; it has steps {list(steps)}.")
    return load_weight_file(steps[step], device=device, history=doc.get("history", []))


def pretrained_folder_layout(directory: Path) -> str:
    """The layout of a folder of model.safetensors + config.json: "pretrained" when config.json is
    grokscope's, "hooked_transformer" when it is a HookedTransformerConfig; a CheckpointError naming
    what it is otherwise."""
    doc = read_json_config(directory / CONFIG_NAME, "model config")
    if "family" in doc:
        return "pretrained"
    if is_hooked_transformer_config(doc):
        return "hooked_transformer"
    raise CheckpointError(
        f"{directory / CONFIG_NAME} is not a grokscope model config (no 'family' key) nor a HookedTransformerConfig "
        f"(it lacks {[k for k in REQUIRED_FIELDS if k not in doc]}"
        + (f"; model_type={doc['model_type']!r}" if "model_type" in doc else "")
        + "). grokscope reads its own save_pretrained folders and HookedTransformer state dicts with their "
        "HookedTransformerConfig."
    )


def sniff_layout(path: Path) -> str:
    """The layout of `path` when the path and the file say it unambiguously; a CheckpointError otherwise."""
    if path.is_dir():
        if (path / RUN_FILE).exists():
            return "grokscope"
        if (path / CONFIG_NAME).exists() and (path / WEIGHTS_NAME).exists():
            return pretrained_folder_layout(path)
        if is_chughtai_dir(path):
            return "chughtai"
        raise CheckpointError(
            f"{path} is a folder but not a grokscope run directory (no {RUN_FILE}) nor a save_pretrained directory "
            f"(no {CONFIG_NAME} + {WEIGHTS_NAME}) nor a Chughtai et al. run folder (no cfg.json). Pass the folder "
            "that `train(..., out=...)` or `interp-train` wrote."
        )
    if path.suffix == ".safetensors":
        state, meta = load_tensors(path)
        if is_grokscope_meta(meta):
            return "grokscope"
        if path.name == WEIGHTS_NAME and (path.parent / CONFIG_NAME).exists():
            return pretrained_folder_layout(path.parent)
        if is_hooked_transformer_state_dict(state):
            return "hooked_transformer"
        parse_meta(meta, path)  # raises: a safetensors file, but not a grokscope checkpoint
    if path.suffix in TORCH_SUFFIXES and is_chughtai_dir(path.parent):
        return "chughtai"
    if path.suffix not in TORCH_SUFFIXES:
        raise CheckpointError(
            f"{path}: unknown checkpoint type {path.suffix!r}. grokscope reads run directories, .safetensors files, "
            f"save_pretrained directories and torch files ({', '.join(TORCH_SUFFIXES)}) in the layouts {list(LAYOUTS)}."
        )
    try:
        state = read_state_dict(path)
    except UnsafeCheckpointError:
        return "progress_measures"  # a dict with NumPy arrays and a pickled config: its own allow-list reads it
    except CheckpointError:
        return "progress_measures"  # not a flat state dict; the progress-measures reader says what it is
    if is_zhong_state_dict(state):
        return "zhong"
    if is_hooked_transformer_state_dict(state):
        return "hooked_transformer"
    raise CheckpointError(
        f"{path} holds a state dict grokscope does not recognise (keys {sorted(state)[:6]}...). "
        f"Pass layout= one of {list(LAYOUTS)} if it is one of them."
    )


def load(
    path: str | os.PathLike,
    device=None,
    step: int | None = None,
    *,
    layout: str | None = None,
    config=None,
    task: Task | TaskSpec | None = None,
    op: str | None = None,
) -> Checkpoint:
    """Load a checkpoint in any layout grokscope reads (see the module docstring): a run directory (its
    last checkpoint, or `step`), a .safetensors weight file, `zoo:NAME`, a save_pretrained directory, or
    a foreign torch file. `config`: the foreign model's config (Zhong et al.'s is found beside the file);
    `task`: the task of a HookedTransformer state dict; `op`: the operation, where the config's is not
    recognised (Zhong et al.) or absent (progress measures: default x+y)."""
    path = existing(catalog.resolve(path))
    layout = layout or sniff_layout(path)
    if layout not in LAYOUTS:
        raise SpecError("load", "layout", layout, f"one of {list(LAYOUTS)}, or None to sniff it from the file")
    if layout == "grokscope":
        return load_run_dir(path, device, step) if path.is_dir() else load_weight_file(path, device=device)
    if layout == "pretrained":
        return load_pretrained(path if path.is_dir() else path.parent, device=device)
    if layout == "progress_measures":
        run = import_progress_measures(path, **({"op": op} if op else {}))
        return run.load(run.steps[-1] if step is None else step, device=device)
    if layout == "zhong":
        return import_zhong(path, config, op=op, device=device)
    if layout == "chughtai":
        return import_chughtai(path, device=device)
    return import_hooked_transformer(path, config, task=task, device=device)


def single_checkpoint_run(ckpt: Checkpoint) -> Run:
    """A Run holding one checkpoint (an imported model without a trajectory)."""
    state = {k: v.detach().cpu() for k, v in ckpt.model.state_dict().items()}
    return Run(
        ckpt.task,
        ckpt.model_config,
        ckpt.train_config,
        ckpt.history,
        [ckpt.step],
        lambda step: state,
        ckpt.path,
        "imported",
    )


def load_run(run_dir: str | os.PathLike, *, layout: str | None = None, config=None, task=None, op=None) -> Run:
    """Every checkpoint of a run directory (or `zoo:NAME`), loaded lazily; the progress-measures
    paper's `.pth` file is imported as its trajectory, and other foreign files (see `load`) as a
    one-checkpoint run."""
    path = existing(catalog.resolve(run_dir))
    sniffed_chughtai = layout is None and path.is_dir() and not (path / RUN_FILE).exists() and is_chughtai_dir(path)
    if layout == "chughtai" or sniffed_chughtai:
        return single_checkpoint_run(load(path, layout="chughtai"))
    if path.is_file():
        if path.suffix not in TORCH_SUFFIXES:
            raise CheckpointError(f"{path} is a file; load_run takes a run directory (use load() for one file).")
        if (layout or sniff_layout(path)) == "progress_measures":
            return import_progress_measures(path, **({"op": op} if op else {}))
        return single_checkpoint_run(load(path, layout=layout, config=config, task=task, op=op))
    doc = read_run_json(path)
    steps = run_steps(path)
    task = stored_task(doc, path / RUN_FILE)
    try:
        model_config = config_from_dict(doc["model_config"])
    except (SpecError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path / RUN_FILE} has specs this grokscope cannot read: {exc}") from exc

    def loader(step: int) -> dict:
        state, meta = load_tensors(steps[step])
        parse_meta(meta, steps[step])
        return state

    return Run(
        task,
        model_config,
        train_config_from(doc.get("train_config")),
        doc.get("history", []),
        list(steps),
        loader,
        path=path,
        status=doc.get("status", "unknown"),
    )
