"""Knowledge distillation on noisy modular addition: the engine's soft-target loss, run directories that
record the teacher, resume, bad input, the transfer measurements against a direct computation, and what
a student inherits from a teacher that memorised its noisy labels."""

from __future__ import annotations

import json
import math

import pytest
import torch

from circuits.filtration import frequency_filtration
from circuits.partition import partition
from interp import Task, TaskSpec, evaluate
from interp.checkpoints import load
from interp.errors import CheckpointError, ShapeError, SpecError
from interp.metrics import all_logits
from interp.models import MLPConfig, TransformerConfig
from interp.report.html import Page
from interp.train import TrainConfig, train, train_many
from interp.train.engine import Job, group_key, per_model_loss
from interp.train.targets import Targets
from studies.distillation import (
    distill,
    distillation_job,
    distillation_sweep,
    distillation_transfer,
    example,
    teacher_agreement,
    teacher_record,
    teacher_soft_labels,
    weights_sha256,
)

P = 23


def noisy_task(seed: int = 0) -> Task:
    return Task(TaskSpec(op="x+y", p=P, frac_train=0.7, label_noise=0.2, seed=seed))


def teacher_config(seed: int = 0) -> TrainConfig:
    # weight decay 1 on a quadratic MLP: the noisy labels are memorised while a rule coexists (test ~0.2-0.3)
    return TrainConfig(steps=300, lr=1e-2, weight_decay=1.0, loss="ce", eval_every=100, seed=seed, device="cpu")


def train_teacher(seed: int = 0):
    return train(MLPConfig(p=P, width=256, act="quad"), noisy_task(seed), teacher_config(seed))


@pytest.fixture(scope="module")
def teacher():
    return train_teacher(0)


def student_config(width: int = 64) -> MLPConfig:
    return MLPConfig(p=P, width=width, act="quad")


def test_soft_loss_is_t_squared_cross_entropy_against_the_teachers_softmax():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=gen, dtype=torch.float64, requires_grad=True)  # [M, B, p]
    teacher = torch.randn(2, 5, 7, generator=gen, dtype=torch.float64)
    temperature = torch.tensor([1.0, 3.0], dtype=torch.float64)
    probs = (teacher / temperature.view(2, 1, 1)).softmax(-1)
    loss = per_model_loss(logits, probs.argmax(-1), "ce", torch.float64, probs, temperature)  # [M]
    for m, t in enumerate((1.0, 3.0)):
        log_student = (logits[m] / t).log_softmax(-1)
        kl = (probs[m] * (probs[m].log() - log_student)).sum(-1).mean()
        entropy = -(probs[m] * probs[m].log()).sum(-1).mean()
        assert loss[m].item() == pytest.approx(t * t * (kl + entropy).item(), rel=1e-12)
    # Hinton et al.: the gradient on the logits is T (softmax(z / T) - q) / B, so T^2 keeps its scale
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    expected = temperature.view(2, 1, 1) * ((logits / temperature.view(2, 1, 1)).softmax(-1) - probs) / 5
    assert torch.allclose(grad, expected, atol=1e-12)


def test_hard_targets_of_a_teacher_that_fits_its_labels_train_exactly_like_the_control(teacher):
    # on the training inputs the teacher's argmax is the given (noisy) label, so the student sees the
    # control's data: same seed, same weights, same history, bit for bit
    assert teacher.final["train_acc"] == 1.0
    cfg = TrainConfig(steps=60, lr=1e-2, weight_decay=1.0, loss="mse", eval_every=20, seed=3, device="cpu")
    control = train(student_config(), teacher.task, cfg)
    student = distill(teacher, student_config(), targets="hard", inputs="train", train_config=cfg)
    assert student.history == control.history
    assert all(torch.equal(a, b) for a, b in zip(student.model.parameters(), control.model.parameters()))


def test_a_temperature_sweep_is_one_batched_run_that_matches_separate_runs(teacher):
    cfg = TrainConfig(steps=40, lr=1e-2, eval_every=20, seed=1, device="cpu")
    jobs = [distillation_job(teacher, student_config(), temperature=t, train_config=cfg) for t in (1.0, 4.0)]
    keys = {group_key(Job(i, *job[:3], targets=job[3]), torch.device("cpu")) for i, job in enumerate(jobs)}
    assert len(keys) == 1  # one stacked computation, a temperature per model
    batched = train_many(jobs)
    for t, run in zip((1.0, 4.0), batched):
        alone = distill(teacher, student_config(), temperature=t, train_config=cfg)
        for a, b in zip(alone.history, run.history):
            assert a.keys() == b.keys()
            assert all(math.isclose(a[k], b[k], rel_tol=1e-5, abs_tol=1e-6) for k in a), (t, a["step"])
    assert batched[0].history[-1] != batched[1].history[-1]  # the temperature matters


