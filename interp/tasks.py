"""Algorithmic tasks: Power et al.'s binary operations mod p and on S5, composition in finite groups
("G:x*y": Chughtai et al.'s tasks on C_n, D_n, S_n, A_n), with label noise.

A task is fully determined by its frozen `TaskSpec`: the table of all input pairs, the true labels,
the train/test split and the noisy training labels are all regenerated from it, bit for bit, on any
machine. Randomness comes from NumPy's `SeedSequence` + `PCG64` raw bit streams, whose output is
fixed by NumPy's stability policy (unlike `Generator` methods, which may change between releases).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from interp.errors import SpecError
from interp.groups import COMPOSITION_NAMES, composition_group_name, group, group_order
from interp.validation import check_choice, check_fraction, check_int

NOISE_KINDS = ("other", "all", "symmetric")

# Stream ids keep the split, the noise selection and the noisy labels independent of each other.
_STREAM_SPLIT, _STREAM_NOISE_PICK, _STREAM_NOISE_LABEL, _STREAM_RANDOM_LABEL = 1, 2, 3, 4


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _mod_inverse_table(p: int) -> np.ndarray:
    inv = np.zeros(p, dtype=np.int64)
    for b in range(1, p):
        inv[b] = pow(b, -1, p)
    return inv


@dataclass(frozen=True)
class Operation:
    """One binary operation: how to compute it over arrays of operands and what it needs of p."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    needs_prime: bool = False
    b_nonzero: bool = False  # y = 0 is excluded from the table (division)
    commutative: bool = False
    group: str = "Zp"  # "Zp" (operands and answers in 0..p-1), "S5" (120 permutations) or a group name ("S4", "D13")


def _div(a, b, p):
    return (a * _mod_inverse_table(p)[b]) % p


def _div_odd_else_sub(a, b, p):
    inv = _mod_inverse_table(p)
    return np.where(b % 2 == 1, (a * inv[b]) % p, (a - b) % p)


def _cube(a, p):
    return (a * a % p) * a % p


# The permutations of {0..4} in lexicographic order; a permutation is its index in this list.
_S5 = np.array(list(itertools.permutations(range(5))), dtype=np.int64)  # [120, 5]
_S5_INDEX = {tuple(int(v) for v in perm): i for i, perm in enumerate(_S5)}
_S5_LOOKUP = np.zeros((5,) * 5, dtype=np.int64)
for _perm, _i in _S5_INDEX.items():
    _S5_LOOKUP[_perm] = _i
_S5_INV = np.argsort(_S5, axis=1)  # inverse permutation of each element, [120, 5]


