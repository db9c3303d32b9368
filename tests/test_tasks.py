import itertools

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from interp import OPERATIONS, Task, TaskSpec
from interp.errors import SpecError
from interp.tasks import symmetric_noise_groups

P = 13


def direct(op: str, x: int, y: int, p: int) -> int:
    """Each operation written out by hand, with Python's modular inverse."""
    inv = lambda v: pow(v, -1, p)  # noqa: E731
    return {
        "x+y": (x + y) % p,
        "x-y": (x - y) % p,
        "x*y": (x * y) % p,
        "x/y": (x * inv(y)) % p if y else None,
        "x/y if y odd else x-y": (x * inv(y)) % p if y % 2 == 1 else (x - y) % p,
        "x^2+y^2": (x**2 + y**2) % p,
        "x^2+xy+y^2": (x**2 + x * y + y**2) % p,
        "x^2+xy+y^2+x": (x**2 + x * y + y**2 + x) % p,
        "x^3+xy": (x**3 + x * y) % p,
        "x^3+xy^2+y": (x**3 + x * y**2 + y) % p,
    }[op]


@pytest.mark.parametrize("op", [o for o in OPERATIONS if not o.startswith("S5")])
def test_every_modular_operation_matches_direct_computation(op):
    task = Task(TaskSpec(op=op, p=P, frac_train=0.5))
    for (a, b), c in zip(task.inputs.tolist(), task.labels.tolist()):
        assert c == direct(op, a, b, P)
    n_expected = P * (P - 1) if op == "x/y" else P * P
    assert len(task.inputs) == n_expected
    if op == "x/y":
        assert (task.inputs[:, 1] != 0).all()


S5 = list(itertools.permutations(range(5)))


def compose(x, y):  # (x*y)(i) = x(y(i))
    return tuple(x[y[i]] for i in range(5))


def inverse(x):
    out = [0] * 5
    for i, v in enumerate(x):
        out[v] = i
    return tuple(out)


@pytest.mark.parametrize(
    "op,fn",
    [
        ("S5:x*y", lambda x, y: compose(x, y)),
        ("S5:x*y*x^-1", lambda x, y: compose(compose(x, y), inverse(x))),
        ("S5:x*y*x", lambda x, y: compose(compose(x, y), x)),
    ],
)
def test_s5_operations_match_permutation_composition(op, fn):
    task = Task(TaskSpec(op=op, p=120, frac_train=0.5))
    assert len(task.inputs) == 120 * 120
    rows = np.random.default_rng(0).choice(len(task.inputs), 500, replace=False)
    for r in rows:
        a, b = task.inputs[r].tolist()
        assert S5[task.labels[r]] == fn(S5[a], S5[b])


def test_split_is_a_partition_of_the_table_with_the_requested_fraction():
    task = Task(TaskSpec(op="x+y", p=31, frac_train=0.3, seed=3))
    both = torch.cat([task.train_idx, task.test_idx]).sort().values
    assert torch.equal(both, torch.arange(31 * 31))
    assert task.n_train == round(0.3 * 31 * 31)


def test_same_spec_gives_same_split_and_noise_and_other_seed_differs():
    spec = TaskSpec(op="x-y", p=23, frac_train=0.5, label_noise=0.4, seed=7)
    a, b = Task(spec), Task(spec)
    assert torch.equal(a.train_idx, b.train_idx)
    assert torch.equal(a.train_labels, b.train_labels)
    assert torch.equal(a.noisy_mask, b.noisy_mask)
    c = Task(spec.replace(seed=8))
    assert not torch.equal(a.train_idx, c.train_idx)


def test_split_is_pinned_across_machines():
    """The stream is PCG64 raw output, fixed by NumPy's stability policy: these values never change."""
    task = Task(TaskSpec(op="x+y", p=11, frac_train=0.5, label_noise=0.2, seed=0))
    assert task.train_idx[:8].tolist() == PINNED_TRAIN_IDX
    assert task.train_labels[:8].tolist() == PINNED_TRAIN_LABELS


PINNED_TRAIN_IDX = [4, 5, 7, 10, 11, 12, 15, 17]
PINNED_TRAIN_LABELS = [6, 5, 7, 10, 6, 2, 4, 7]


