"""Diffusion models small enough to see memorisation exactly: EDM denoisers, the Heun sampler,
consistency distillation, and Bonnaire et al.'s random-feature theory (docs/papers.md, B.1-B.8).

    from studies.diffusion import gaussian_mixture, DenoiserConfig, train_denoiser, consistency_distill, sample
    data = gaussian_mixture(64, 8, seed=0)
    teacher = train_denoiser(data, DenoiserConfig(), steps=12000, lr=1e-3, seed=0)
    student = consistency_distill(teacher, data, steps=2000, lr=1e-4, seed=0)
    x_teacher, x_student = sample(teacher, 2000, seed=1), sample(student, 2000, seed=1)

Memorisation of the samples is measured by `probes.samples` (copy fraction, Frechet distance).
Every model here trains through grokscope's one engine (interp.train): `out=` writes a run directory that
`interp.checkpoints.load` reads, `resume=True` continues it, `progress=True` shows a bar.
Files: data.py (data), denoisers.py (networks and configs), edm.py (preconditioning, loss, schedule,
the model families' configs), family.py (the families "edm" and "consistency", also entry points),
objectives.py (what the engine trains: the EDM loss, consistency distillation), training.py,
sampling.py, consistency.py (distillation), experiment.py (teacher until it copies, student, control,
measured: B.8's protocol for one training set), io.py (one model as one file, in the one format),
random_features.py and rf_distillation.py (the theory of B.4).
"""

from studies.diffusion.consistency import consistency_distill, student_from_teacher
from studies.diffusion.data import as_training_data, digits, gaussian_mixture, held_out_split, load_images
from studies.diffusion.denoisers import DenoiserConfig, RandomFeatureConfig, UNetConfig
from studies.diffusion.edm import ConsistencyConfig, ConsistencyModel, EDMConfig, EDMDenoiser, karras_sigmas
from studies.diffusion.experiment import (
    DistillationExperiment,
    DistillationSchedule,
    distillation_experiment,
    train_until_copying,
)
from studies.diffusion.family import CONSISTENCY_FAMILY, EDM_FAMILY
from studies.diffusion.io import load, save
from studies.diffusion.objectives import ConsistencyObjective, ConsistencyTargets, DenoisingObjective, PointData
from studies.diffusion.random_features import feature_spectrum, rf_timescales, train_rf_score
from studies.diffusion.rf_distillation import bulk_projection, rf_distillation
from studies.diffusion.sampling import heun_sample, sample
from studies.diffusion.training import at_step, continue_training, train_denoiser

__all__ = [
    "CONSISTENCY_FAMILY",
    "ConsistencyConfig",
    "ConsistencyModel",
    "ConsistencyObjective",
    "ConsistencyTargets",
    "DenoisingObjective",
    "EDMConfig",
    "EDM_FAMILY",
    "DenoiserConfig",
    "DistillationExperiment",
    "DistillationSchedule",
    "EDMDenoiser",
    "RandomFeatureConfig",
    "UNetConfig",
    "as_training_data",
    "at_step",
    "bulk_projection",
    "consistency_distill",
    "continue_training",
    "digits",
    "distillation_experiment",
    "feature_spectrum",
    "gaussian_mixture",
    "held_out_split",
    "heun_sample",
    "karras_sigmas",
    "load",
    "PointData",
    "load_images",
    "rf_distillation",
    "rf_timescales",
    "sample",
    "save",
    "student_from_teacher",
    "train_denoiser",
    "train_rf_score",
    "train_until_copying",
]