def test_distilled_run_directory_records_the_teacher_and_reloads(tmp_path, teacher):
    teacher_dir = tmp_path / "teacher"
    train(teacher.model_config, teacher.task, teacher.train_config, out=teacher_dir)
    cfg = TrainConfig(steps=40, lr=1e-2, eval_every=20, seed=1, device="cpu")
    run = distill(
        str(teacher_dir), student_config(), temperature=2.0, inputs="all", train_config=cfg, out=tmp_path / "s"
    )
    record = teacher_record(tmp_path / "s")
    assert record["teacher_path"] == str(teacher_dir) and record["teacher_step"] == 300
    assert record["teacher_sha256"] == weights_sha256(teacher.model)  # the same weights, trained again
    assert (record["temperature"], record["targets"], record["inputs"], record["n_examples"]) == (
        2.0,
        "soft",
        "all",
        P * P,
    )
    assert record["teacher_task_spec"] == teacher.task.spec.to_dict()
    student = load(tmp_path / "s")
    assert torch.equal(all_logits(student.model, student.task), all_logits(run.model, run.task))
    assert json.loads((tmp_path / "s" / "run.json").read_text())["status"] == "complete"
    assert teacher_record(teacher_dir) is None  # an ordinary run records no teacher


class Interrupt(Exception):
    pass


def test_resumed_distillation_is_bit_identical_and_refuses_other_settings(tmp_path, teacher):
    cfg = TrainConfig(
        steps=40, lr=1e-2, eval_every=10, batch_size=64, seed=2, device="cpu"
    )  # minibatches of soft targets

    def stop_at_20(index, entry):
        if entry["step"] == 20:
            raise Interrupt

    full = distill(teacher, student_config(), temperature=3.0, train_config=cfg, out=tmp_path / "full")
    with pytest.raises(Interrupt):
        distill(
            teacher,
            student_config(),
            temperature=3.0,
            train_config=cfg,
            out=tmp_path / "cut",
            callback=stop_at_20,
            state_every_s=0,
        )
    with pytest.raises(CheckpointError, match="other targets"):
        distill(teacher, student_config(), temperature=2.0, train_config=cfg, out=tmp_path / "cut", resume=True)
    with pytest.raises(CheckpointError, match="other targets"):  # the raw labels are not this run's targets either
        train(student_config(), teacher.task, cfg, out=tmp_path / "cut", resume=True)
    resumed = distill(teacher, student_config(), temperature=3.0, train_config=cfg, out=tmp_path / "cut", resume=True)
    assert resumed.history == full.history
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), full.model.parameters()))
    assert teacher_record(tmp_path / "cut") == teacher_record(tmp_path / "full")


def test_distillation_refuses_bad_input(teacher):
    other_p = Task(TaskSpec(op="x+y", p=29, frac_train=0.7, label_noise=0.2))
    with pytest.raises(ShapeError, match="p=23.*p=29"):
        distill(teacher, MLPConfig(p=29, width=32), other_p)
    other_op = Task(TaskSpec(op="x-y", p=P, frac_train=0.7, label_noise=0.2))
    with pytest.raises(SpecError, match="'x-y'.*'x\\+y'"):
        distill(teacher, student_config(), other_op)
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(SpecError, match="temperature"):
            distill(teacher, student_config(), temperature=bad)
    with pytest.raises(SpecError, match="targets='logits'.*'soft', 'hard'"):
        distill(teacher, student_config(), targets="logits")
    with pytest.raises(SpecError, match="inputs='test'.*'train', 'all'"):
        distill(teacher, student_config(), inputs="test")
    with pytest.raises(SpecError, match="loss='mse'.*targets='hard'"):
        distill(teacher, student_config(), train_config=TrainConfig(loss="mse"))
    with pytest.raises(SpecError, match="temperatures / seeds.*distinct values"):
        distillation_sweep(teacher, student_configs=[student_config()], temperatures=(2.0, 2.0))
    with pytest.raises(SpecError, match="task=None.*pass task="):
        distill(teacher.model, student_config())  # a bare model has no task to distil on
    with pytest.raises(ShapeError, match="probs \\[370, 22\\].*\\[n, 23\\]"):
        job = distillation_job(teacher, student_config(), train_config=TrainConfig(steps=1, device="cpu"))
        bad = Targets(job[3].inputs, job[3].labels, job[3].probs[:, :-1], 1.0)
        train_many([(*job[:3], bad)])
    with pytest.raises(SpecError, match="Targets.labels=.*values in \\[1, 23\\].*\\[0, 22\\]"):
        train_many([(*job[:3], Targets(job[3].inputs, job[3].labels + 1, None, 1.0))])


