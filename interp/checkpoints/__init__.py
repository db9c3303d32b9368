"""Storage: safetensors weights plus JSON specs, atomic writes, safe loading, importers.

    from interp.checkpoints import load, load_run, save, save_pretrained, import_progress_measures
    ckpt = load("runs/a")          # a run directory (its last checkpoint), a .safetensors file or "zoo:NAME"
    run = load_run("runs/a")       # every checkpoint of a run, loaded lazily
    ckpt = load("save/model_p99zdpze5l.pt")  # a foreign checkpoint, its layout sniffed (or layout=...)

The modules, bottom to top: `atomic` (atomic writes, from interp.files), `format` (the on-disk format), `catalog` (where
the zoo's entries live), `run` (`Checkpoint`, `Run`), `importers` (foreign layouts, read without
unpickling code), `loading` (`load`, `load_run`), `subject` (what every analysis accepts).
"""

from interp.checkpoints.atomic import atomic_write_bytes, atomic_write_json
from interp.checkpoints.format import (
    CHECKPOINT_DIR,
    FORMAT,
    FORMAT_VERSION,
    RUN_FILE,
    UnknownSplitTask,
    checkpoint_path,
    library_versions,
    load_tensors,
    run_steps,
    save,
    save_pretrained,
    save_tensors,
    save_weights,
    write_run_json,
)
from interp.checkpoints.importers.hooked_transformer import import_hooked_transformer
from interp.checkpoints.importers.progress_measures import (
    PROGRESS_MEASURES_KEYS,
    HookedTransformerConfigRecord,
    import_progress_measures,
)
from interp.checkpoints.importers.zhong import import_zhong
from interp.checkpoints.loading import LAYOUTS, load, load_run, load_weight_file
from interp.checkpoints.run import Checkpoint, Run

__all__ = [
    "CHECKPOINT_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "LAYOUTS",
    "RUN_FILE",
    "Checkpoint",
    "HookedTransformerConfigRecord",
    "PROGRESS_MEASURES_KEYS",
    "Run",
    "UnknownSplitTask",
    "atomic_write_bytes",
    "atomic_write_json",
    "checkpoint_path",
    "import_hooked_transformer",
    "import_progress_measures",
    "import_zhong",
    "library_versions",
    "load",
    "load_run",
    "load_tensors",
    "load_weight_file",
    "run_steps",
    "save",
    "save_pretrained",
    "save_tensors",
    "save_weights",
    "write_run_json",
]
