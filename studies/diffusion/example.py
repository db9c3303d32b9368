"""Jiang and Zou 2026: does a consistency-distilled student inherit its memorising teacher's copies?

On Bonnaire et al.'s Gaussian mixture (docs/papers.md, B.5-B.7): the teacher's copy fraction against
training steps for several n (tau_mem grows with n); a teacher trained past tau_mem, its consistency-
distilled student (one and two steps) and the control (the teacher trained as many steps more), with
copy fraction and Frechet distance; and the random-feature theory of B.4 (tau_mem and tau_gen against
n, the distillation change projected on the two bulks of the feature covariance).

With --images PATH (a local .npy / .npz of images: the machines cannot download data sets) the diffusion
part runs on those images instead (B.8): per training-set size n, a U-Net teacher trained until it copies,
its consistency student (one and two steps) and the control, and the student's copy fraction against CD steps.

    python -m studies.diffusion.example --quick     # B.7: d = 8, n = 64, CPU, about 2 minutes
    python -m studies.diffusion.example             # B.6's full tables: 3 seeds, n up to 128, 10k samples (GPU)
    python -m studies.diffusion.example --images cifar10_train.npy               # B.8: 32x32, n = 500 ... 5k (GPU)
    python -m studies.diffusion.example --images celeba32.npy --grayscale        # B.8 on grayscale images
    python -m studies.diffusion.example --quick --images digits.npy              # CPU toy of the image path

Knowledge distillation on the arithmetic tasks is its own study: studies/distillation/example.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from interp.device import resolve_device
from interp.report import figures
from interp.report.study import Study, parse_args
from probes.samples import copy_fraction, memorization_summary
from studies.diffusion import (
    DenoiserConfig,
    DistillationSchedule,
    UNetConfig,
    at_step,
    consistency_distill,
    continue_training,
    distillation_experiment,
    gaussian_mixture,
    held_out_split,
    load_images,
    sample,
    train_denoiser,
)
from studies.diffusion.random_features import rf_timescales
from studies.diffusion.rf_distillation import rf_distillation


@dataclass(frozen=True)
class Settings:
    dim: int = 8  # the mixture's dimension
    n_train: int = 64  # training points of the distilled teacher
    curve_ns: tuple[int, ...] = (16, 64)  # training-set sizes of the f_mem-vs-steps curves
    curve_steps: tuple[int, ...] = (500, 1000, 2000, 4000)  # where the curves are measured
    teacher_steps: int = 12000
    teacher_lr: float = 1e-3
    distill_steps: int = 2000
    distill_lr: float = 1e-4
    ema: float = 0.95
    n_discretisation: int = 18
    width: int = 128
    depth: int = 3
    n_samples: int = 2000
    n_fresh: int = 4000
    seeds: tuple[int, ...] = (0,)
    rf_ns: tuple[int, ...] = (25, 50, 100)  # random-feature model: training-set sizes
    rf_d: int = 50
    rf_p: int = 200
    rf_steps: int = 4000
    images: str | None = None  # a .npy / .npz of images (--images): the diffusion part runs ImageSettings on it

    @classmethod
    def quick(cls) -> Settings:
        return cls()

    @classmethod
    def full(cls) -> Settings:
        return cls(
            curve_ns=(16, 32, 64, 128),  # B.6's table
            curve_steps=(500, 1000, 2000, 4000, 8000, 16000),
            n_samples=10000,
            n_fresh=10000,
            seeds=(0, 1, 2),
            rf_ns=(100, 200, 400, 800),
            rf_d=200,
            rf_p=1600,
            rf_steps=20000,
        )


def train(s: Settings, seed: int, device, log) -> dict:
    """The teachers of the curves, the distilled teacher, its students and control, the random-feature runs."""
    config = DenoiserConfig(width=s.width, depth=s.depth)
    data = {n: gaussian_mixture(n, s.dim, seed=seed) for n in sorted({*s.curve_ns, s.n_train})}
    teachers = {}
    for n, x in data.items():
        steps = s.teacher_steps if n == s.n_train else max(s.curve_steps)
        log(f"seed {seed}: teacher n = {n}, {steps} steps")
        teachers[n] = train_denoiser(
            x, config, steps=steps, lr=s.teacher_lr, seed=seed, device=device, snapshot_steps=s.curve_steps
        )
    teacher, x = teachers[s.n_train], data[s.n_train]
    log(f"seed {seed}: consistency distillation, {s.distill_steps} steps, and the control")
    student = consistency_distill(
        teacher, x, steps=s.distill_steps, lr=s.distill_lr, n_discretisation=s.n_discretisation, seed=seed, ema=s.ema
    )
    control = continue_training(teacher, x, steps=s.distill_steps, lr=s.teacher_lr, seed=seed)
    return {"data": data, "teachers": teachers, "student": student, "control": control, **train_theory(s, seed, device, log)}  # fmt: skip


def train_theory(s: Settings, seed: int, device, log) -> dict:
    """The random-feature runs of B.4: tau_mem and tau_gen against n, and the distillation projection."""
    log(f"seed {seed}: random-feature model")
    rf = rf_timescales(s.rf_ns, d=s.rf_d, p=s.rf_p, steps=s.rf_steps, seed=seed, device=device)
    rf_cd = rf_distillation(
        d=s.rf_d, p=s.rf_p, n=s.rf_ns[1], teacher_steps=int(1.5 * s.rf_steps), seed=seed, device=device
    )
    return {"rf": rf, "rf_cd": rf_cd}


def measure_theory(trained: dict) -> dict:
    """The random-feature numbers as JSON values."""
    rf, rf_cd = trained["rf"], trained["rf_cd"]
    return {
        "rf_timescales": {"n": rf.n, "tau_gen": rf.tau_gen, "tau_mem": rf.tau_mem},
        "rf_curves": [{"n": r.n, "tau": r.tau, "train_loss": r.train_loss, "test_loss": r.test_loss, "score_error": r.score_error} for r in rf.runs],
        "rf_spectrum": rf_cd.spectrum.to_dict(),
        "rf_projection": rf_cd.projection.to_dict(),
    }  # fmt: skip


def measure(s: Settings, seed: int, trained: dict) -> dict:
    """Copy fraction and Frechet distance of every model's samples (one z for all), plus the random-feature numbers."""
    fresh = gaussian_mixture(s.n_fresh + s.n_samples, s.dim, seed=10_000 + seed)  # reference, then a fresh "sample"
    fresh, fresh_sample = fresh[: s.n_fresh], fresh[s.n_fresh :]
    curves = []
    for n, teacher in trained["teachers"].items():
        for step in (st for st in s.curve_steps if n in s.curve_ns):
            res = copy_fraction(sample(at_step(teacher, step), s.n_samples, seed=seed + 1), trained["data"][n])
            curves.append({"seed": seed, "n": n, "step": step, "f_mem": res.fraction, "stderr": res.stderr})
    x = trained["data"][s.n_train]
    models = {
        "teacher": ("teacher (Heun, 18)", trained["teachers"][s.n_train], None),
        "control": (f"teacher + {s.distill_steps} more steps (control)", trained["control"], None),
        "student_1": ("student, 1 step", trained["student"], 1),
        "student_2": ("student, 2 steps", trained["student"], 2),
    }
    rows = [{"key": "fresh", "model": "fresh data", **_row(memorization_summary(fresh_sample, x, fresh))}]
    for key, (name, model, steps) in models.items():
        samples = sample(model, s.n_samples, steps=steps, seed=seed + 1)
        rows.append({"key": key, "model": name, **_row(memorization_summary(samples, x, fresh))})
    return {"seed": seed, "curves": curves, "distillation": rows, **measure_theory(trained)}