def test_transfer_report_matches_a_direct_computation(tmp_path, teacher):
    task = teacher.task
    cfg = TrainConfig(steps=150, lr=1e-2, weight_decay=1.0, loss="ce", eval_every=50, device="cpu")
    sweep = distillation_sweep(
        teacher,
        student_configs=[student_config()],
        temperatures=(4.0,),
        inputs=("all",),
        seeds=(1,),
        train_config=cfg,
        out=tmp_path,
    )
    assert list(sweep.students) == ["targets=soft,T=4,inputs=all,mlp,width=64,seed=1"]
    assert list(sweep.controls) == ["targets=labels,mlp,width=64,seed=1"]
    report = distillation_transfer(
        teacher, students=sweep.students, controls=sweep.controls, temperatures=(4.0,), settings=sweep.settings
    )
    json.loads(json.dumps(report.to_dict(), allow_nan=False))  # strict JSON
    (name, run), measured = next(iter(sweep.students.items())), report.students[0]
    assert measured.name == name and measured.settings["control"] == report.controls[0].name
    assert teacher_record(tmp_path / name)["temperature"] == 4.0

    # the student's fit to the teacher's noisy labels (given and true) and its test accuracy
    direct = evaluate(run.model, task)
    assert measured.metrics == direct
    pred = all_logits(run.model, task).argmax(-1)
    noisy_idx = task.train_idx[task.noisy_mask]
    assert (
        measured.metrics["train_noisy_acc"]
        == (pred[noisy_idx] == task.train_labels[task.noisy_mask]).double().mean().item()
    )
    assert (
        measured.metrics["train_noisy_true_acc"] == (pred[noisy_idx] == task.labels[noisy_idx]).double().mean().item()
    )
    teacher_pred = all_logits(teacher.model, task).argmax(-1)
    assert measured.agreement["test"] == (pred == teacher_pred)[task.test_idx].double().mean().item()
    assert measured.agreement["all"] == (pred == teacher_pred).double().mean().item()
    # frequency filtration and the partitions, as the probes and circuits report them on the student
    assert measured.filtration == frequency_filtration(run.model, task).metrics
    assert measured.partitions["coherence"]["g"] == partition(run.model, task, scores="coherence").metrics["g"]

    # the teacher's soft outputs on the noisy examples, by hand: softmax at T, ranks by sorting
    soft = report.soft_labels[0]
    z = all_logits(teacher.model, task).double()[noisy_idx]  # [n_noisy, p]
    true = task.labels[noisy_idx]
    q = torch.softmax(z / 4.0, dim=-1)
    assert soft.true_prob == pytest.approx(q[torch.arange(len(true)), true].mean().item(), rel=1e-12)
    order = z.argsort(-1, descending=True)
    rank = (order == true[:, None]).nonzero()[:, 1] + 1  # no ties in float logits
    assert soft.true_rank == pytest.approx(rank.double().mean().item(), rel=1e-12)
    assert soft.true_top2 == pytest.approx((rank <= 2).double().mean().item())
    assert sum(soft.rank_counts) == soft.n_noisy == int(task.noisy_mask.sum())
    assert soft.chance_rank == (P + 1) / 2


def test_a_transformer_student_distils_from_an_mlp_teacher(teacher):
    student = TransformerConfig(p=P, d_model=32, n_heads=2, d_head=16, d_mlp=64)
    cfg = TrainConfig(steps=30, lr=3e-3, eval_every=30, seed=0, device="cpu")
    run = distill(teacher, student, temperature=2.0, inputs="all", train_config=cfg)
    direct = evaluate(run.model, teacher.task)
    assert all(run.final[k] == pytest.approx(v, rel=1e-6, abs=1e-9) for k, v in direct.items())
    report = distillation_transfer(teacher, students={"transformer": run}, scores=("strength",))
    assert report.students[0].metrics == direct and report.students[0].filtration is not None


