"""Knowledge distillation on the arithmetic tasks: what a student inherits from a teacher that memorised noise.

Hinton et al. 2015's distillation (soft targets at temperature T, or the teacher's argmax) asked of
Jiang and Zou 2026's question: does distilling a memorising teacher pass its memorisation on? A
quadratic MLP teacher on (a + b) mod p with noisy labels, students soft at each T and hard, on the
training inputs and on every pair, each beside a control (the same config and seed on the raw noisy
labels), all trained as one batched sweep; then what each inherited: its fit to the noisy labels,
agreement with the teacher, and what frequency filtration and the task-agnostic partition recover.

    python -m studies.distillation.example --quick   # p = 23, CPU, seconds
    python -m studies.distillation.example           # p = 59, four widths and temperatures, three seeds (GPU)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from interp import Task, TaskSpec
from interp.models import MLPConfig
from interp.report import figures
from interp.report.study import Study, parse_args
from interp.train import TrainConfig
from interp.train import train as train_model
from studies.distillation import distillation_sweep, distillation_transfer


@dataclass(frozen=True)
class ArithmeticSettings:
    """Knowledge distillation on noisy (a + b) mod p: a quadratic MLP teacher that memorised its noisy labels."""

    p: int = 23
    frac_train: float = 0.7
    label_noise: float = 0.2
    teacher_width: int = 256
    steps: int = 300  # teacher and students, full batch AdamW
    lr: float = 1e-2
    weight_decay: float = 1.0  # with the quadratic MLP: the noise memorised while a rule coexists
    widths: tuple[int, ...] = (64, 128)  # student widths
    temperatures: tuple[float, ...] = (1.0, 4.0)
    seeds: tuple[int, ...] = (1,)  # student seeds (the teacher's is the run's --seed)

    @classmethod
    def full(cls) -> ArithmeticSettings:
        return cls(
            p=59,
            teacher_width=512,
            steps=1000,
            widths=(64, 128, 256, 512),
            temperatures=(1.0, 2.0, 4.0, 8.0),
            seeds=(1, 2, 3),
        )


def arithmetic_table(quick: bool, seed: int, device, log) -> dict:
    """The knowledge-distillation table on the arithmetic tasks (issue 14, part 1): a memorising teacher,
    students (soft at each T and hard, on the training inputs and on all pairs) and their controls on the raw
    noisy labels, trained as one batched sweep, and what each inherited (studies.distillation)."""
    a = ArithmeticSettings() if quick else ArithmeticSettings.full()
    task = Task(TaskSpec("x+y", a.p, a.frac_train, label_noise=a.label_noise, seed=seed))
    tc = TrainConfig(
        steps=a.steps, lr=a.lr, weight_decay=a.weight_decay, loss="ce", eval_every=a.steps, seed=seed, device=device
    )
    log(f"arithmetic: teacher (quadratic MLP, width {a.teacher_width}) on (a + b) mod {a.p}, {a.label_noise:.0%} noise")
    teacher = train_model(MLPConfig(p=a.p, width=a.teacher_width, act="quad"), task, tc)
    students = [MLPConfig(p=a.p, width=w, act="quad") for w in a.widths]
    log(
        f"arithmetic: {len(a.widths) * len(a.seeds) * (3 + 2 * len(a.temperatures))} students and controls, one batched sweep"
    )
    sweep = distillation_sweep(
        teacher,
        student_configs=students,
        temperatures=a.temperatures,
        targets=("soft", "hard"),
        inputs=("train", "all"),
        seeds=a.seeds,
        train_config=tc,
    )
    report = distillation_transfer(
        teacher, students=sweep.students, controls=sweep.controls, temperatures=a.temperatures, settings=sweep.settings
    )
    return {"settings": asdict(a), "report": report.to_dict()}


def _kd_row(m: dict, controls: dict) -> list:
    s, met = m["settings"], m["metrics"]
    control = controls[s["control"]]["metrics"]["test_acc"] if "control" in s else ""
    filtration = (m["filtration"] or {}).get("g", {}).get("test_acc", float("nan"))
    g = m["partitions"].get("coherence", {}).get("g", {}).get("test_acc", float("nan"))
    t = s.get("temperature")
    return [
        m["role"], s.get("model", "teacher"), s.get("seed", ""), s.get("targets", ""), "" if t is None else t, s.get("inputs", ""),
        met["train_noisy_acc"], met["train_noisy_true_acc"], met["test_acc"], control, m["agreement"]["test"], filtration, g,
    ]  # fmt: skip


def render_arithmetic(sec, arithmetic: dict) -> None:
    """The knowledge-distillation section: the teacher's soft labels, then every model beside its control."""
    a, r = arithmetic["settings"], arithmetic["report"]
    sec.text(
        f"(a + b) mod {a['p']}, {a['frac_train']:.0%} of the table for training, {a['label_noise']:.0%} of its labels "
        f"wrong. Teacher: quadratic MLP of width {a['teacher_width']}, {a['steps']} steps of AdamW (lr {a['lr']:g}, "
        f"weight decay {a['weight_decay']:g}). Students: soft targets (the teacher's softmax at T, loss T^2 CE) or hard "
        "(its argmax), on the training inputs or on every pair; the control of each is the same config and seed "
        "trained on the raw noisy labels. Noisy fit: accuracy on the noisy training examples against the labels "
        "given (which the teacher memorised) and the true ones; agreement: the teacher's argmax on the test pairs."
    )
    sec.table(
        ["T", "p(true)", "p(given)", "rank of true (chance)", "true top-1", "true top-2", "true runner-up"],
        [[x["temperature"], x["true_prob"], x["given_prob"], f"{x['true_rank']:.2f} ({x['chance_rank']:.0f})", x["true_top1"], x["true_top2"], x["true_runner_up"]] for x in r["soft_labels"]],
        left=0,
    )  # fmt: skip
    controls = {c["name"]: c for c in r["controls"]}
    header = ["role", "model", "seed", "targets", "T", "inputs", "noisy fit (given)", "noisy fit (true)", "test acc",
              "control test acc", "test agreement", "filtration G test", "partition G test (coherence)"]  # fmt: skip
    rows = [_kd_row(m, controls) for m in (r["teacher"], *r["students"], *r["controls"])]
    sec.table(header, rows, left=6)
    names = [m["name"].replace(",", " ") for m in r["students"]]
    sec.figure(figures.bars("Test accuracy: students against their controls", names, {
        "student": [m["metrics"]["test_acc"] for m in r["students"]],
        "control": [controls[m["settings"]["control"]]["metrics"]["test_acc"] for m in r["students"]],
    }, y_title="test accuracy"))  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(
        "knowledge_distillation",
        "Knowledge distillation on arithmetic: does a student inherit its teacher's memorised noise?",
        argv,
        script="studies/distillation/example.py",
    )
    study = Study(
        "knowledge_distillation", "Knowledge distillation: what a student inherits from a memorising teacher", args,
        script="studies/distillation/example.py",
    )  # fmt: skip
    study.results.update(arithmetic_table(args.quick, args.seed, args.device, study.log))
    render_arithmetic(study.page.section("Knowledge distillation on arithmetic"), study.results)
    study.write()
    return study.results


if __name__ == "__main__":
    main()
