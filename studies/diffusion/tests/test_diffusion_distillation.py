"""Paper B's claim on Bonnaire et al.'s Gaussian mixture (docs/papers.md, B.7): a consistency-distilled student
copies far less than its memorising teacher at the same sample quality, and more training does not do that."""

from __future__ import annotations

import pytest

from probes.samples import copy_fraction, frechet_distance
from studies.diffusion import (
    DenoiserConfig,
    at_step,
    consistency_distill,
    continue_training,
    gaussian_mixture,
    sample,
    train_denoiser,
)

pytestmark = pytest.mark.slow  # trains for tens of seconds (or starts Ray clusters): the slow suite

N_TRAIN, DIM, TEACHER_STEPS, DISTILL_STEPS, N_SAMPLES = 64, 8, 12000, 2000, 2000


@pytest.fixture(scope="module")
def toy():
    """B.7: teacher 12k steps (Adam 1e-3), CD 2k steps (Adam 1e-4, EMA 0.95, N = 18), control 2k more DSM steps."""
    data = gaussian_mixture(N_TRAIN, DIM, seed=0)
    fresh = gaussian_mixture(4000, DIM, seed=10_000)
    teacher = train_denoiser(data, DenoiserConfig(), steps=TEACHER_STEPS, lr=1e-3, seed=0, snapshot_steps=(2000,))
    student = consistency_distill(teacher, data, steps=DISTILL_STEPS, lr=1e-4, seed=0)
    control = continue_training(teacher, data, steps=DISTILL_STEPS, lr=1e-3, seed=0)

    def measure(model):
        x = sample(model, N_SAMPLES, seed=1)  # the same z for every model
        return copy_fraction(x, data).fraction, frechet_distance(x, fresh).distance

    return {
        "data": data,
        "teacher_2k": at_step(teacher, 2000),
        "teacher": measure(teacher),
        "student": measure(student),
        "control": measure(control),
    }


def test_teacher_trained_12k_steps_on_64_points_copies_them(toy):
    f_mem, _ = toy["teacher"]
    assert f_mem > 0.6  # B.6: 0.76-0.77; this implementation: 0.84-0.86 over data seeds 0-2


def test_distilled_student_copies_at_most_a_quarter_as_often_at_the_teachers_quality(toy):
    (f_teacher, fd_teacher), (f_student, fd_student) = toy["teacher"], toy["student"]
    assert f_student <= 0.25 * f_teacher  # B.6: 0.003-0.022 against 0.76
    assert abs(fd_student - fd_teacher) <= 0.2


def test_continuing_the_teachers_training_does_not_lower_its_copy_fraction(toy):
    f_teacher, f_control = toy["teacher"][0], toy["control"][0]
    assert f_control >= f_teacher - 0.05  # the control: the student's drop is not "more training"


def test_copy_fraction_at_a_fixed_step_falls_as_n_grows(toy):
    small = gaussian_mixture(16, DIM, seed=0)
    teacher_16 = train_denoiser(small, DenoiserConfig(), steps=2000, lr=1e-3, seed=0)
    f_16 = copy_fraction(sample(teacher_16, N_SAMPLES, seed=1), small).fraction
    f_64 = copy_fraction(sample(toy["teacher_2k"], N_SAMPLES, seed=1), toy["data"]).fraction
    assert f_16 > f_64 + 0.15  # B.6 at 2k steps: 0.68 (n = 16) against 0.28 (n = 64)
