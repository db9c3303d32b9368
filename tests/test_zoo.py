"""The zoo: shipped checkpoints match their manifest, load, and are what their records say."""

from __future__ import annotations

import json

import pytest
import torch

from interp import TaskSpec, evaluate, zoo
from interp.checkpoints.catalog import shipped_dir
from interp.cli.zoo import main as zoo_main
from interp.errors import CheckpointError, SpecError
from interp.models import config_from_dict
from interp.zoo.build import key_metrics, sha256_file
from probes.memorization import phase

ENTRIES = zoo.names(include_local=False)
MANIFEST = zoo.read_manifest()["entries"]


def test_every_cpu_recipe_is_shipped_and_every_shipped_entry_has_a_recipe():
    assert set(ENTRIES) == set(zoo.recipes("cpu"))


def test_shipped_files_match_the_manifest_sha256():
    res = zoo.check()
    assert res.ok, res.to_dict()
    assert res.checked == sorted(ENTRIES)


@pytest.mark.parametrize("name", ENTRIES)
def test_manifest_metrics_and_files_are_what_the_entry_folder_holds(name):
    # Recomputed from the files, not read back from the manifest: the metrics from run.json's
    # history, the file list and digests from every file under the entry's folder.
    root, rec = shipped_dir(), MANIFEST[name]
    run = json.loads((root / name / "run.json").read_text())
    assert key_metrics(run["history"], TaskSpec.from_dict(run["task_spec"])) == rec["metrics"]
    on_disk = {f.relative_to(root).as_posix(): sha256_file(f) for f in (root / name).rglob("*") if f.is_file()}
    assert on_disk == rec["files"]


def test_the_whole_zoo_is_under_40_mb():
    assert zoo.check().total_bytes < 40 * 2**20


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_loads_and_reproduces_its_recorded_metrics(name):
    rec = MANIFEST[name]
    ckpt = zoo.load(name)
    assert ckpt.step == rec["train_config"]["steps"] == rec["metrics"]["step"]
    assert ckpt.task.spec.to_dict() == rec["task_spec"]
    assert ckpt.model_config == config_from_dict(rec["model_config"])  # fields added since take their defaults
    m = evaluate(ckpt.model, ckpt.task)
    for key in ("train_acc", "test_acc"):
        assert m[key] == pytest.approx(rec["metrics"][key], abs=1e-6)
    assert rec["metrics"]["phase"] == (
        "random labels"
        if ckpt.task.spec.random_labels
        else phase(m["train_acc"], m["test_acc"], ckpt.task.spec.label_noise)
    )


@pytest.mark.parametrize("name", ENTRIES)
def test_manifest_record_is_its_recipe_with_the_command_that_rebuilds_it(name):
    rec, recipe = MANIFEST[name], zoo.recipe(name)
    for key, value in recipe.to_dict().items():
        if key == "model_config":  # config fields added since the entry was built take their defaults
            assert config_from_dict(rec[key]) == config_from_dict(value)
        else:
            assert rec[key] == value
    assert rec["command"] == f"interp-zoo build {name}"
    assert all(len(digest) == 64 for digest in rec["files"].values())


def test_only_the_trajectory_entry_keeps_more_than_the_final_step():
    for name in ENTRIES:
        n = len(zoo.load_run(name).steps)
        if MANIFEST[name]["trajectory"]:
            assert 20 <= n <= 60, name
        else:
            assert n == 1, name


def test_label_noise_entries_memorise_the_noise():
    for noise in (50, 80):
        m = MANIFEST[f"mlp-noise{noise}-large"]["metrics"]
        assert m["train_noisy_acc"] >= 0.99 and m["train_clean_acc"] >= 0.99


def test_the_wide_noise_free_mlp_generalises_better_than_the_narrow_one():
    small, large = (MANIFEST[f"mlp-noise0-{size}"]["metrics"]["test_acc"] for size in ("small", "large"))
    assert large >= 0.99 and large > small


