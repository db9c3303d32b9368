"""`interp-train`'s settings: a TOML sweep file and the flags, crossed into (model, task, train) configs,
or the configs a run directory or sweep folder already holds (to resume or train longer)."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

from interp.checkpoints import RUN_FILE, load_run
from interp.cli.usage import UsageError
from interp.models import MLPConfig, TransformerConfig
from interp.tasks import TaskSpec
from interp.train import TrainConfig

SECTIONS = ("task", "model", "train")
FAMILIES = {"mlp": MLPConfig, "transformer": TransformerConfig}


def fields_of(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def section_fields() -> dict[str, dict[str, dataclasses.Field]]:
    """The settings of each section: TaskSpec's, both model configs' (plus `family`), TrainConfig's."""
    model = {**fields_of(MLPConfig), **fields_of(TransformerConfig)}
    return {"task": fields_of(TaskSpec), "model": model, "train": fields_of(TrainConfig)}


def read_sweep_file(path: Path) -> dict:
    """The TOML document of a sweep file: `out` and the tables [task], [model], [train]; UsageError if not."""
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--sweep {path}: no such file. Expected a TOML sweep file; check the path.") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"--sweep {path}: cannot read it ({exc}). Expected a readable TOML sweep file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"--sweep {path} is not valid TOML ({exc}). Expected tables [task], [model] and [train] "
            'and optionally out = "..." (see `interp-train --help`).'
        ) from None
    unknown = sorted(set(doc) - set(SECTIONS) - {"out"})
    if unknown:
        raise UsageError(
            f"--sweep {path} has unknown top-level key {unknown[0]!r}; expected out, [task], [model] and [train]."
        )
    for s in SECTIONS:
        if s in doc and not isinstance(doc[s], dict):
            raise UsageError(f"--sweep {path}: {s} = {doc[s]!r} is not a table; expected a [{s}] table of settings.")
    known = section_fields()
    for s in SECTIONS:
        foreign = sorted(set(doc.get(s, {})) - set(known[s]) - ({"family"} if s == "model" else set()))
        if foreign:
            raise UsageError(
                f"--sweep {path}: [{s}] has unknown field {foreign[0]!r}; expected one of {sorted(known[s])}."
            )
    if "out" in doc and (not isinstance(doc["out"], str) or not doc["out"].strip()):
        raise UsageError(f"--sweep {path}: out = {doc['out']!r} is not a folder path; expected a non-empty string.")
    for s in SECTIONS:
        for name, value in doc.get(s, {}).items():
            check_value(f"--sweep {path}: [{s}] {name}", name, value)
    return doc


def check_value(where: str, name: str, value) -> None:
    """UsageError for a setting no config can take: an empty list (a sweep over nothing), a table, or a
    list nested deeper than a sweep of pairs (betas). The configs check the values themselves."""
    if isinstance(value, dict):
        raise UsageError(f"{where} = {value!r} is a table; expected a value or a list of values to sweep.")
    if isinstance(value, list):
        if not value:
            raise UsageError(
                f"{where} = [] is an empty list: a sweep over no values trains nothing. Expected a value or a "
                f"non-empty list (e.g. {name} = [0, 1]); leave the field out for its default."
            )
        for v in value:
            if isinstance(v, dict) or (
                isinstance(v, list) and (name != "betas" or any(isinstance(x, (list, dict)) for x in v))
            ):
                raise UsageError(f"{where} = {value!r}: expected a list of plain values (betas: a list of pairs).")


def _is_sweep(name: str, value) -> bool:
    if not isinstance(value, list):
        return False
    if name == "betas":  # a pair is one value; a list of pairs is a sweep
        return bool(value) and isinstance(value[0], (list, tuple))
    return True


def expand(settings: dict[str, dict]) -> list[dict[str, dict]]:
    """All combinations of the swept values: [{"task": {...}, "model": {...}, "train": {...}}, ...]."""
    axes = [(s, k, v if _is_sweep(k, v) else [v]) for s in SECTIONS for k, v in settings.get(s, {}).items()]
    combos = []
    for values in itertools.product(*(vals for _, _, vals in axes)):
        combo = {s: {} for s in SECTIONS}
        for (s, k, _), v in zip(axes, values):
            combo[s][k] = v
        combos.append(combo)
    return combos


def configs(combo: dict[str, dict]):
    """(model config, TaskSpec, TrainConfig) of one combination; SpecError / UsageError naming the field."""
    task_d, model_d, train_d = (dict(combo[s]) for s in SECTIONS)
    spec = TaskSpec(**task_d)
    family = model_d.pop("family", "mlp")
    if family not in FAMILIES:
        raise UsageError(f"--model {family!r} is not a model family; expected one of {sorted(FAMILIES)}.")
    cls = FAMILIES[family]
    allowed = fields_of(cls)
    foreign = sorted(set(model_d) - set(allowed))
    if foreign:
        raise UsageError(f"{foreign} are not settings of the {family} model (it has {sorted(allowed)}).")
    model_d.setdefault("p", spec.p)
    if "betas" in train_d:
        train_d["betas"] = tuple(train_d["betas"])
    return cls(**model_d), spec, TrainConfig(**train_d)


def stored_jobs(out: Path, changes: dict) -> tuple[list, list[Path]]:
    """The jobs a run directory or a sweep folder holds, with `changes` applied to their train configs
    (steps and the evaluation / checkpoint cadence, the device): ([(model, task, train)], run dirs)."""
    if (out / RUN_FILE).exists():
        dirs = [out]
    else:
        dirs = sorted(d for d in out.iterdir() if (d / RUN_FILE).exists()) if out.is_dir() else []
    if not dirs:
        raise UsageError(
            f"--out {out} holds no run to resume (no {RUN_FILE} in it or in its sub-folders). Expected a run "
            "directory or a sweep folder; to start a run there, give its settings (flags or --sweep FILE)."
        )
    jobs = []
    for d in dirs:
        run = load_run(d)  # reads run.json and lists the weight files; loads no weights
        stored = run.train_config.to_dict() if isinstance(run.train_config, TrainConfig) else dict(run.train_config)
        jobs.append((run.model_config, run.task, TrainConfig.from_dict({**stored, **changes})))
    return jobs, dirs