def _row(m) -> dict:
    return {
        "f_mem": m.copy.fraction,
        "stderr": m.copy.stderr,
        "fd": m.frechet.distance,
        "nearest_ratio": m.nearest_ratio.ratio,
        "median_d1_d2": m.copy.median_ratio,
        "distinct_nearest": m.copy.n_distinct_nearest,
    }


@dataclass(frozen=True)
class ImageSettings:
    """The image setup (B.8) on the file of --images: per training-set size n, a U-Net teacher trained until
    it copies, its consistency student and the control. The default is a CPU toy sized for 8x8 digits."""

    ns: tuple[int, ...] = (64, 128)  # training-set sizes: nested subsets of the file's images
    unet: UNetConfig = UNetConfig(channels=8, channel_mult=(1, 2))
    schedule: DistillationSchedule = DistillationSchedule(
        teacher_lr=5e-3, teacher_batch=64, check_every=100, n_check=256, distill_steps=200, distill_lr=4e-4,
        distill_batch=64, distill_check_every=50, ema=0.95, n_samples=500,
    )  # fmt: skip
    teacher_steps_per_point: int = 4  # the teacher's step budget: replaces schedule.max_teacher_steps by this x n
    n_reference: int = 1000  # held-out images: the reference of the Frechet distance
    n_held_out: int = 500  # more held-out images, measured like samples (what generalising looks like)
    grayscale: bool = False  # RGB -> luminance (--grayscale)
    seeds: tuple[int, ...] = (0,)

    @classmethod
    def quick(cls) -> ImageSettings:
        return cls()

    @classmethod
    def full(cls) -> ImageSettings:
        return cls(
            ns=(500, 1000, 2000, 5000),
            unet=UNetConfig(channels=64, channel_mult=(1, 2, 2, 2), blocks_per_level=2),  # 32x32 RGB: 5.2M parameters
            schedule=DistillationSchedule(),  # B.8: Adam 2e-4 batch 256 to f_mem 0.5; CD Adam 4e-4 batch 512, 50k steps
            teacher_steps_per_point=200,  # B.8: budget steps in proportion to n (n = 500: 100k steps)
            n_reference=10000,
            n_held_out=5000,
        )


