"""The report's "Task and model" section and `interp-zoo list` show the realised label noise
(Task.n_noisy / Task.noise_fraction), not only the fraction asked for."""

from __future__ import annotations

import json

from interp.checkpoints import save
from interp.cli.report import main as report_main
from interp.cli.zoo import main as zoo_main
from interp.models import MLPConfig, build_model
from interp.tasks import Task, TaskSpec


def test_report_states_the_realised_noise_of_a_symmetric_noise_task(tmp_path, capsys):
    task = Task(TaskSpec(op="x+y", p=11, frac_train=0.125, label_noise=0.9375, noise_kind="symmetric", seed=2693))
    save(tmp_path / "run", build_model(MLPConfig(p=11, width=8), seed=0), task)
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    argv = [str(tmp_path / "run"), "--sections", "summary", "-o", str(html), "--json", str(js), "--no-progress"]
    assert report_main(argv) == 0
    summary = json.loads(js.read_text())["sections"]["summary"]
    assert (summary["n_noisy"], summary["n_train"]) == (14, 15)
    assert summary["noise_fraction"] == 14 / 15
    assert "94% label noise (symmetric; realised: 14 of 15 training labels, 93.3%)" in html.read_text()


def test_zoo_list_shows_each_entrys_realised_noise(capsys):
    assert zoo_main(["list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["name"][3] == "noise"
    assert rows["doshi-wd0"][3] == "35.0%" and rows["mlp-noise80-small"][3] == "80.0%"
    assert rows["random-labels-w2"][3] == "random" and rows["grok-transformer"][3] == "0.0%"
    assert zoo_main(["list", "--json"]) == 0
    shipped = json.loads(capsys.readouterr().out)["shipped"]
    assert shipped["mlp-noise50-large"]["noise_fraction"] == 0.5
