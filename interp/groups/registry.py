"""Groups by name, and the group of a task.

Names: "C<n>" (2 <= n <= 3000), "D<n>" (order 2n, 3 <= n <= 1500), "S<n>" (3 <= n <= 6), "A<n>"
(3 <= n <= 6), "Z<p>*" (p prime <= 3000), and Chughtai et al.'s element orders "S<n>[chughtai]"
(3 <= n <= 6) and "A5[chughtai]" (see `interp.groups.symmetric`). Each group is built once per process.
"""

from __future__ import annotations

import math
import re
from functools import cache

from interp.errors import SpecError
from interp.groups.core import MAX_GROUP_ORDER, FiniteGroup
from interp.groups.families import cyclic_group, dihedral_group, multiplicative_group
from interp.groups.symmetric import CHUGHTAI, GROKSCOPE, alternating_group, symmetric_group

COMPOSITION_NAMES = (  # the groups G of the composition tasks "G:x*y"
    "C<n> (cyclic, order n), D<n> (dihedral, order 2n), S3..S6 (symmetric), A3..A6 (alternating), "
    "S3[chughtai]..S6[chughtai] and A5[chughtai] (Chughtai et al.'s element orders)"
)
GROUP_NAMES = COMPOSITION_NAMES + ", Z<p>* (p prime; the group of x*y and x/y mod p)"
_PATTERN = re.compile(r"^(C|D|S|A|Z)(\d+)(\*|\[chughtai\])?$")
# The operations whose tokens are a group's elements (besides the composition tasks "G:x*y").
ADDITIVE_OPS = ("x+y", "x-y")
MULTIPLICATIVE_OPS = ("x*y", "x/y")
LEGACY_S5_OPS = ("S5:x*y", "S5:x*y*x^-1", "S5:x*y*x")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def group_order(name: str, where: tuple[str, str, object] | None = None) -> int:
    """|G| of a group name, without building it. A name that is no group, or a group too large for
    its pair table, is a SpecError naming the known groups or the limit; `where` = (spec, field, value)
    says what the error is about (default: ("group", "name", name))."""
    spec, fld, got = where or ("group", "name", name)

    def refuse(expected: str):
        raise SpecError(spec, fld, got, expected)

    m = _PATTERN.match(name)
    if m is None:
        refuse(f"a group name: {GROUP_NAMES}")
    family, n, suffix = m.group(1), int(m.group(2)), m.group(3) or ""
    if (suffix == "*") != (family == "Z") or (suffix == "[chughtai]" and family not in "SA"):
        refuse(f"a group name: {GROUP_NAMES}")
    if family == "C":
        order = n
    elif family == "D":
        order = 2 * n
    elif family == "Z":
        order = n - 1
    elif family == "S":
        order = math.factorial(n)
    else:
        order = math.factorial(n) // 2
    if order > MAX_GROUP_ORDER:
        refuse(
            f"a group of at most {MAX_GROUP_ORDER} elements (a task's table of |G|^2 <= {MAX_GROUP_ORDER**2:,} pairs); "
            f"{name} has {order:,} elements ({order * order:,} pairs)"
        )
    lower = {"C": 2, "D": 3, "S": 3, "A": 3, "Z": 2}[family]
    upper = {"S": 6, "A": 6}.get(family)
    if n < lower or (upper is not None and n > upper):
        refuse(f"{family}<n> with n >= {lower}" + (f" and n <= {upper}" if upper else "") + f" ({GROUP_NAMES})")
    if family == "Z" and not _is_prime(n):
        refuse("Z<p>* with p prime (the nonzero residues mod p form a group only then)")
    if suffix == "[chughtai]" and family == "A" and n != 5:
        refuse("A5[chughtai] (Chughtai et al.'s code builds A_n for n = 5 only)")
    return order


@cache
def group(name: str) -> FiniteGroup:
    """The group called `name` (see the module docstring), built once per process."""
    group_order(name)  # validates the name and the size
    family, n, suffix = _PATTERN.match(name).groups()
    n = int(n)
    convention = CHUGHTAI if suffix == "[chughtai]" else GROKSCOPE
    if family == "C":
        return cyclic_group(n)
    if family == "D":
        return dihedral_group(n)
    if family == "Z":
        return multiplicative_group(n)
    if family == "S":
        return symmetric_group(n, convention)
    return alternating_group(n, convention)


def composition_group_name(op: str) -> str | None:
    """The group name G of a composition task "G:x*y", or None if `op` is not of that form."""
    if op.endswith(":x*y") and _PATTERN.match(op[: -len(":x*y")]) and not op.startswith("Z"):
        return op[: -len(":x*y")]
    return None


def group_name_of(op: str, p: int) -> str:
    """The name of the group whose elements a task's tokens are: Z_p ("C<p>") for x+y and x-y, Z_p^*
    ("Z<p>*") for x*y and x/y (p prime; on the nonzero operands), S5 for the S5 operations, G for
    "G:x*y". A SpecError for the operations that are no group's (the polynomial ones, x/y if y odd
    else x-y, x*y mod a composite p)."""
    if op in ADDITIVE_OPS:
        return f"C{p}"
    if op in MULTIPLICATIVE_OPS:
        if not _is_prime(int(p)):
            raise SpecError(
                "group_of",
                "task.spec.p",
                p,
                f"a prime for {op!r} (the nonzero residues mod {p} are not a group under multiplication)",
                "Use a prime p, or pass basis='additive' for the per-operand spectra in Z_p's additive Fourier basis.",
            )
        return f"Z{p}*"
    if op in LEGACY_S5_OPS:
        return "S5"
    name = composition_group_name(op)
    if name is not None:
        return name
    raise SpecError(
        "group_of",
        "task.spec.op",
        op,
        f"an operation on a group: {list(ADDITIVE_OPS)} (Z_p), {list(MULTIPLICATIVE_OPS)} (Z_p^*, p prime), "
        f"{list(LEGACY_S5_OPS)} (S5) or a composition task 'G:x*y' with G one of {COMPOSITION_NAMES}",
        f"{op!r} is no group's operation, so it has no group Fourier basis. Its per-operand spectra in Z_p's additive "
        "Fourier basis are still available with basis='additive' (they describe each operand as a residue mod p, "
        "not the rule).",
    )


def group_of(task) -> FiniteGroup:
    """The group whose elements are the task's tokens, in the task's element order (see `group_name_of`);
    reads task.spec.op and task.spec.p."""
    spec = getattr(task, "spec", task)
    return group(group_name_of(spec.op, spec.p))
