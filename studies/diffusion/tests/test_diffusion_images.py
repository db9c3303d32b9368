"""Images for the diffusion study: `load_images` reads local .npy / .npz arrays (never unpickling) into
[n, C, H, W] in [-1, 1]; `held_out_split`; the experiment protocol of docs/papers.md, B.8 (teacher until it copies, student
checkpoints); and the example's --images path end to end on sklearn's digits."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.errors import ShapeError, SpecError
from studies.diffusion import (
    DenoiserConfig,
    DistillationSchedule,
    at_step,
    consistency_distill,
    digits,
    distillation_experiment,
    gaussian_mixture,
    held_out_split,
    load_images,
    train_denoiser,
    train_until_copying,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "example.py"


@pytest.fixture
def rgb_uint8():
    """Five 4x6 RGB images, uint8 [N, H, W, C], every pixel value distinct enough to tell the axes apart."""
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)


def saved(tmp_path, array, name="images.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def test_uint8_channels_last_images_become_channels_first_in_minus_one_to_one(tmp_path, rgb_uint8):
    x = load_images(saved(tmp_path, rgb_uint8))
    assert x.dtype == torch.float32 and x.shape == (5, 3, 4, 6)
    expected = torch.from_numpy(rgb_uint8.transpose(0, 3, 1, 2).astype(np.float32)) / 127.5 - 1
    torch.testing.assert_close(x, expected)
    full = np.stack([np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8)])  # [2, H, W]: black, white
    assert load_images(saved(tmp_path, full, "bw.npy")).flatten().tolist() == [-1.0] * 4 + [1.0] * 4


def test_every_layout_and_value_range_of_the_same_images_loads_to_the_same_tensor(tmp_path, rgb_uint8):
    reference = load_images(saved(tmp_path, rgb_uint8))
    unit = rgb_uint8.astype(np.float64) / 255
    variants = {
        "nchw.npy": rgb_uint8.transpose(0, 3, 1, 2),
        "float01.npy": unit.astype(np.float32),
        "float_pm1.npy": (2 * unit - 1).astype(np.float32),
        "float255.npy": rgb_uint8.astype(np.float64),
        "int64.npy": rgb_uint8.astype(np.int64),
    }
    for name, array in variants.items():
        torch.testing.assert_close(load_images(saved(tmp_path, array, name)), reference, msg=name)
    gray = rgb_uint8[..., 0]  # [N, H, W]
    assert load_images(saved(tmp_path, gray, "gray.npy")).shape == (5, 1, 4, 6)


def test_npz_files_load_their_single_array_or_the_named_one(tmp_path, rgb_uint8):
    np.savez(tmp_path / "one.npz", rgb_uint8)
    torch.testing.assert_close(load_images(tmp_path / "one.npz"), load_images(saved(tmp_path, rgb_uint8)))
    np.savez(tmp_path / "two.npz", train=rgb_uint8, labels=np.arange(5))
    assert load_images(tmp_path / "two.npz", key="train").shape == (5, 3, 4, 6)
    with pytest.raises(SpecError, match=r"one of the arrays in two.npz: \['train', 'labels'\]. Pass key="):
        load_images(tmp_path / "two.npz")


def test_a_subset_of_n_is_seeded_and_made_of_the_files_images(tmp_path, rgb_uint8):
    path = saved(tmp_path, rgb_uint8)
    everything = load_images(path)
    first, again, other = load_images(path, n=3, seed=1), load_images(path, n=3, seed=1), load_images(path, n=3, seed=2)
    assert torch.equal(first, again) and not torch.equal(first, other)
    for image in first:
        assert any(torch.equal(image, row) for row in everything)
    with pytest.raises(SpecError, match=r"n=6 .*\[1, 5\]"):
        load_images(path, n=6)


def test_grayscale_is_the_luminance_of_rgb(tmp_path):
    pixels = np.zeros((3, 2, 2, 3), np.uint8)  # [N, H, W, C]: pure red, green and blue images
    for c in range(3):
        pixels[c, :, :, c] = 255
    gray = load_images(saved(tmp_path, pixels), grayscale=True)
    assert gray.shape == (3, 1, 2, 2)
    torch.testing.assert_close(gray[:, 0, 0, 0], torch.tensor([0.299, 0.587, 0.114]) * 2 - 1)


def test_sklearn_digits_saved_as_an_array_load_unchanged(tmp_path):
    x = digits()  # [1797, 1, 8, 8] in [-1, 1]
    torch.testing.assert_close(load_images(saved(tmp_path, x.numpy())), x)
    torch.testing.assert_close(
        load_images(saved(tmp_path, x[:, 0].numpy(), "hw.npy"), n=64, seed=3), digits(64, seed=3)
    )


def test_a_missing_file_or_a_foreign_suffix_is_refused(tmp_path):
    with pytest.raises(SpecError, match="expected an existing .npy or .npz file.*numpy.save"):
        load_images(tmp_path / "cifar10.npy")
    (tmp_path / "images.png").write_bytes(b"\x89PNG")
    with pytest.raises(SpecError, match="expected a .npy or .npz file"):
        load_images(tmp_path / "images.png")


def test_unreadable_files_are_refused_and_pickles_never_loaded(tmp_path):
    (tmp_path / "garbage.npy").write_bytes(b"not an array at all")
    (tmp_path / "truncated.npz").write_bytes(b"PK\x03\x04 truncated")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    for name in ("garbage.npy", "truncated.npz", "objects.npy"):
        with pytest.raises(SpecError, match="numpy reads without unpickling.*numpy said"):
            load_images(tmp_path / name)


def test_arrays_that_are_not_images_are_refused(tmp_path):
    for shape in [(10, 64), (2, 8, 8, 4), (2, 5, 8, 8), (0, 8, 8), (2, 2, 8, 8, 3)]:
        with pytest.raises(ShapeError, match=rf"shape \({shape[0]}, .*expected images \[N, H, W\]"):
            load_images(saved(tmp_path, np.zeros(shape, np.uint8)))
    with pytest.raises(SpecError, match="dtype='bool'"):
        load_images(saved(tmp_path, np.zeros((2, 4, 4), bool)))


def test_nans_and_out_of_range_values_are_refused(tmp_path):
    x = np.zeros((4, 3, 3), np.float32)
    x[2, 1, 1] = np.nan
    with pytest.raises(SpecError, match=r"1 NaN and 0 infinite entries in 1 row\(s\), first rows \[2\]"):
        load_images(saved(tmp_path, x))
    with pytest.raises(SpecError, match=r"\[-3, -3\].*Rescale"):
        load_images(saved(tmp_path, np.full((2, 3, 3), -3.0)))
    with pytest.raises(SpecError, match=r"\[300, 300\].*0\.\.255"):
        load_images(saved(tmp_path, np.full((2, 3, 3), 300, np.int16)))


def test_held_out_split_gives_nested_training_sets_and_disjoint_held_out_sets():
    data = torch.arange(20.0)[:, None]  # [20, 1]: each point is its own index
    subsets, reference, held_out = held_out_split(data, (4, 8), n_reference=6, n_held_out=3, seed=0)
    small, large = set(subsets[4].flatten().tolist()), set(subsets[8].flatten().tolist())
    ref, held = set(reference.flatten().tolist()), set(held_out.flatten().tolist())
    assert len(small) == 4 and small < large and len(ref) == 6 and len(held) == 3
    assert not (large & ref) and not (large & held) and not (ref & held)
    with pytest.raises(SpecError, match=r"max\(ns\) \+ n_reference \(6\) \+ n_held_out \(3\) <= 20"):
        held_out_split(data, (12,), n_reference=6, n_held_out=3)


def test_impossible_schedules_are_refused():
    with pytest.raises(SpecError, match="DistillationSchedule.check_every=0"):
        DistillationSchedule(check_every=0)
    with pytest.raises(SpecError, match="target_f_mem=1.5"):
        DistillationSchedule(target_f_mem=1.5)
    assert DistillationSchedule(distill_steps=12, distill_check_every=5).distill_checkpoints() == (5, 10, 12)


TINY = DistillationSchedule(
    teacher_lr=1e-3, teacher_batch=16, check_every=20, max_teacher_steps=90, n_check=64, target_f_mem=1.0
)


def test_the_teacher_trains_in_rounds_until_its_step_budget_when_it_never_reaches_the_target():
    data = gaussian_mixture(8, 2, seed=0)
    teacher, curve = train_until_copying(data, DenoiserConfig(width=16, depth=1), TINY, seed=0)
    assert [c["step"] for c in curve] == [20, 40, 60, 80, 90] and teacher.step == 90
    assert all(0 <= c["f_mem"] <= 1 for c in curve)


def test_the_teacher_stops_at_the_first_round_that_reaches_the_target():
    data, config = gaussian_mixture(8, 2, seed=0), DenoiserConfig(width=16, depth=1)
    _, unstopped = train_until_copying(data, config, TINY, seed=0)  # target 1.0: runs to its budget
    target = max(c["f_mem"] for c in unstopped)
    first = next(i for i, c in enumerate(unstopped) if c["f_mem"] >= target)
    assert 0 < first < len(unstopped) - 1, "the target must first be reached at a middle round to test stopping"
    teacher, curve = train_until_copying(data, config, replace(TINY, target_f_mem=target), seed=0)
    assert curve == unstopped[: first + 1] and teacher.step == unstopped[first]["step"]


def test_consistency_distillation_keeps_the_weights_of_its_snapshot_steps():
    data = gaussian_mixture(8, 2, seed=0)
    teacher = train_denoiser(data, DenoiserConfig(width=16, depth=1), steps=10, lr=1e-3, seed=0)
    student = consistency_distill(teacher, data, steps=6, lr=1e-3, seed=0, batch_size=8, snapshot_steps=(3, 6))
    assert sorted(student.snapshots) == [3, 6]
    last, middle = at_step(student, 6), at_step(student, 3)
    for name, value in student.state_dict().items():
        assert torch.equal(last.state_dict()[name], value)
    assert any(not torch.equal(middle.state_dict()[k], v) for k, v in student.state_dict().items())


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_distillation_experiment_measures_teacher_student_and_control_on_the_device(device):
    data, reference, held_out = (gaussian_mixture(n, 2, seed=k) for k, n in enumerate((8, 64, 32)))
    schedule = replace(
        TINY, max_teacher_steps=40, distill_steps=10, distill_batch=16, distill_check_every=5, n_samples=64
    )
    r = distillation_experiment(
        data, reference, DenoiserConfig(width=16, depth=1), schedule, seed=0, device=device, held_out=held_out
    )
    assert all(next(m.parameters()).device.type == device for m in (r.teacher, r.student, r.control))
    assert r.teacher_steps == 40 and not r.reached_target  # target 1.0 is never reached here
    assert r.control.step == r.teacher_steps + schedule.distill_steps  # the control: as many steps more
    assert [c["step"] for c in r.distill_curve] == [5, 10]
    assert set(r.measures) == {"held_out", "teacher", "control", "student_1", "student_2"}
    as_json = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert as_json["measures"]["student_1"]["copy"]["n_samples"] == 64 and "teacher" not in as_json


@pytest.mark.slow(seconds=55)
def test_distillation_example_runs_its_image_path_on_sklearn_digits(tmp_path):
    path = saved(tmp_path, digits().numpy(), "digits.npy")  # [1797, 1, 8, 8] in [-1, 1]
    spec = importlib.util.spec_from_file_location("example_distillation_images", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        module.main(["--quick", "--images", str(path), "--out", str(tmp_path), "--device", "cpu"])
    finally:
        sys.modules.pop(spec.name, None)
    r = json.loads((tmp_path / "distillation.json").read_text())
    assert r["settings"]["images"] == str(path) and r["image_settings"]["ns"] == [64, 128]
    per_n = r["runs"][0]["images"]
    assert [e["n"] for e in per_n] == [64, 128]
    for e in per_n:
        assert 0 < e["teacher_steps"] <= e["teacher_budget"] == 4 * e["n"]
        assert [c["step"] for c in e["distill_curve"]] == [50, 100, 150, 200]
        rows = {row["key"]: row for row in e["distillation"]}
        assert set(rows) == {"held_out", "teacher", "control", "student_1", "student_2"}
        assert all(0 <= row["f_mem"] <= 1 and row["fd"] >= 0 for row in rows.values())
        assert rows["held_out"]["f_mem"] < 0.05  # held-out digits are not copies of the training digits
    assert (tmp_path / "distillation.html").read_text().count('class="grokscope-figure"') >= 6
