import json
import sys
import types

import pytest
import torch

from interp import Task, TaskSpec, evaluate
from interp.checkpoints import (
    atomic_write_json,
    checkpoint_path,
    load,
    load_run,
    save,
    save_weights,
    write_run_json,
)
from interp.checkpoints.importers.progress_measures import HookedTransformerConfigRecord, import_progress_measures
from interp.errors import CheckpointError, UnsafeCheckpointError
from interp.models import MLPConfig, TransformerConfig, build_model

P = 11


@pytest.fixture(scope="module")
def task():
    return Task(TaskSpec(op="x-y", p=P, frac_train=0.5, label_noise=0.2, seed=4))


def test_run_directory_round_trip_gives_the_same_model_task_and_step(tmp_path, task):
    for cfg in [
        MLPConfig(p=P, width=16, act="quad", bias=True),
        TransformerConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=32, attention_rate=0.5),
    ]:
        model = build_model(cfg, seed=3)
        run_dir = tmp_path / cfg.family
        save(run_dir, model, task, step=42, history=[{"step": 42, "test_acc": 0.5}])
        ckpt = load(run_dir)
        assert ckpt.step == 42 and ckpt.model_config == cfg and ckpt.task.spec == task.spec
        assert torch.equal(ckpt.task.train_labels, task.train_labels)
        assert ckpt.history == [{"step": 42, "test_acc": 0.5}]
        torch.testing.assert_close(ckpt.model.pair_logits(task.inputs), model.pair_logits(task.inputs), rtol=0, atol=0)
        # one weight file loads on its own, without run.json
        alone = load(checkpoint_path(run_dir, 42))
        assert alone.model_config == cfg and alone.step == 42


def test_load_run_reads_every_checkpoint_lazily(tmp_path, task):
    cfg = MLPConfig(p=P, width=8)
    write_run_json(tmp_path, task_spec=task.spec, model_config=cfg, history=[{"step": s} for s in (0, 5, 10)])
    models = {}
    for s in (0, 5, 10):
        models[s] = build_model(cfg, seed=s)
        save_weights(checkpoint_path(tmp_path, s), models[s], task_spec=task.spec, step=s)
    run = load_run(tmp_path)
    assert run.steps == [0, 5, 10] and len(run) == 3
    for s, model in run.models():
        assert torch.equal(model.U, models[s].U)
    assert run[-1].step == 10 and run.final.step == 10
    assert load(tmp_path, step=5).step == 5
    with pytest.raises(CheckpointError, match="no checkpoint at step 7"):
        load(tmp_path, step=7)


def test_atomic_write_leaves_old_file_intact_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write_json(target, {"v": 1})

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="not a grokscope run directory"):
        load(tmp_path)


def test_truncated_and_garbage_weight_files_are_clear_errors(tmp_path, task):
    model = build_model(MLPConfig(p=P, width=8))
    f = save_weights(tmp_path / "w.safetensors", model, task_spec=task.spec, step=1)
    data = f.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load(tmp_path / "junk.safetensors")
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown checkpoint type"):
        load(tmp_path / "weights.npz")


def test_foreign_safetensors_file_is_recognised_and_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a grokscope checkpoint"):
        load(tmp_path / "foreign.safetensors")


def test_config_that_does_not_match_the_weights_is_a_clear_error(tmp_path, task):
    model = build_model(MLPConfig(p=P, width=8))
    f = save_weights(tmp_path / "w.safetensors", model, model_config=MLPConfig(p=P, width=16), task_spec=task.spec)
    with pytest.raises(CheckpointError, match=r"shape mismatch U: file \[8, 11\] vs config \[16, 11\]"):
        load(f)


# ----- the progress-measures importer ------------------------------------------------------------
def _progress_measures_file(path, config, n_ckpt=3, seed=0):
    """A file in the layout of the progress-measures paper: HookedTransformer state dicts (with their
    IGNORE and mask buffers), a trajectory, losses and split indices."""
    cfg = TransformerConfig.from_hooked_transformer_config(config if isinstance(config, dict) else vars(config))
    models = [build_model(cfg, seed=seed + i) for i in range(n_ckpt + 1)]

    def ht_state(m):
        sd = dict(m.state_dict())
        for layer in range(cfg.n_layers):
            sd[f"blocks.{layer}.attn.IGNORE"] = torch.tensor(-torch.inf)
            sd[f"blocks.{layer}.attn.mask"] = torch.ones(cfg.n_ctx, cfg.n_ctx).tril().bool()
        return sd

    p = cfg.p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(0))
    n_train = int(0.3 * p * p)
    torch.save(
        {
            "config": config,
            "model": ht_state(models[-1]),
            "checkpoints": [ht_state(m) for m in models[:-1]],
            "checkpoint_epochs": [0, 100, 200][:n_ckpt],
            "train_losses": [4.0 - i * 0.01 for i in range(250)],
            "test_losses": [4.1 - i * 0.005 for i in range(250)],
            "train_indices": perm[:n_train],
            "test_indices": perm[n_train:],
        },
        path,
    )
    return models, perm[:n_train]


