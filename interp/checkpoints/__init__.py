"""Storage: safetensors weights plus JSON specs, atomic writes, safe loading, importers.

    from interp.checkpoints import load, load_run, save, import_progress_measures
    ckpt = load("runs/a")          # a run directory (its last checkpoint), a .safetensors file or "zoo:NAME"
    run = load_run("runs/a")       # every checkpoint of a run, loaded lazily

The modules, bottom to top: `atomic` (atomic writes), `format` (the on-disk format), `catalog` (where
the zoo's entries live), `run` (`Checkpoint`, `Run`), `importers` (foreign layouts, read without
unpickling code), `loading` (`load`, `load_run`), `subject` (what every analysis accepts).
"""

from interp.checkpoints.atomic import atomic_write_bytes, atomic_write_json
from interp.checkpoints.format import (
    CHECKPOINT_DIR,
    FORMAT,
    FORMAT_VERSION,
    RUN_FILE,
    checkpoint_path,
    library_versions,
    load_tensors,
    run_steps,
    save,
    save_tensors,
    save_weights,
    write_run_json,
)
from interp.checkpoints.importers.progress_measures import (
    PROGRESS_MEASURES_KEYS,
    HookedTransformerConfigRecord,
    import_progress_measures,
)
from interp.checkpoints.loading import load, load_run, load_weight_file
from interp.checkpoints.run import Checkpoint, Run

__all__ = [
    "CHECKPOINT_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "RUN_FILE",
    "Checkpoint",
    "HookedTransformerConfigRecord",
    "PROGRESS_MEASURES_KEYS",
    "Run",
    "atomic_write_bytes",
    "atomic_write_json",
    "checkpoint_path",
    "import_progress_measures",
    "library_versions",
    "load",
    "load_run",
    "load_tensors",
    "load_weight_file",
    "run_steps",
    "save",
    "save_tensors",
    "save_weights",
    "write_run_json",
]