@pytest.mark.parametrize("kind", ["other", "all", "symmetric"])
@pytest.mark.parametrize("noise", [0.1, 0.5, 0.8])
def test_noise_fraction_is_exact_and_test_set_stays_clean(kind, noise):
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.5, label_noise=noise, noise_kind=kind, seed=1))
    assert int(task.noisy_mask.sum()) == round(noise * task.n_train)
    clean = ~task.noisy_mask
    assert torch.equal(task.train_labels[clean], task.train_true_labels[clean])
    assert torch.equal(task.labels[task.test_idx], task.test_labels)  # test labels are the true ones
    if kind in ("other", "symmetric"):
        assert (task.train_labels[task.noisy_mask] != task.train_true_labels[task.noisy_mask]).all()
    else:  # "all": about 1/p of the corrupted labels are drawn equal to the truth
        changed = (task.train_labels[task.noisy_mask] != task.train_true_labels[task.noisy_mask]).float().mean()
        assert changed > 0.8


def test_symmetric_noise_gives_both_orders_the_same_wrong_label():
    task = Task(TaskSpec(op="x+y", p=23, frac_train=0.7, label_noise=0.5, noise_kind="symmetric", seed=2))
    label = {tuple(task.inputs[i].tolist()): task.train_labels[k].item() for k, i in enumerate(task.train_idx.tolist())}
    noisy = {tuple(task.inputs[i].tolist()) for i in task.train_idx[task.noisy_mask].tolist()}
    checked = 0
    for a, b in noisy:
        if (b, a) in label:
            assert label[(b, a)] == label[(a, b)]
            assert (b, a) in noisy
            checked += 1
    assert checked > 50


def test_random_labels_flag_randomises_every_training_label():
    task = Task(TaskSpec(op="x/y", p=23, frac_train=0.5, random_labels=True, seed=0))
    assert task.noisy_mask.all()
    agree = (task.train_labels == task.train_true_labels).float().mean()
    assert agree < 0.15  # about 1/p by chance
    assert len(set(task.train_labels.tolist())) == 23


def test_encodings_for_both_model_families():
    task = Task(TaskSpec(op="x+y", p=7, frac_train=0.5))
    toks = task.tokens()
    assert toks.shape == (49, 3) and (toks[:, 2] == 7).all() and torch.equal(toks[:, :2], task.inputs)
    assert task.tokens(eq_token=False).shape == (49, 2)
    oh = task.one_hot()
    assert oh.shape == (49, 14)
    assert torch.equal(oh[:, :7].argmax(1), task.inputs[:, 0]) and torch.equal(oh[:, 7:].argmax(1), task.inputs[:, 1])
    assert task.grid(task.labels).shape == (7, 7)
    assert task.grid(task.labels)[3, 5] == (3 + 5) % 7


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(op="x/y", p=12), "p"),
        (dict(op="x/y if y odd else x-y", p=15), "p"),
        (dict(op="x+y", p=13, label_noise=1.0), "label_noise"),
        (dict(op="x+y", p=13, label_noise=-0.1), "label_noise"),
        (dict(op="x+y", p=13, frac_train=0.0), "frac_train"),
        (dict(op="x+y", p=13, frac_train=1.5), "frac_train"),
        (dict(op="x**y", p=13), "op"),
        (dict(op="x+y", p=1), "p"),
        (dict(op="x+y", p=13, noise_kind="gaussian"), "noise_kind"),
        (dict(op="x-y", p=13, label_noise=0.2, noise_kind="symmetric"), "noise_kind"),
        (dict(op="S5:x*y", p=97), "p"),
        (dict(op="x+y", p=13, random_labels=True, label_noise=0.3), "label_noise"),
        (dict(op="x+y", p=13, seed=-1), "seed"),
    ],
)
def test_bad_specs_raise_a_clear_error_naming_the_field(kwargs, field):
    with pytest.raises(SpecError) as err:
        TaskSpec(**kwargs)
    assert err.value.field == field
    assert f".{field}=" in str(err.value) and "expected" in str(err.value)