IMAGE_MODELS = {"held_out": "held-out images", "teacher": "teacher (Heun, 18)", "control": "teacher + CD steps more (control)",
                "student_1": "student, 1 step", "student_2": "student, 2 steps"}  # fmt: skip


def train_images(s: Settings, img: ImageSettings, seed: int, device, log) -> dict:
    """Per n: the teacher trained until it copies, its student, the control, measured (studies.diffusion.experiment)."""
    images = load_images(s.images, grayscale=img.grayscale)  # [N, C, H, W] in [-1, 1]
    subsets, reference, held_out = held_out_split(
        images, img.ns, n_reference=img.n_reference, n_held_out=img.n_held_out, seed=seed
    )
    experiments = {}
    for n, x in subsets.items():
        schedule = replace(img.schedule, max_teacher_steps=img.teacher_steps_per_point * n)
        log(f"seed {seed}: images {tuple(images.shape)}, n = {n}: teacher (at most {schedule.max_teacher_steps} steps)")
        experiments[n] = distillation_experiment(
            x, reference, img.unet, schedule, seed=seed, device=device, held_out=held_out, log=log
        )
    return {"data_shape": tuple(images.shape), "experiments": experiments, **train_theory(s, seed, device, log)}


def measure_images(seed: int, trained: dict) -> dict:
    """Per n: the teacher's and the student's copy-fraction curves and the table of every model's measures."""
    per_n = [
        {
            "n": n, "teacher_budget": e.schedule.max_teacher_steps, "teacher_steps": e.teacher_steps,
            "reached_target": e.reached_target,
            "teacher_curve": e.teacher_curve, "distill_curve": e.distill_curve,
            "distillation": [{"key": k, "model": IMAGE_MODELS[k], **_row(m)} for k, m in e.measures.items()],
        }
        for n, e in trained["experiments"].items()
    ]  # fmt: skip
    return {"seed": seed, "data_shape": trained["data_shape"], "images": per_n, **measure_theory(trained)}