HT_CONFIG = dict(
    n_layers=1, d_model=16, d_head=8, n_heads=2, d_mlp=32, d_vocab=P + 1, d_vocab_out=P, n_ctx=3,
    act_fn="relu", normalization_type=None, dtype=torch.float32, seed=999, device="cpu",
)  # fmt: skip


def test_importer_yields_our_transformer_task_and_whole_trajectory(tmp_path):
    f = tmp_path / "full_run_data.pth"
    models, train_idx = _progress_measures_file(f, HT_CONFIG)
    run = import_progress_measures(f)
    assert run.steps == [0, 100, 200, 250]
    assert run.task.p == P and run.task.spec.op == "x+y"
    assert run.task.train_idx.tolist() == sorted(train_idx.tolist())
    assert len(run.history) == 250 and run.history[10]["train_loss"] == pytest.approx(3.9)
    for (_step, model), ref in zip(run.models(), models):
        torch.testing.assert_close(model.pair_logits(run.task.inputs), ref.pair_logits(run.task.inputs), rtol=0, atol=0)
    assert load(f).step == 250  # load() on a .pth gives the final model
    metrics = evaluate(run.final.model, run.task)
    assert 0 <= metrics["test_acc"] <= 1


def test_importer_reads_a_pickled_hooked_transformer_config_without_running_its_code(tmp_path, monkeypatch):
    """The paper saved `model.cfg` itself; the allow-list maps that class to an inert record."""
    mod = types.ModuleType("transformer_lens.HookedTransformerConfig")

    class HookedTransformerConfig:  # stands in for TransformerLens's dataclass when pickling
        def __init__(self, **kw):
            self.__dict__.update(kw)

    HookedTransformerConfig.__module__ = mod.__name__
    HookedTransformerConfig.__qualname__ = "HookedTransformerConfig"
    mod.HookedTransformerConfig = HookedTransformerConfig
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    f = tmp_path / "object_config.pth"
    _progress_measures_file(f, HookedTransformerConfig(**HT_CONFIG))
    monkeypatch.delitem(sys.modules, mod.__name__)  # loading must not need the class at all
    run = import_progress_measures(f)
    assert run.model_config.d_mlp == 32 and len(run) == 4
    assert HookedTransformerConfigRecord.__module__ == "interp.checkpoints.importers.progress_measures"


def test_the_importer_is_reachable_where_the_api_promises_it():
    from interp.checkpoints import import_progress_measures as from_checkpoints

    assert from_checkpoints is import_progress_measures


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file if ever unpickled


def test_importer_refuses_files_that_need_arbitrary_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pth"
    torch.save({"config": HT_CONFIG, "model": {}, "extra": _Payload(str(marker))}, f)
    with pytest.raises(UnsafeCheckpointError, match="not on grokscope's allow-list.*convert it once"):
        import_progress_measures(f)
    assert not marker.exists()


def test_importer_errors_on_truncated_foreign_and_mismatched_files(tmp_path):
    f = tmp_path / "run.pth"
    _progress_measures_file(f, HT_CONFIG)
    data = f.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        import_progress_measures(tmp_path / "cut.pth")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="not in the progress-measures layout"):
        import_progress_measures(tmp_path / "foreign.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        import_progress_measures(tmp_path / "list.pth")
    wrong = dict(HT_CONFIG, d_mlp=64)  # config says 64 neurons, weights have 32
    d = torch.load(f, weights_only=False)
    d["config"] = wrong
    torch.save(d, tmp_path / "mismatch.pth")
    with pytest.raises(CheckpointError, match="shape mismatch blocks.0.mlp.W_in"):
        import_progress_measures(tmp_path / "mismatch.pth")


def test_atomic_writes_get_the_permissions_of_any_new_file_and_leave_no_temporary(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        f = atomic_write_json(tmp_path / "sub" / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644  # readable by others, as reports and zoo files must be
    assert json.loads(f.read_text()) == {"a": 1}
    assert [p.name for p in f.parent.iterdir()] == ["x.json"]
