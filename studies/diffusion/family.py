"""The diffusion study's model families: EDM denoisers ("edm") and consistency models ("consistency").

Registered with interp.models.family when this module is imported, and offered to `load()` through
the `grokscope.model_families` entry points in pyproject.toml, so that `interp.checkpoints.load(run_dir)`
of a denoiser's run directory builds the model without the caller importing the study first.
"""

from __future__ import annotations

from interp.models.family import ModelFamily, register_family
from studies.diffusion.edm import ConsistencyConfig, ConsistencyModel, EDMConfig, EDMDenoiser

EDM_FAMILY = register_family(ModelFamily("edm", EDMConfig, EDMDenoiser))
CONSISTENCY_FAMILY = register_family(ModelFamily("consistency", ConsistencyConfig, ConsistencyModel))