def test_doshi_entries_are_labelled_with_the_phase_they_reached():
    """The three weight decays land in Doshi et al.'s three phases at xi = 0.35 (as in the paper at p = 97)."""
    phases = {wd: MANIFEST[f"doshi-wd{wd}"]["metrics"]["phase"] for wd in (0, 5, 15)}
    assert phases == {0: "coexistence", 5: "partial inversion", 15: "full inversion"}


def test_grok_transformer_memorises_before_it_generalises():
    m = MANIFEST["grok-transformer"]["metrics"]
    assert m["test_acc"] >= 0.99
    assert m["step_test_acc_99"] >= 2 * m["step_train_acc_99"]


def test_clock_and_pizza_entries_get_their_verdicts():
    from probes.clock_pizza import classify_circuit

    for name, want in (("clock-transformer", "clock"), ("pizza-transformer", "pizza")):
        ckpt = zoo.load(name)
        assert classify_circuit(ckpt.model, ckpt.task).verdict == want, name


def test_random_label_entries_memorise_more_with_more_parameters():
    rows = sorted(
        (MANIFEST[n]["n_params"], MANIFEST[n]["metrics"]["train_acc"]) for n in ENTRIES if n.startswith("random-labels")
    )
    assert len(rows) >= 3
    accs = [a for _, a in rows]
    assert accs == sorted(accs) and accs[-1] >= 0.99 and accs[0] < 0.9


def test_gpu_recipes_are_the_papers_scale():
    gpu = zoo.recipes("gpu")
    assert gpu["grok-transformer-gpu"].model.p == 113 and gpu["grok-transformer-gpu"].train.steps == 40000
    assert max(r.model.width for r in gpu.values() if r.model.family == "mlp") == 4097
    assert all(r.command.startswith("interp-zoo build --scale gpu ") for r in gpu.values())


def test_rebuilding_an_entry_reproduces_its_metrics(tmp_path):
    rec = zoo.build(["random-labels-w16"], root=tmp_path)["random-labels-w16"]
    shipped = MANIFEST["random-labels-w16"]["metrics"]
    assert rec["metrics"]["train_acc"] == pytest.approx(shipped["train_acc"], abs=0.02)
    assert zoo.check(root=tmp_path).ok
    files = {p.name for p in (tmp_path / "random-labels-w16").rglob("*") if p.is_file()}
    assert files == {"run.json", "step_0003000.safetensors"}  # the final step only, no optimizer state


def test_unknown_and_unbuilt_names_fail_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GROKSCOPE_ZOO_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="interp-zoo list"):
        zoo.load("no-such-entry")
    with pytest.raises(CheckpointError, match="interp-zoo build --scale gpu grok-transformer"):
        zoo.load("grok-transformer-gpu")
    with pytest.raises(SpecError):
        zoo.recipe("no-such-entry")


def test_cli_list_and_check(capsys):
    assert zoo_main(["list"]) == 0
    out = capsys.readouterr().out
    assert zoo.DEFAULT_ENTRY in out and "grok-transformer-gpu" in out
    assert zoo_main(["--check"]) == 0
    assert "all files match the manifest" in capsys.readouterr().out
    assert zoo_main(["list", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["shipped"]) == set(ENTRIES)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_scale_build_without_a_gpu_is_refused_with_the_fix(tmp_path, capsys):
    assert zoo_main(["build", "--scale", "gpu", "grok-transformer", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and "--device cpu" in err
    assert not any(tmp_path.iterdir())  # nothing started


def test_check_detects_a_modified_file(tmp_path):
    import shutil

    root = tmp_path / "zoo"
    shutil.copytree(zoo.shipped_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    victim = next((root / "random-labels-w8" / "checkpoints").iterdir())
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    res = zoo.check(root=root)
    assert not res.ok and res.mismatched == {"random-labels-w8": [str(victim.relative_to(root))]}