def test_from_split_keeps_given_indices():
    spec = TaskSpec(op="x+y", p=11, frac_train=0.3)
    task = Task.from_split(spec, [0, 5, 7, 100])
    assert task.train_idx.tolist() == [0, 5, 7, 100]
    assert task.n_test == 121 - 4
    with pytest.raises(SpecError):
        Task.from_split(spec, [0, 500])


def mirror_pairs_agree(task: Task) -> bool:
    """Symmetric noise: a training pair and its mirror are both noisy with one label, or both clean."""
    by_pair = {
        tuple(task.inputs[i].tolist()): (bool(task.noisy_mask[k]), int(task.train_labels[k]))
        for k, i in enumerate(task.train_idx.tolist())
    }
    return all(by_pair.get((b, a), v) == v for (a, b), v in by_pair.items())


def promised_noise_count(task: Task) -> int:
    """The count TaskSpec promises: round(label_noise * n_train), except for symmetric noise on a
    training set made only of whole mirror pairs, where an odd target is realised one short."""
    target = round(task.spec.label_noise * task.n_train)
    if task.spec.noise_kind != "symmetric":
        return target
    pairs = {tuple(task.inputs[i].tolist()) for i in task.train_idx.tolist()}
    has_single = any(a == b or (b, a) not in pairs for a, b in pairs)
    return target if has_single else target - target % 2


@settings(deadline=None)
@given(
    p=st.sampled_from([5, 7, 11, 13]),
    frac=st.floats(0.1, 1.0),
    noise=st.floats(0.0, 0.95),
    kind=st.sampled_from(["other", "all", "symmetric"]),
    seed=st.integers(0, 10_000),
)
# every failing example ever found: symmetric noise used to stop one short (13 of 14)
@example(p=11, frac=0.125, noise=0.9375, kind="symmetric", seed=2693)
def test_noise_invariants_hold_for_any_spec(p, frac, noise, kind, seed):
    task = Task(TaskSpec(op="x+y", p=p, frac_train=frac, label_noise=noise, noise_kind=kind, seed=seed))
    assert task.n_noisy == int(task.noisy_mask.sum()) == promised_noise_count(task)
    assert task.noise_fraction == task.n_noisy / task.n_train
    assert ((task.train_labels >= 0) & (task.train_labels < p)).all()
    assert len(set(task.train_idx.tolist()) & set(task.test_idx.tolist())) == 0
    if kind == "symmetric":
        assert mirror_pairs_agree(task)


def test_symmetric_noise_hits_the_exact_count_by_swapping_a_single_for_a_pair():
    task = Task(TaskSpec(op="x+y", p=11, frac_train=0.125, label_noise=0.9375, noise_kind="symmetric", seed=2693))
    assert (task.n_train, task.n_noisy) == (15, 14)  # the example: 13 before the fix
    assert mirror_pairs_agree(task)
    # the greedy pass alone: sizes [1, 2, 2], target 4 -> takes 1 then 2 and is left one short;
    # the single is swapped out for the remaining pair
    assert symmetric_noise_groups(np.array([1, 2, 2]), 4, np.array([0, 1, 2])).tolist() == [False, True, True]


def test_symmetric_noise_on_whole_mirror_pairs_only_falls_one_short_of_an_odd_target():
    spec = TaskSpec(op="x+y", p=7, frac_train=0.5, label_noise=0.5, noise_kind="symmetric", seed=0)
    upper = [(a, b) for a in range(7) for b in range(a + 1, 7)][:13]  # 13 pairs a < b, no diagonal
    task = Task.from_split(spec, [7 * a + b for a, b in upper] + [7 * b + a for a, b in upper])
    assert task.n_train % 2 == 0 and round(0.5 * task.n_train) % 2 == 1  # 26 examples, target 13
    assert task.n_noisy == round(0.5 * task.n_train) - 1 == promised_noise_count(task)
    assert task.noise_fraction == pytest.approx(12 / 26)
    assert mirror_pairs_agree(task)


def test_n_noisy_counts_every_label_when_labels_are_random():
    task = Task(TaskSpec(op="x+y", p=7, frac_train=0.5, random_labels=True))
    assert task.n_noisy == task.n_train and task.noise_fraction == 1.0
    assert Task(TaskSpec(op="x+y", p=7, frac_train=0.5)).n_noisy == 0
