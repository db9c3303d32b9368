"""Equivalence with TransformerLens's HookedTransformer, which TransformerLens 4 removed.

CI runs this file in a second environment with transformer-lens 3.9 (see .ci/run), where
GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER=1 turns a missing HookedTransformer into a failure.
"""

import os

import pytest
import torch

from interp import Task, TaskSpec
from interp.checkpoints import load
from interp.models import TransformerConfig, build_model

try:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
except ImportError:  # TransformerLens >= 4
    HookedTransformer = None

pytestmark = pytest.mark.tl_legacy

if HookedTransformer is None:
    if os.environ.get("GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER"):
        raise RuntimeError(
            "GROKSCOPE_REQUIRE_HOOKED_TRANSFORMER is set but this TransformerLens has no HookedTransformer"
        )
    pytest.skip(
        "this TransformerLens has no HookedTransformer; .ci/run runs this file under transformer-lens 3.9",
        allow_module_level=True,
    )


CONFIGS = [
    dict(p=13, d_model=32, n_heads=4, d_head=8, d_mlp=64),  # Nanda's shape, scaled down
    dict(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=64, causal=False, eq_token=False),  # Zhong's
    dict(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=48, n_layers=2, normalization_type="LN", act_fn="gelu"),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_hooked_transformer_state_dict_gives_the_same_logits_and_activations(kw):
    cfg = TransformerConfig(**kw)
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    ours = build_model(cfg, seed=None)
    ours.load_hooked_transformer_state_dict(ht.state_dict())
    task = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5))
    tokens = task.tokens(eq_token=cfg.eq_token)
    theirs_logits, theirs_cache = ht.run_with_cache(tokens)
    ours_logits, ours_cache = ours.run_with_cache(tokens)
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-5, rtol=1e-5)
    assert set(theirs_cache.keys()) <= set(ours_cache.keys())
    for name in theirs_cache.keys():
        torch.testing.assert_close(ours_cache[name], theirs_cache[name], atol=1e-5, rtol=1e-5, msg=name)
    torch.testing.assert_close(ours.pair_logits(task.inputs), theirs_logits[:, -1], atol=1e-5, rtol=1e-5)


def test_our_state_dict_loads_into_hooked_transformer():
    cfg = TransformerConfig(**CONFIGS[0])
    ours = build_model(cfg, seed=1)
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config()))
    missing, unexpected = ht.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all(k.endswith((".IGNORE", ".mask")) for k in missing)
    tokens = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).tokens()
    torch.testing.assert_close(ht(tokens), ours(tokens), atol=1e-5, rtol=1e-5)


def test_importer_reads_a_real_hooked_transformer_run(tmp_path):
    from interp.checkpoints import import_progress_measures

    cfg = TransformerConfig(**CONFIGS[0])
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    f = tmp_path / "full_run_data.pth"
    torch.save(
        {
            "config": ht.cfg,  # the pickled HookedTransformerConfig object, as the paper saved it
            "model": ht.state_dict(),
            "checkpoints": [ht.state_dict()],
            "checkpoint_epochs": [0],
            "train_losses": [1.0, 0.5],
            "test_losses": [1.1, 0.9],
            "train_indices": torch.arange(0, 169, 3),
            "test_indices": torch.tensor([i for i in range(169) if i % 3]),
        },
        f,
    )
    run = import_progress_measures(f)
    tokens = run.task.tokens()
    torch.testing.assert_close(run.final.model(tokens), ht(tokens), atol=1e-5, rtol=1e-5)
    assert run.task.n_train == len(range(0, 169, 3))


def test_a_saved_hooked_transformer_state_dict_loads_through_load_with_its_config(tmp_path):
    cfg = TransformerConfig(**CONFIGS[2])
    ht = HookedTransformer(HookedTransformerConfig(**cfg.hooked_transformer_config(), seed=0))
    torch.save(ht.state_dict(), tmp_path / "model.pt")
    ckpt = load(tmp_path / "model.pt", config=ht.cfg, task=TaskSpec(op="x+y", p=cfg.p))
    tokens = Task(TaskSpec(op="x+y", p=cfg.p, frac_train=0.5)).tokens(eq_token=cfg.eq_token)
    torch.testing.assert_close(ckpt.model(tokens), ht(tokens), atol=1e-5, rtol=1e-5)
    assert ckpt.model.cfg == cfg and not ckpt.task.split_known