def _s5_compose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x*y)(i) = x(y(i)) for permutation arrays [N, 5]."""
    return np.take_along_axis(x, y, axis=1)


def _s5_index(perms: np.ndarray) -> np.ndarray:
    return _S5_LOOKUP[tuple(perms.T)]


def _s5_op(kind: str):
    def fn(a, b, p):
        x, y = _S5[a], _S5[b]
        if kind == "x*y":
            out = _s5_compose(x, y)
        elif kind == "x*y*x^-1":
            out = _s5_compose(_s5_compose(x, y), _S5_INV[a])
        else:  # "x*y*x"
            out = _s5_compose(_s5_compose(x, y), x)
        return _s5_index(out)

    return fn


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        Operation("x+y", lambda a, b, p: (a + b) % p, commutative=True),
        Operation("x-y", lambda a, b, p: (a - b) % p),
        Operation("x*y", lambda a, b, p: (a * b) % p, commutative=True),
        Operation("x/y", _div, needs_prime=True, b_nonzero=True),
        Operation("x/y if y odd else x-y", _div_odd_else_sub, needs_prime=True),
        Operation("x^2+y^2", lambda a, b, p: (a * a + b * b) % p, commutative=True),
        Operation("x^2+xy+y^2", lambda a, b, p: (a * a + a * b + b * b) % p, commutative=True),
        Operation("x^2+xy+y^2+x", lambda a, b, p: (a * a + a * b + b * b + a) % p),
        Operation("x^3+xy", lambda a, b, p: (_cube(a, p) + a * b) % p),
        Operation("x^3+xy^2+y", lambda a, b, p: (_cube(a, p) + a * (b * b % p) + b) % p),
        Operation("S5:x*y", _s5_op("x*y"), group="S5"),
        Operation("S5:x*y*x^-1", _s5_op("x*y*x^-1"), group="S5"),
        Operation("S5:x*y*x", _s5_op("x*y*x"), group="S5"),
    ]
}

S5_ORDER = 120
MAX_P = 3000  # p^2 pairs must fit comfortably in memory


@functools.cache
def _composition(name: str) -> Operation:
    """The composition task "G:x*y" of the group G: the label of (a, b) is the index of a*b."""

    def fn(a, b, p):
        return group(name).table[a, b]

    return Operation(f"{name}:x*y", fn, commutative=group(name).is_abelian, group=name)


def operation(op: str) -> Operation:
    """The `Operation` called `op`: one of `OPERATIONS`, or a composition task "G:x*y" on a group G
    (`interp.groups`: "C59:x*y", "D13:x*y", "S4:x*y", "A5:x*y", "S5[chughtai]:x*y", ...); a SpecError
    naming the known ones otherwise, or the size limit for a group too large for its pair table."""
    if isinstance(op, str) and op in OPERATIONS:
        return OPERATIONS[op]
    name = composition_group_name(op) if isinstance(op, str) else None
    if name is None:
        raise SpecError(
            "TaskSpec",
            "op",
            op,
            f"one of {sorted(OPERATIONS)}, or a group composition 'G:x*y' with G one of {COMPOSITION_NAMES}",
        )
    group_order(name, where=("TaskSpec", "op", op))
    return _composition(name)


def _raw_stream(seed: int, stream: int, n: int) -> np.ndarray:
    """n uint64 draws from a PCG64 stream keyed by (seed, stream); identical on every machine."""
    bitgen = np.random.PCG64(np.random.SeedSequence([seed, stream]))
    return bitgen.random_raw(n).astype(np.uint64)


def _permutation(seed: int, stream: int, n: int) -> np.ndarray:
    return np.argsort(_raw_stream(seed, stream, n), kind="stable")


def _uniform_ints(seed: int, stream: int, n: int, high: int) -> np.ndarray:
    return (_raw_stream(seed, stream, n) % np.uint64(high)).astype(np.int64)


def symmetric_noise_groups(group_size: np.ndarray, n_noisy: int, order: np.ndarray) -> np.ndarray:
    """Which unordered-pair groups symmetric noise corrupts: [n_groups] bool, `n_noisy` examples in all
    whenever any group is a single example, else the largest even count <= n_noisy.

    group_size: [n_groups] 1 (a diagonal (a, a), or a pair whose mirror is not a training example) or 2.
    Groups are taken whole in the seeded `order`, skipping those that would overshoot. That can stop
    one short only when every group left is a pair; then the last single taken is swapped for the next
    pair (net +1). With no single at all every count is even and an odd n_noisy is unreachable.
    """
    chosen = np.zeros(len(group_size), dtype=bool)
    remaining = n_noisy
    for g in order:
        if remaining == 0:
            break
        if group_size[g] <= remaining:
            chosen[g] = True
            remaining -= group_size[g]
    if remaining:  # == 1, and every unchosen group is a pair
        singles = [g for g in order if chosen[g] and group_size[g] == 1]
        pairs = [g for g in order if not chosen[g]]
        if singles and pairs:
            chosen[singles[-1]], chosen[pairs[0]] = False, True
    return chosen


@dataclass(frozen=True)
class TaskSpec:
    """Everything that determines a task; checkpoints store this, never the data.

    op: one of `OPERATIONS` ("x+y", "x/y", "S5:x*y", ...) or a group composition "G:x*y" ("S4:x*y",
        "D13:x*y", "A5:x*y", "C59:x*y", "S5[chughtai]:x*y"; see `interp.groups` for the element orders).
    p: the modulus (number of tokens and classes); 120 for the S5 operations, |G| for "G:x*y".
    frac_train: fraction of the operation's table used for training, in (0, 1].
    label_noise: fraction of training examples given a wrong label, in [0, 1).
    noise_kind: "other" (uniform over the p-1 wrong classes, the coexistence paper), "all"
        (uniform over all p classes, Doshi et al.; about 1/p of them keep the true label) or
        "symmetric" ((a, b) and (b, a) get the same wrong label; commutative operations only).
        The number of noisy training examples is round(label_noise * n_train), exactly, for "other"
        and "all", and for "symmetric" whenever the training set holds a diagonal (a, a) or a pair
        whose mirror is a test example; when every training example's mirror is also one (all of
        them in pairs), only even counts keep pairs whole and an odd target is realised one short.
        `Task.n_noisy` and `Task.noise_fraction` are the realised count and fraction.
    random_labels: every training label drawn uniformly at random (capacity / memorisation speed).
    seed: seeds the split and the noise.
    """

    op: str = "x+y"
    p: int = 97
    frac_train: float = 0.3
    label_noise: float = 0.0
    noise_kind: str = "other"
    random_labels: bool = False
    seed: int = 0

    def __post_init__(self):
        op = operation(self.op)
        check_int("TaskSpec", "p", self.p, expected="an int")
        if op.group == "S5":
            if self.p != S5_ORDER:
                raise SpecError("TaskSpec", "p", self.p, f"{S5_ORDER} for {self.op}", "S5 has 120 elements; set p=120.")
        elif op.group != "Zp":
            order = group_order(op.group)
            if self.p != order:
                raise SpecError(
                    "TaskSpec",
                    "p",
                    self.p,
                    f"{order} for {self.op}",
                    f"{op.group} has {order} elements; set p={order}.",
                )
        else:
            check_int("TaskSpec", "p", self.p, min_value=2, max_value=MAX_P)
            if op.needs_prime and not _is_prime(int(self.p)):
                raise SpecError(
                    "TaskSpec",
                    "p",
                    self.p,
                    f"a prime for {self.op!r} (division needs every y != 0 to be invertible mod p)",
                    "Use a prime such as 59, 97 or 113.",
                )
        check_fraction("TaskSpec", "frac_train", self.frac_train, inclusive=(False, True))
        check_fraction(
            "TaskSpec", "label_noise", self.label_noise, inclusive=(True, False), expected="a fraction in [0, 1)",
            fix="e.g. 0.5 for 50% noise.",
        )  # fmt: skip
        check_choice("TaskSpec", "noise_kind", self.noise_kind, NOISE_KINDS)
        if self.noise_kind == "symmetric" and not op.commutative:
            raise SpecError(
                "TaskSpec",
                "noise_kind",
                self.noise_kind,
                "'other' or 'all' for the non-commutative operation " + repr(self.op),
                "Symmetric noise gives (a, b) and (b, a) one label, which only makes sense when a∘b = b∘a.",
            )
        if self.random_labels and self.label_noise:
            raise SpecError(
                "TaskSpec",
                "label_noise",
                self.label_noise,
                "0 when random_labels=True (every label is already random)",
            )
        check_int("TaskSpec", "seed", self.seed, min_value=0)

    def replace(self, **changes) -> TaskSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise SpecError(
                "TaskSpec", sorted(unknown)[0], d[sorted(unknown)[0]], f"one of the fields {sorted(fields)}"
            )
        return cls(**d)


class Task:
    """The data of a `TaskSpec`: every input pair, true labels, split, noisy training labels.

    All tensors live on the CPU; models move what they need.
    """

    def __init__(self, spec: TaskSpec | None = None, *, split=None, **kwargs):
        if spec is None:
            spec = TaskSpec(**kwargs)
        elif kwargs:
            spec = spec.replace(**kwargs)
        if not isinstance(spec, TaskSpec):
            raise TypeError(f"Task expects a TaskSpec, got {type(spec).__name__}. Use Task(TaskSpec(op=..., p=...)).")
        self.spec = spec
        self.operation = operation(spec.op)
        p = spec.p
        b_start = 1 if self.operation.b_nonzero else 0
        a, b = np.meshgrid(np.arange(p), np.arange(b_start, p), indexing="ij")
        a, b = a.reshape(-1).astype(np.int64), b.reshape(-1).astype(np.int64)
        labels = self.operation.fn(a, b, p).astype(np.int64)
        n = len(a)

        self.custom_split = split is not None
        if split is None:
            n_train = int(round(spec.frac_train * n))
            if n_train < 1:
                raise SpecError(
                    "TaskSpec",
                    "frac_train",
                    spec.frac_train,
                    f"large enough to leave at least one of the {n} pairs for training",
                )
            order = _permutation(spec.seed, _STREAM_SPLIT, n)
            train_idx, test_idx = np.sort(order[:n_train]), np.sort(order[n_train:])
        else:
            train_idx, test_idx = split
            n_train = len(train_idx)

        train_true = labels[train_idx]
        train_labels = train_true.copy()
        noisy = np.zeros(n_train, dtype=bool)
        if spec.random_labels:
            train_labels = _uniform_ints(spec.seed, _STREAM_RANDOM_LABEL, n_train, p)
            noisy[:] = True
        elif spec.label_noise > 0:
            noisy, train_labels = self._corrupt(a[train_idx], b[train_idx], train_true, n_train)

        self.inputs = torch.from_numpy(np.stack([a, b], axis=1))  # [N, 2]
        self.labels = torch.from_numpy(labels)  # [N]
        self.train_idx = torch.from_numpy(train_idx)  # [n_train]
        self.test_idx = torch.from_numpy(test_idx)  # [n_test]
        self.train_labels = torch.from_numpy(train_labels)  # [n_train], noisy where noisy_mask
        self.noisy_mask = torch.from_numpy(noisy)  # [n_train]

    @classmethod
    def from_split(cls, spec: TaskSpec, train_idx, test_idx=None) -> Task:
        """A task with an explicit train split (indices into `inputs`), e.g. imported from another
        codebase; the test set is `test_idx` or every other pair. Label noise still follows the spec."""
        n = len(Task(spec.replace(frac_train=1.0, label_noise=0.0, random_labels=False)).inputs)
        tr = np.unique(np.asarray(train_idx, dtype=np.int64).reshape(-1))
        if len(tr) == 0 or tr.min() < 0 or tr.max() >= n:
            raise SpecError(
                "Task.from_split", "train_idx", f"{len(tr)} indices", f"a non-empty set of indices in [0, {n})"
            )
        if test_idx is None:
            te = np.setdiff1d(np.arange(n), tr)
        else:
            te = np.unique(np.asarray(test_idx, dtype=np.int64).reshape(-1))
            if len(te) and (te.min() < 0 or te.max() >= n):
                raise SpecError("Task.from_split", "test_idx", f"{len(te)} indices", f"indices in [0, {n})")
            if np.intersect1d(tr, te).size:
                raise SpecError("Task.from_split", "test_idx", "overlapping indices", "indices disjoint from train_idx")
        return cls(spec, split=(tr, te))

    def _corrupt(self, a_tr, b_tr, true_tr, n_train):
        spec, p = self.spec, self.spec.p
        n_noisy = int(round(spec.label_noise * n_train))
        noisy = np.zeros(n_train, dtype=bool)
        labels = true_tr.copy()
        if spec.noise_kind == "symmetric":
            key = np.minimum(a_tr, b_tr) * p + np.maximum(a_tr, b_tr)  # [n_train] unordered-pair id
            uniq, first, group_of = np.unique(key, return_index=True, return_inverse=True)
            group_size = np.bincount(group_of, minlength=len(uniq))  # [n_groups] 1 or 2
            # one wrong label per unordered pair, drawn from its key so both orders agree
            shift = 1 + _uniform_ints(spec.seed, _STREAM_NOISE_LABEL, p * p, p - 1)[uniq]
            group_label = (true_tr[first] + shift) % p
            chosen = symmetric_noise_groups(group_size, n_noisy, _permutation(spec.seed, _STREAM_NOISE_PICK, len(uniq)))
            noisy = chosen[group_of]
            labels = np.where(noisy, group_label[group_of], true_tr)
            return noisy, labels
        pick = _permutation(spec.seed, _STREAM_NOISE_PICK, n_train)[:n_noisy]
        noisy[pick] = True
        if spec.noise_kind == "other":
            shift = 1 + _uniform_ints(spec.seed, _STREAM_NOISE_LABEL, n_train, p - 1)
            labels = np.where(noisy, (true_tr + shift) % p, true_tr)
        else:  # "all"
            labels = np.where(noisy, _uniform_ints(spec.seed, _STREAM_NOISE_LABEL, n_train, p), true_tr)
        return noisy, labels

    # ----- views -------------------------------------------------------------------------------
    @property
    def p(self) -> int:
        return self.spec.p

    @property
    def n_classes(self) -> int:
        return self.spec.p

    @property
    def n_train(self) -> int:
        return len(self.train_idx)

    @property
    def n_test(self) -> int:
        return len(self.test_idx)

    @property
    def train_inputs(self) -> torch.Tensor:
        return self.inputs[self.train_idx]

    @property
    def test_inputs(self) -> torch.Tensor:
        return self.inputs[self.test_idx]

    @property
    def train_true_labels(self) -> torch.Tensor:
        return self.labels[self.train_idx]

    @property
    def test_labels(self) -> torch.Tensor:
        return self.labels[self.test_idx]

    @property
    def n_noisy(self) -> int:
        """Training examples given a noisy label, as realised (see TaskSpec for when it can differ
        from round(label_noise * n_train)); every one of them with random_labels."""
        return int(self.noisy_mask.sum())

    @property
    def noise_fraction(self) -> float:
        """The realised fraction of noisy training labels, n_noisy / n_train."""
        return self.n_noisy / self.n_train

    @cached_property
    def label_changed_mask(self) -> torch.Tensor:
        """[n_train] bool: training labels that differ from the truth (noisy_mask minus lucky draws)."""
        return self.train_labels != self.train_true_labels

    def tokens(self, idx: torch.Tensor | None = None, eq_token: bool = True) -> torch.Tensor:
        """Transformer inputs `a b =` ([N, 3], with `=` the token id p) or `a b` ([N, 2])."""
        pairs = self.inputs if idx is None else self.inputs[idx]
        if not eq_token:
            return pairs.clone()
        eq = torch.full((len(pairs), 1), self.p, dtype=pairs.dtype)
        return torch.cat([pairs, eq], dim=1)

    def one_hot(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """MLP inputs as concatenated one-hots [e_a, e_b]: [N, 2p] float."""
        pairs = self.inputs if idx is None else self.inputs[idx]
        oh = torch.nn.functional.one_hot(pairs, self.p).float()  # [N, 2, p]
        return oh.reshape(len(pairs), 2 * self.p)

    def grid(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape a per-pair tensor [N, ...] over the full table into [p, p(-1), ...] indexed by (a, b)."""
        n_b = self.p - 1 if self.operation.b_nonzero else self.p
        return values.reshape(self.p, n_b, *values.shape[1:])

    def __repr__(self) -> str:
        s = self.spec
        extra = f", label_noise={s.label_noise} ({s.noise_kind})" if s.label_noise else ""
        extra += ", random_labels=True" if s.random_labels else ""
        return f"Task({s.op!r} mod {s.p}, n_train={self.n_train}, n_test={self.n_test}{extra}, seed={s.seed})"


def all_pairs(p: int, device=None) -> torch.Tensor:
    """[p*p, 2] long: every (a, b) in Z_p x Z_p, a-major (row a*p + b), the order of `Task.grid`."""
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    return torch.stack([a, b], dim=1)
