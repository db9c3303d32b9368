"""Every command line exits with one meaning per status: 0 ok, 1 the work failed, 2 bad input, and a
bad input's message names the flag or field, what was given and what is expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interp.cli.report import main as report_main
from interp.cli.train import main as train_main
from interp.cli.zoo import main as zoo_main

TINY = ["--p", "11", "--width", "8", "--steps", "2", "--eval-every", "2", "--quiet"]


def sweep_file(tmp_path, text: str):
    f = tmp_path / "sweep.toml"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--p", "x"], ["argument --p", "expected an int", "'x'"]),
        (["--lr", "fast"], ["argument --lr", "expected a number", "'fast'"]),
        (["--batch-size", "big"], ["argument --batch-size", "expected an int or none", "'big'"]),
        (["--random-labels", "maybe"], ["argument --random-labels", "expected true or false", "'maybe'"]),
        (["--model", "cnn"], ["argument --model", "invalid choice: 'cnn'"]),
        (["--save-state-every", "-1"], ["argument --save-state-every", "expected a number >= 0", "'-1'"]),
        (["--models-per-task", "0"], ["argument --models-per-task", "expected a positive int", "'0'"]),
        (["--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
        (["--op", "x/y", "--p", "12", "--dry-run"], ["TaskSpec.p=12", "expected a prime"]),
        (["--p", "11", "--lr", "-1", "--dry-run"], ["TrainConfig.lr=-1.0", "expected a positive number"]),
        (["--model", "transformer", "--width", "8", "--dry-run"], ["['width'] are not settings of the transformer"]),
        (["--models-per-task", "2", "--dry-run"], ["--models-per-task 2 needs --ray"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("-") else None,
)
def test_interp_train_bad_flags_exit_2_naming_the_flag_and_what_was_expected(argv, needles, capsys):
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize(
    "text,needles",
    [
        (None, ["--sweep", "no such file", "Expected a TOML sweep file"]),
        ("this is = = not toml", ["is not valid TOML", "Expected tables [task], [model] and [train]"]),
        ("[train]\nlrr = 1e-3\n", ["[train] has unknown field 'lrr'", "expected one of", "'lr'"]),
        ("[optim]\nlr = 1e-3\n", ["unknown top-level key 'optim'", "expected out, [task], [model] and [train]"]),
        ("train = 3\n", ["train = 3 is not a table"]),
        ('[task]\nop = "x/y"\np = 12\n', ["TaskSpec.p=12", "expected a prime", "Use a prime such as 59"]),
        ('[train]\nsteps = "many"\n', ["TrainConfig.steps='many'", "expected a non-negative int"]),
    ],
    ids=["missing", "not-toml", "unknown-field", "unknown-table", "not-a-table", "non-prime-p", "wrong-type"],
)
def test_interp_train_bad_sweep_files_exit_2_and_say_what_is_wrong(tmp_path, text, needles, capsys):
    path = str(tmp_path / "absent.toml") if text is None else sweep_file(tmp_path, text)
    assert train_main(["--sweep", path, "--dry-run"]) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "runs").exists()


def test_interp_train_output_problems_are_bad_input_and_divergence_is_status_1(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert train_main([*TINY, "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert train_main([*TINY, "--out", str(tmp_path / "run")]) == 0
    assert train_main([*TINY, "--out", str(tmp_path / "run")]) == 2  # exists: resume or overwrite
    assert "already holds a run" in capsys.readouterr().err
    assert train_main([*TINY, "--out", str(tmp_path / "run"), "--resume", "--lr", "5e-3"]) == 2
    assert "train_config.lr: stored 0.001, passed 0.005" in capsys.readouterr().err
    assert train_main(["--out", str(tmp_path / "nothing"), "--resume", "--steps", "4"]) == 2
    assert "holds no run to resume" in capsys.readouterr().err
    assert train_main([*TINY, "--device", "cuda:99", "--out", str(tmp_path / "dev")]) == 2
    assert "cuda:99" in capsys.readouterr().err and not (tmp_path / "dev").exists()
    diverging = ["--act", "quad", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e4", "--warmup-steps", "0"]
    assert (
        train_main([*diverging, "--p", "11", "--width", "8", "--steps", "20", "--out", str(tmp_path / "d"), "--quiet"])
        == 1
    )
    assert "diverged" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["zoo:no-such-entry"], ["no zoo entry 'no-such-entry'", "interp-zoo list"]),
        (["{tmp}/absent"], ["does not exist", "Pass a run directory"]),
        (["{tmp}/notes.txt"], ["unknown checkpoint type '.txt'"]),
        (["--sections", "summary,bogus"], ["--sections 'summary,bogus'", "unknown section 'bogus'", "expected"]),
        (["--device", "tpu"], ["device='tpu'", "Use 'auto', 'cpu'"]),
        (["--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
    ],
    ids=["unknown-zoo-entry", "missing-path", "not-a-checkpoint", "unknown-section", "bad-device", "unknown-flag"],
)
def test_interp_report_bad_input_exits_2_and_says_what_is_wrong(tmp_path, argv, needles, capsys):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert report_main([*argv, "-o", str(tmp_path / "r.html"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "r.html").exists()


def test_interp_report_exits_1_when_a_section_fails(tmp_path, monkeypatch, capsys):
    import interp.report.build as build

    def broken(subject, sec):
        raise RuntimeError("probe exploded")

    sections = tuple((k, t, broken if k == "training" else f) for k, t, f in build.SECTIONS)
    monkeypatch.setattr(build, "SECTIONS", sections)
    argv = ["zoo:mlp-noise0-small", "--sections", "summary,training", "-o", str(tmp_path / "r.html"), "--no-progress"]
    assert report_main(argv) == 1
    assert "section 'training' failed: RuntimeError: probe exploded" in capsys.readouterr().err
    assert (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["check", "no-such-entry"], ["check 'no-such-entry'", "no such shipped entry", "expected one of"]),
        (["build", "no-such-entry"], ["zoo.name='no-such-entry'", "interp-zoo list"]),
        (["build", "--group", "nope"], ["--group 'nope' is not a zoo group", "expected one of"]),
        (["build"], ["no entry given", "expected a NAME, --group GROUP or --all"]),
        (["build", "doshi-wd0", "--device", "tpu"], ["device='tpu'"]),
        (["build", "doshi-wd0", "--scale", "huge"], ["argument --scale", "invalid choice: 'huge'"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ],
    ids=["check-unknown", "build-unknown", "unknown-group", "nothing-named", "bad-device", "bad-scale", "bad-command"],
)
def test_interp_zoo_bad_input_exits_2_and_says_what_is_wrong(argv, needles, capsys):
    assert zoo_main(argv) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err


def test_interp_zoo_check_exits_1_on_a_mismatched_file(tmp_path, monkeypatch, capsys):
    import interp.cli.zoo as zoo_cli
    from interp.zoo.build import CheckResult

    monkeypatch.setattr(zoo_cli, "check", lambda names: CheckResult(["doshi-wd0"], {}, {"doshi-wd0": ["run.json"]}, 1))
    assert zoo_main(["check"]) == 1
    assert "FAIL doshi-wd0: run.json" in capsys.readouterr().out


@pytest.mark.parametrize("main", [train_main, report_main, zoo_main], ids=["train", "report", "zoo"])
def test_each_command_documents_its_exit_statuses_in_help(main, capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status:" in out and "0    ok" in out and "2    bad input" in out and "130" in out


def test_the_installed_command_exits_2_on_bad_input():
    """One real process (the console script, else the module): sys.exit carries main's status."""
    script = Path(sys.executable).parent / "interp-train"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "interp.cli.train"]
    proc = subprocess.run([*cmd, "--p", "x"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "argument --p: expected an int, got 'x'" in proc.stderr