def render(study, s: Settings, img: ImageSettings, runs: list[dict]) -> None:
    """The page: curves, the distillation table (vectors or images), the random-feature figures."""
    if s.images is None:
        render_curves(study.page.section("Teacher copy fraction against training steps"), s, runs[0])
        render_distillation(study.page.section("Teacher, student and control"), s, runs)
        study.page.section("Images (B.8)").text(IMAGES_HOWTO)
    else:
        render_image_curves(study.page.section("Images: teacher and student copy fraction"), s, img, runs[0])
        render_image_distillation(study.page.section("Images: teacher, student and control per n"), img, runs)
    render_random_features(study.page.section("Random-feature theory (Bonnaire et al.)"), s, runs[0])


def render_curves(sec, s: Settings, run: dict) -> None:
    sec.text(
        f"EDM teachers (MLP {s.width} x {s.depth}) on the d = {s.dim} Gaussian mixture, Heun 18 levels, "
        f"{s.n_samples} samples, seed {run['seed']}. tau_mem grows with n."
    )
    f_mem = {(c["n"], c["step"]): c["f_mem"] for c in run["curves"]}
    series = {f"n = {n}": [f_mem[n, st] for st in s.curve_steps] for n in s.curve_ns}
    sec.figure(
        figures.lines(
            "f_mem against teacher training steps", s.curve_steps, series, y_title="copy fraction", log_x=True
        )
    )
    sec.table(["n", *[f"{st} steps" for st in s.curve_steps]], [[n, *series[f"n = {n}"]] for n in s.curve_ns], left=0)


def render_distillation(sec, s: Settings, runs: list[dict]) -> None:
    sec.text(
        f"n = {s.n_train}: teacher {s.teacher_steps} steps; student: consistency distillation {s.distill_steps} steps "
        f"(N = {s.n_discretisation}, Heun teacher step, squared l2, EMA {s.ema}, initialised from the teacher); control: "
        f"the teacher trained {s.distill_steps} steps more. FD: Frechet distance of Gaussian fits to fresh data."
    )
    keys = ["f_mem", "stderr", "fd", "nearest_ratio", "median_d1_d2", "distinct_nearest"]
    header = ["model", "seed", "f_mem", "stderr", "FD", "median d1 / fresh", "median d1/d2", "distinct nearest"]
    sec.table(header, [[r["model"], run["seed"], *[r[k] for k in keys]] for run in runs for r in run["distillation"]])
    rows = runs[0]["distillation"]
    series = {"f_mem": [r["f_mem"] for r in rows], "FD": [r["fd"] for r in rows]}
    sec.figure(figures.bars("Copy fraction and Frechet distance", [r["model"] for r in rows], series))


IMAGES_HOWTO = (
    "The same study on images: python -m studies.diffusion.example --images PATH [--grayscale] reads a local .npy / .npz "
    "of images (uint8 [N, H, W], [N, H, W, C] or [N, C, H, W], e.g. CIFAR-10 or CelebA at 32x32; nothing is "
    "downloaded) and runs B.8 on a GPU: per n in {500, 1k, 2k, 5k} a U-Net teacher trained until f_mem >= 0.5, "
    "its consistency student (1 and 2 steps), the control, and f_mem against CD steps. With --quick it is a CPU toy "
    "(two small n, a few hundred steps) for small images such as sklearn's 8x8 digits saved with numpy.save."
)


