"""Composition tasks on finite groups ("G:x*y"), and the guarantee that every task that existed before
them keeps its inputs, labels, split and noisy labels bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from interp import Task, TaskSpec
from interp.errors import SpecError
from interp.groups import group, group_of

# sha256 (16 hex digits) of inputs, labels, train_idx, test_idx, train_labels and noisy_mask of each spec,
# computed with grokscope before the group tasks were added (interp/tasks.py at commit 3a97c11).
PINNED = [
    ("x+y", 23, 0.5, 0.0, "other", False, 0, "616f1a514f226c01"),
    ("x+y", 23, 0.7, 0.25, "other", False, 4, "fa9c64eb3bdc2e7c"),
    ("x+y", 23, 0.6, 0.4, "all", False, 5, "086e1c0b703f1964"),
    ("x+y", 23, 0.3, 0.0, "other", True, 6, "b5263ddd8031a805"),
    ("x+y", 23, 0.5, 0.3, "symmetric", False, 7, "986e92ec71fc35bf"),
    ("x+y", 31, 0.5, 0.0, "other", False, 0, "10ac989a99c5bb63"),
    ("x+y", 31, 0.7, 0.25, "other", False, 4, "831e77fb2d164679"),
    ("x+y", 31, 0.6, 0.4, "all", False, 5, "9f6a573fbf781817"),
    ("x+y", 31, 0.3, 0.0, "other", True, 6, "b169c334d0e32230"),
    ("x+y", 31, 0.5, 0.3, "symmetric", False, 7, "ef396a199408bfdc"),
    ("x-y", 23, 0.5, 0.0, "other", False, 0, "6d520a23b7dbb78a"),
    ("x-y", 23, 0.7, 0.25, "other", False, 4, "53f315eba9ebeae9"),
    ("x-y", 23, 0.6, 0.4, "all", False, 5, "d94a3ddcb3efc104"),
    ("x-y", 23, 0.3, 0.0, "other", True, 6, "644a9bb1a086625d"),
    ("x-y", 31, 0.5, 0.0, "other", False, 0, "1d15690bdd1df636"),
    ("x-y", 31, 0.7, 0.25, "other", False, 4, "c3a22905efcc88f7"),
    ("x-y", 31, 0.6, 0.4, "all", False, 5, "5d13d4020888364d"),
    ("x-y", 31, 0.3, 0.0, "other", True, 6, "cb32518c090c18d9"),
    ("x*y", 23, 0.5, 0.0, "other", False, 0, "2d14f4173d6e333b"),
    ("x*y", 23, 0.7, 0.25, "other", False, 4, "824aae915526bc3b"),
    ("x*y", 23, 0.6, 0.4, "all", False, 5, "2a94555aec53f6b4"),
    ("x*y", 23, 0.3, 0.0, "other", True, 6, "215c10908f87d0fa"),
    ("x*y", 23, 0.5, 0.3, "symmetric", False, 7, "d728d5c8fc6bd998"),
    ("x*y", 31, 0.5, 0.0, "other", False, 0, "078e78406d3649dd"),
    ("x*y", 31, 0.7, 0.25, "other", False, 4, "fcd71dfd54f690c0"),
    ("x*y", 31, 0.6, 0.4, "all", False, 5, "f29f0556012bd72c"),
    ("x*y", 31, 0.3, 0.0, "other", True, 6, "aeb8ec9fbb2eb66b"),
    ("x*y", 31, 0.5, 0.3, "symmetric", False, 7, "cf77613334bff208"),
    ("x/y", 23, 0.5, 0.0, "other", False, 0, "8e0838e3b1881cf6"),
    ("x/y", 23, 0.7, 0.25, "other", False, 4, "8aec882de4117a91"),
    ("x/y", 23, 0.6, 0.4, "all", False, 5, "1a67846dceea97bc"),
    ("x/y", 23, 0.3, 0.0, "other", True, 6, "4eccfb7a7235e531"),
    ("x/y", 31, 0.5, 0.0, "other", False, 0, "fe437c6308400b20"),
    ("x/y", 31, 0.7, 0.25, "other", False, 4, "e367343ee741146b"),
    ("x/y", 31, 0.6, 0.4, "all", False, 5, "55b618a48b76d19d"),
    ("x/y", 31, 0.3, 0.0, "other", True, 6, "ae375b6a893b4e0e"),
    ("x/y if y odd else x-y", 23, 0.5, 0.0, "other", False, 0, "15bf6edba7855949"),
    ("x/y if y odd else x-y", 23, 0.7, 0.25, "other", False, 4, "fd736d05c1c762f2"),
    ("x/y if y odd else x-y", 23, 0.6, 0.4, "all", False, 5, "a2348adba522a161"),
    ("x/y if y odd else x-y", 23, 0.3, 0.0, "other", True, 6, "e92f9d1c72602ec6"),
    ("x/y if y odd else x-y", 31, 0.5, 0.0, "other", False, 0, "f24b81259560c3aa"),
    ("x/y if y odd else x-y", 31, 0.7, 0.25, "other", False, 4, "c5a0c5f0e1b1eada"),
    ("x/y if y odd else x-y", 31, 0.6, 0.4, "all", False, 5, "de74f1b210b8a52d"),
    ("x/y if y odd else x-y", 31, 0.3, 0.0, "other", True, 6, "270db5d858790bac"),
    ("x^2+y^2", 23, 0.5, 0.0, "other", False, 0, "21db397c98b94e1b"),
    ("x^2+y^2", 23, 0.7, 0.25, "other", False, 4, "81c0709d5b4bda82"),
    ("x^2+y^2", 23, 0.6, 0.4, "all", False, 5, "6568ac754ed7be33"),
    ("x^2+y^2", 23, 0.3, 0.0, "other", True, 6, "a0a53d3070681825"),
    ("x^2+y^2", 23, 0.5, 0.3, "symmetric", False, 7, "ebc73826cdc5c0fa"),
    ("x^2+y^2", 31, 0.5, 0.0, "other", False, 0, "3d1f700ec76efcb7"),
    ("x^2+y^2", 31, 0.7, 0.25, "other", False, 4, "d9b8246f2a443199"),
    ("x^2+y^2", 31, 0.6, 0.4, "all", False, 5, "ee9771e4ab50d83a"),
    ("x^2+y^2", 31, 0.3, 0.0, "other", True, 6, "a1a6297406716b85"),
    ("x^2+y^2", 31, 0.5, 0.3, "symmetric", False, 7, "e45455380da6673c"),
    ("x^2+xy+y^2", 23, 0.5, 0.0, "other", False, 0, "096f5d429b8651bc"),
    ("x^2+xy+y^2", 23, 0.7, 0.25, "other", False, 4, "a80f78737676616f"),
    ("x^2+xy+y^2", 23, 0.6, 0.4, "all", False, 5, "37f3ca76fcf12041"),
    ("x^2+xy+y^2", 23, 0.3, 0.0, "other", True, 6, "55582ffb024cdd00"),
    ("x^2+xy+y^2", 23, 0.5, 0.3, "symmetric", False, 7, "26e6bfcadb68e77d"),
    ("x^2+xy+y^2", 31, 0.5, 0.0, "other", False, 0, "9ccc873d8f80e0e1"),
    ("x^2+xy+y^2", 31, 0.7, 0.25, "other", False, 4, "ad9024095ebe17fb"),
    ("x^2+xy+y^2", 31, 0.6, 0.4, "all", False, 5, "d8ff2ab6e187bdd8"),
    ("x^2+xy+y^2", 31, 0.3, 0.0, "other", True, 6, "3aa4590f8dfad496"),
    ("x^2+xy+y^2", 31, 0.5, 0.3, "symmetric", False, 7, "7c9110fadd3483e0"),
    ("x^2+xy+y^2+x", 23, 0.5, 0.0, "other", False, 0, "5e3ab401ea6c8c8d"),
    ("x^2+xy+y^2+x", 23, 0.7, 0.25, "other", False, 4, "408b2dfc610e8715"),
    ("x^2+xy+y^2+x", 23, 0.6, 0.4, "all", False, 5, "869cea6b4e928b85"),
    ("x^2+xy+y^2+x", 23, 0.3, 0.0, "other", True, 6, "2612b7e7acd579a8"),
    ("x^2+xy+y^2+x", 31, 0.5, 0.0, "other", False, 0, "f431a45ad0ca606c"),
    ("x^2+xy+y^2+x", 31, 0.7, 0.25, "other", False, 4, "44fb65f8562c10d3"),
    ("x^2+xy+y^2+x", 31, 0.6, 0.4, "all", False, 5, "35d8a7fcaaa44ce5"),
    ("x^2+xy+y^2+x", 31, 0.3, 0.0, "other", True, 6, "8755b69d67f01b8d"),
    ("x^3+xy", 23, 0.5, 0.0, "other", False, 0, "b1af1ee3c138be6d"),
    ("x^3+xy", 23, 0.7, 0.25, "other", False, 4, "3e64a960a6615464"),
    ("x^3+xy", 23, 0.6, 0.4, "all", False, 5, "056d1ca2a1420154"),
    ("x^3+xy", 23, 0.3, 0.0, "other", True, 6, "71dc75e6ab12b558"),
    ("x^3+xy", 31, 0.5, 0.0, "other", False, 0, "efc1fb0fb59fd99a"),
    ("x^3+xy", 31, 0.7, 0.25, "other", False, 4, "7335774a17f9d2f6"),
    ("x^3+xy", 31, 0.6, 0.4, "all", False, 5, "0ed91f1da4ff44b5"),
    ("x^3+xy", 31, 0.3, 0.0, "other", True, 6, "58f1d104d716ccf3"),
    ("x^3+xy^2+y", 23, 0.5, 0.0, "other", False, 0, "15f2695079d5b0da"),
    ("x^3+xy^2+y", 23, 0.7, 0.25, "other", False, 4, "e8515c4ddec30675"),
    ("x^3+xy^2+y", 23, 0.6, 0.4, "all", False, 5, "2eaf793e06725511"),
    ("x^3+xy^2+y", 23, 0.3, 0.0, "other", True, 6, "c28b27c4017a99f4"),
    ("x^3+xy^2+y", 31, 0.5, 0.0, "other", False, 0, "6c4124e4303ce03f"),
    ("x^3+xy^2+y", 31, 0.7, 0.25, "other", False, 4, "66ef21eeb039d66c"),
    ("x^3+xy^2+y", 31, 0.6, 0.4, "all", False, 5, "f8ab0a0862877777"),
    ("x^3+xy^2+y", 31, 0.3, 0.0, "other", True, 6, "f64533e56f65c31c"),
    ("S5:x*y", 120, 0.4, 0.0, "other", False, 1, "9fa25d05fb4d7620"),
    ("S5:x*y", 120, 0.5, 0.3, "all", False, 2, "f450d05820603e48"),
    ("S5:x*y", 120, 0.3, 0.0, "other", True, 3, "c8487989600cdc6a"),
    ("S5:x*y*x^-1", 120, 0.4, 0.0, "other", False, 1, "0a38ed9a8dd3ac29"),
    ("S5:x*y*x^-1", 120, 0.5, 0.3, "all", False, 2, "945f0f56b3c003d6"),
    ("S5:x*y*x^-1", 120, 0.3, 0.0, "other", True, 3, "8f37c33e57a829f9"),
    ("S5:x*y*x", 120, 0.4, 0.0, "other", False, 1, "f813023012f18132"),
    ("S5:x*y*x", 120, 0.5, 0.3, "all", False, 2, "4602430050220b4c"),
    ("S5:x*y*x", 120, 0.3, 0.0, "other", True, 3, "4e345485f63d2947"),
]


def task_digest(task: Task) -> str:
    h = hashlib.sha256()
    for x in (task.inputs, task.labels, task.train_idx, task.test_idx, task.train_labels, task.noisy_mask):
        h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("op,p,frac,noise,kind,random_labels,seed,digest", PINNED)
def test_existing_tasks_keep_their_labels_and_splits_bit_for_bit(op, p, frac, noise, kind, random_labels, seed, digest):
    spec = TaskSpec(
        op=op, p=p, frac_train=frac, label_noise=noise, noise_kind=kind, random_labels=random_labels, seed=seed
    )
    assert task_digest(Task(spec)) == digest


@pytest.mark.parametrize(
    "op,p,law",
    [
        ("S4:x*y", 24, lambda x, y: tuple(x[y[i]] for i in range(4))),  # grokscope's: y first
        ("S4[chughtai]:x*y", 24, lambda x, y: tuple(y[x[i]] for i in range(4))),  # Chughtai et al.'s: x first
        ("A5:x*y", 60, lambda x, y: tuple(x[y[i]] for i in range(5))),
        ("A5[chughtai]:x*y", 60, lambda x, y: tuple(y[x[i]] for i in range(5))),
        ("D13:x*y", 26, lambda x, y: ((x[0] + (-1) ** x[1] * y[0]) % 13, (x[1] + y[1]) % 2)),
        ("C59:x*y", 59, lambda x, y: (x + y) % 59),
    ],
)
def test_composition_tasks_label_each_pair_with_the_group_product(op, p, law):
    task = Task(TaskSpec(op=op, p=p, frac_train=0.5, seed=1))
    g = group_of(task)
    assert g.order == p and len(task.inputs) == p * p
    assert torch.equal(task.inputs[:, 0] * p + task.inputs[:, 1], torch.arange(p * p))  # row r = x|G| + y
    for (a, b), c in zip(task.inputs.tolist(), task.labels.tolist()):
        assert g.elements[c] == law(g.elements[a], g.elements[b])


def test_the_s5_operations_are_composition_in_the_group_s5():
    task = Task(TaskSpec(op="S5:x*y", p=120, frac_train=0.5))
    assert np.array_equal(task.labels.numpy().reshape(120, 120), group("S5").table)
    assert group_of(task).elements == tuple(__import__("itertools").permutations(range(5)))


def test_composition_tasks_take_label_noise_and_random_labels_like_the_others():
    noisy = Task(TaskSpec(op="S4:x*y", p=24, frac_train=0.5, label_noise=0.3, noise_kind="other", seed=2))
    assert noisy.n_noisy == round(0.3 * noisy.n_train)
    assert bool((noisy.train_labels[noisy.noisy_mask] != noisy.train_true_labels[noisy.noisy_mask]).all())
    rand = Task(TaskSpec(op="D13:x*y", p=26, frac_train=0.5, random_labels=True, seed=2))
    assert rand.n_noisy == rand.n_train and int(rand.train_labels.max()) < 26
    sym = Task(TaskSpec(op="C59:x*y", p=59, frac_train=0.5, label_noise=0.2, noise_kind="symmetric", seed=0))
    assert sym.n_noisy > 0  # C_n is commutative
    with pytest.raises(SpecError, match="non-commutative"):
        TaskSpec(op="S4:x*y", p=24, label_noise=0.2, noise_kind="symmetric")


def test_bad_group_tasks_are_refused_with_the_known_groups_or_the_limit():
    with pytest.raises(SpecError, match=r"S4 has 24 elements; set p=24"):
        TaskSpec(op="S4:x*y", p=23)
    with pytest.raises(SpecError, match=r"at most 3000 elements.*S7 has 5,040 elements \(25,401,600 pairs\)"):
        TaskSpec(op="S7:x*y", p=5040)
    with pytest.raises(SpecError, match=r"x\+y.*group composition 'G:x\*y'.*D<n>"):
        TaskSpec(op="Q8:x*y", p=8)
    with pytest.raises(SpecError, match=r"'op'|\.op="):
        TaskSpec(op="x**y", p=13)
