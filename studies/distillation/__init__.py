"""Knowledge distillation on the arithmetic tasks (Hinton et al. 2015), asked Jiang and Zou 2026's question:
does a student distilled from a teacher that memorised noisy labels inherit the memorisation, or the rule?

    from studies.distillation import distill, distillation_sweep, distillation_transfer
    student = distill("runs/teacher", MLPConfig(p=59, width=128), temperature=4.0, out="runs/student")

Files: teacher.py (a teacher's outputs as the targets a student is fit to: `teacher_targets`,
`distillation_job`, `distill`, `distillation_sweep`, `teacher_record`), transfer.py (what each student
inherited, beside its control: `teacher_soft_labels`, `model_transfer`, `distillation_transfer`),
example.py (the study: `python -m studies.distillation.example --quick`).
"""

from studies.distillation.teacher import (
    DistillationSweep,
    distill,
    distillation_job,
    distillation_sweep,
    student_task,
    teacher_record,
    teacher_targets,
    weights_sha256,
)
from studies.distillation.transfer import (
    DistillationTransfer,
    ModelTransfer,
    SoftLabels,
    distillation_transfer,
    model_transfer,
    teacher_agreement,
    teacher_soft_labels,
)

__all__ = [
    "DistillationSweep",
    "DistillationTransfer",
    "ModelTransfer",
    "SoftLabels",
    "distill",
    "distillation_job",
    "distillation_sweep",
    "distillation_transfer",
    "model_transfer",
    "student_task",
    "teacher_agreement",
    "teacher_record",
    "teacher_soft_labels",
    "teacher_targets",
    "weights_sha256",
]