def test_a_teacher_with_no_noisy_labels_has_no_soft_labels_to_report():
    clean = Task(TaskSpec(op="x+y", p=P, frac_train=0.7))
    model = train(student_config(16), clean, TrainConfig(steps=1, device="cpu")).model
    with pytest.raises(SpecError, match="noisy training labels"):
        teacher_soft_labels(model, clean)


@pytest.mark.slow
def test_what_students_inherit_from_a_memorising_teacher_over_three_seeds():
    """Measured over three seeds of task and teacher (p = 23, 20% noise, quadratic MLPs, width 64 students):
    every student fits the teacher's noisy labels as fully as the teacher, even soft targets at T = 4 on all
    inputs; soft targets at T = 4 on the training inputs raise test accuracy over the control; and the
    teacher's outputs on the noisy examples rank the true class well above chance, though never first."""
    cfg = TrainConfig(steps=300, lr=1e-2, weight_decay=1.0, loss="ce", eval_every=100, device="cpu")
    for seed in (0, 1, 2):
        teacher = train_teacher(seed)
        sweep = distillation_sweep(
            teacher,
            student_configs=[student_config()],
            temperatures=(4.0,),
            inputs=("train", "all"),
            seeds=(seed + 1,),
            train_config=cfg,
        )
        runs = {name.split(",mlp")[0]: run for name, run in {**sweep.students, **sweep.controls}.items()}
        final = {kind: run.final for kind, run in runs.items()}
        assert teacher.final["train_noisy_acc"] == 1.0
        for kind in ("targets=soft,T=4,inputs=all", "targets=soft,T=4,inputs=train", "targets=labels"):
            assert final[kind]["train_noisy_acc"] == 1.0, (seed, kind)
            assert final[kind]["train_noisy_true_acc"] == 0.0, (seed, kind)
        gain = final["targets=soft,T=4,inputs=train"]["test_acc"] - final["targets=labels"]["test_acc"]
        assert gain >= 0.1, (seed, gain)
        # trained on every pair, the student copies the teacher's test predictions; the control does not
        copied = teacher_agreement(runs["targets=soft,T=4,inputs=all"].model, teacher.task, teacher=teacher.model)[
            "test"
        ]
        own = teacher_agreement(runs["targets=labels"].model, teacher.task, teacher=teacher.model)["test"]
        assert copied >= own + 0.3, (seed, copied, own)
        soft = teacher_soft_labels(teacher, temperature=4.0)
        assert soft.true_top1 == 0.0 and soft.true_rank < 0.75 * soft.chance_rank, (seed, soft.true_rank)
        assert soft.true_top2 >= 0.1, (seed, soft.true_top2)


@pytest.mark.slow
def test_the_examples_arithmetic_table_renders_every_student_beside_its_control(tmp_path):
    table = example.arithmetic_table(True, 0, "cpu", lambda *_: None)
    report, settings = table["report"], table["settings"]
    json.dumps(table, allow_nan=False)
    assert len(report["students"]) == len(settings["widths"]) * (2 + 2 * len(settings["temperatures"]))
    assert len(report["controls"]) == len(settings["widths"])
    page = Page("distillation", "")
    section = page.section("Knowledge distillation on arithmetic")
    example.render_arithmetic(section, table)
    # two tables (a header row each): one row per temperature; the teacher, every student and every control
    n_rows = 2 + len(settings["temperatures"]) + 1 + len(report["students"]) + len(report["controls"])
    assert page.render().count("<tr>") == n_rows and section.n_figures == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_distillation_on_cuda_matches_cpu(teacher):
    cfg = TrainConfig(steps=50, lr=1e-2, eval_every=25, seed=1, device="cpu")
    cpu = distill(teacher, student_config(), temperature=2.0, inputs="all", train_config=cfg)
    gpu = distill(
        teacher, student_config(), temperature=2.0, inputs="all", device="cuda",
        train_config=TrainConfig(steps=50, lr=1e-2, eval_every=25, seed=1, device="cuda"),
    )  # fmt: skip
    assert next(gpu.model.parameters()).device.type == "cuda"
    for a, b in zip(cpu.history, gpu.history):
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=0.02)
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=1e-3, abs_tol=1e-4)