def render_image_curves(sec, s: Settings, img: ImageSettings, run: dict) -> None:
    sch, u = img.schedule, img.unet
    sec.text(
        f"{s.images}: {run['data_shape'][0]} images {tuple(run['data_shape'][1:])} scaled to [-1, 1]"
        f"{', grayscale' if img.grayscale else ''}; training sets: nested random subsets, seed {run['seed']}. Teachers: "
        f"U-Net (channels {u.channels}, levels {u.channel_mult}, {u.blocks_per_level} block(s) per level, no "
        f"attention), EDM loss, Adam {sch.teacher_lr:g}, batch {sch.teacher_batch}, trained in rounds of "
        f"{sch.check_every} steps until f_mem >= {sch.target_f_mem} on {sch.n_check} Heun-18 samples, or "
        f"{img.teacher_steps_per_point} x n steps. Then the one-step student's f_mem against CD steps."
    )
    teacher = {f"n = {r['n']}": r["teacher_curve"] for r in run["images"]}
    fig = figures.figure("Teacher f_mem against training steps", "teacher step", "copy fraction")
    for name, curve in teacher.items():
        fig.add_scatter(x=[c["step"] for c in curve], y=[c["f_mem"] for c in curve], mode="lines+markers", name=name)
    sec.figure(fig)
    steps = [c["step"] for c in run["images"][0]["distill_curve"]]
    student = {f"n = {r['n']}": [c["f_mem"] for c in r["distill_curve"]] for r in run["images"]}
    sec.figure(figures.lines("Student f_mem (1 step) against CD steps", steps, student, x_title="CD step", y_title="copy fraction"))  # fmt: skip
    rows = [[r["n"], r["teacher_steps"], "yes" if r["reached_target"] else "no", r["teacher_curve"][-1]["f_mem"]] for r in run["images"]]  # fmt: skip
    sec.table(["n", "teacher steps", f"reached f_mem {sch.target_f_mem}", "teacher f_mem (check)"], rows, left=0)


def render_image_distillation(sec, img: ImageSettings, runs: list[dict]) -> None:
    sch = img.schedule
    sec.text(
        f"Student: consistency distillation {sch.distill_steps} steps (N = {sch.n_discretisation}, Heun teacher step, "
        f"squared l2, {'EMA ' + format(sch.ema, 'g') if sch.ema else 'stop-gradient'} target, Adam {sch.distill_lr:g}, "
        f"batch {sch.distill_batch}, initialised from the teacher); control: the teacher trained {sch.distill_steps} "
        f"steps more. {sch.n_samples} samples per model, one z for all. FD: Frechet distance between Gaussian fits of "
        f"the flattened pixels of the samples and of {img.n_reference} held-out images. It is not FID (no Inception "
        "features): its values are not comparable with published FIDs."
    )
    keys = ["f_mem", "stderr", "fd", "nearest_ratio", "median_d1_d2", "distinct_nearest"]
    header = ["n", "model", "seed", "f_mem", "stderr", "FD (pixels)", "median d1 / held-out", "median d1/d2", "distinct nearest"]  # fmt: skip
    rows = [[e["n"], r["model"], run["seed"], *[r[k] for k in keys]] for run in runs for e in run["images"] for r in e["distillation"]]  # fmt: skip
    sec.table(header, rows, left=2)
    per_n = runs[0]["images"]
    models = [r["key"] for r in per_n[0]["distillation"]]
    for measure, title in (("f_mem", "Copy fraction"), ("fd", "Frechet distance in pixel space (not FID)")):
        series = {f"n = {e['n']}": [r[measure] for r in e["distillation"]] for e in per_n}
        sec.figure(figures.bars(f"{title} per model and n", [IMAGE_MODELS[k] for k in models], series))


