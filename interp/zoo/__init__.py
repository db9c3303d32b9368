"""The zoo: small checkpoints shipped with grokscope, trained by its own training code.

Every entry is a run directory under `zoo_checkpoints/NAME/` (run.json + checkpoints/) and a record
in `zoo_checkpoints/manifest.json`: the full task, model and train specs, the command that rebuilds
it, its key metrics, the regime it actually reached, and the sha256 of each of its files. The
recipes live in `interp.zoo.recipes` (`zoo.recipes()`); `interp-zoo build NAME` retrains an entry
from its recipe (interp.zoo.build), `interp-zoo --check` verifies the shipped files against the
manifest, `interp-zoo list` shows what there is. Entries are final-step weights only, except the
trajectory entry (`grok-transformer`), which keeps log-spaced and regular checkpoints.

GPU-scale versions of each recipe (p = 113, widths up to 4097, the Nanda et al. transformer with
its full trajectory) are named `NAME-gpu`; they are not shipped: `interp-zoo build --scale gpu NAME`
writes them to the local zoo cache (~/.cache/grokscope/zoo, or $GROKSCOPE_ZOO_CACHE), where
`zoo.load` finds them. Where entries live on disk is interp.checkpoints.catalog's business, so
`load("zoo:NAME")` works everywhere without importing this package.
"""

from __future__ import annotations

from interp.checkpoints import Checkpoint, Run
from interp.checkpoints import load as load_checkpoint
from interp.checkpoints import load_run as load_run_dir
from interp.checkpoints.catalog import cache_dir, info, names, path, read_manifest, shipped_dir
from interp.zoo.build import CheckResult, build, check, prune
from interp.zoo.recipes import Recipe, recipe, recipes

DEFAULT_ENTRY = "mlp-noise50-large"  # interp-report's subject when given no argument

__all__ = [
    "DEFAULT_ENTRY",
    "Recipe",
    "CheckResult",
    "build",
    "cache_dir",
    "check",
    "info",
    "load",
    "load_run",
    "names",
    "path",
    "prune",
    "read_manifest",
    "recipe",
    "recipes",
    "shipped_dir",
]


def load(name: str, device=None, step: int | None = None) -> Checkpoint:
    """Load an entry as a `Checkpoint` (its final step, or `step` for the trajectory entry)."""
    return load_checkpoint(path(name), device=device, step=step)


def load_run(name: str) -> Run:
    """Load an entry as a `Run` (every checkpoint it keeps, lazily)."""
    return load_run_dir(path(name))