def render_random_features(sec, s: Settings, run: dict) -> None:
    rf, spec, proj = run["rf_timescales"], run["rf_spectrum"], run["rf_projection"]
    sec.text(
        f"Score model A tanh(W x / sqrt(d)), d = {s.rf_d}, p = {s.rf_p}, t = 0.01, full-batch GD. tau_gen: score "
        "error within 10% of its best; tau_mem: test - train loss above 0.1."
    )
    sec.table(["n", "tau_gen", "tau_mem"], [list(row) for row in zip(rf["n"], rf["tau_gen"], rf["tau_mem"])], left=0)
    gaps = {f"n = {c['n']}": [b - a for a, b in zip(c["train_loss"], c["test_loss"])] for c in run["rf_curves"]}
    fig = figures.figure("Test - train loss against training time", "tau", "test - train loss")
    for (name, gap), c in zip(gaps.items(), run["rf_curves"]):
        fig.add_scatter(x=c["tau"], y=gap, mode="lines", name=name)
    fig.update_xaxes(type="log")
    sec.figure(fig)
    ranks = list(range(1, len(spec["eigenvalues"]) + 1))
    title = f"Feature covariance spectrum (n = {s.rf_ns[1]}): large bulk = first {spec['split']}"
    sec.figure(figures.lines(title, ranks, {"eigenvalue": spec["eigenvalues"]}, x_title="rank", log_y=True))
    verdict = (
        "so it is here"
        if proj["small_bulk_damped_more"] and proj["kept_large"] > 0.9
        else "this proxy does not reproduce that"
    )
    sec.text(
        f"Distillation inside the model (our two-time consistency proxy, see studies/diffusion/rf_distillation.py): the "
        f"student keeps {proj['kept_large']:.2f} of the teacher's large-bulk component and {proj['kept_small']:.2f} of "
        f"its small-bulk one; {proj['change_share_small']:.0%} of the change lies in the small bulk. B.4 predicts the "
        f"small bulk damped and the large kept; {verdict}."
    )
    bulks = {
        "teacher": [proj["teacher_large"], proj["teacher_small"]],
        "student": [proj["student_large"], proj["student_small"]],
    }
    sec.figure(
        figures.bars(
            "Teacher and student readout on the two bulks (Frobenius norm)", ["large bulk", "small bulk"], bulks
        )
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(
        "distillation",
        "Consistency distillation and memorisation (Jiang and Zou; Bonnaire et al.).",
        argv,
        add_options=image_options,
        script="studies/diffusion/example.py",
    )
    s = replace(Settings.quick() if args.quick else Settings.full(), images=args.images)
    img = replace(ImageSettings.quick() if args.quick else ImageSettings.full(), grayscale=args.grayscale)
    device = args.device  # "auto": a GPU when there is one
    study = Study(
        "distillation", "Distillation and memorisation: does a student inherit its teacher's copies?", args,
        script="studies/diffusion/example.py",
    )  # fmt: skip
    study.results["settings"] = asdict(s)
    if s.images is not None:
        study.results["image_settings"] = asdict(img)
    threads = torch.get_num_threads()
    if resolve_device(device).type == "cpu":
        torch.set_num_threads(1)  # tiny models: OpenMP hand-offs cost more than they give (10x on a busy 2-core box)
    try:
        if s.images is None:
            runs = [measure(s, args.seed + k, train(s, args.seed + k, device, study.log)) for k in s.seeds]
        else:
            runs = [measure_images(args.seed + k, train_images(s, img, args.seed + k, device, study.log)) for k in img.seeds]  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    study.results["runs"] = runs
    render(study, s, img, runs)
    study.write()
    return study.results


def image_options(parser) -> None:
    """--images PATH and --grayscale: the image setup of B.8."""
    parser.add_argument(
        "--images",
        default=None,
        metavar="PATH",
        help="a local .npy / .npz of images ([N, H, W], [N, H, W, C] or [N, C, H, W]; uint8 or floats): run the "
        "diffusion part on them (B.8: U-Net teachers, n = 500 ... 5k; with --quick a CPU toy)",
    )
    parser.add_argument("--grayscale", action="store_true", help="with --images: turn RGB images into grayscale")


if __name__ == "__main__":
    main()
