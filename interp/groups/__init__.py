"""Finite groups and their real irreducible representations: every task's own Fourier basis.

- `group_of(task)`: the group whose elements a task's tokens are, in the task's element order (Z_p for
  x+y and x-y, Z_p^* for x*y and x/y on their nonzero operands, S5 for the S5 operations, G for the
  composition tasks "G:x*y"); a SpecError naming the alternative for the operations that are no group's.
- `group(name)`: a group by name ("C59", "D13", "S4", "A5", "Z31*", "S5[chughtai]", ...), built once.
- `FiniteGroup`: elements (concrete forms), multiplication table, inverses, identity, conjugacy classes,
  element orders, `irreps` (each an `Irrep` with name, dim, matrices [|G|, d, d], character [|G|]) and
  `basis`, the orthonormal basis of the functions on G adapted to the irreps.

This package sits below `interp.tasks` (the composition tasks take their labels from a group's table)
and imports only `interp.errors` and libraries.
"""

from interp.groups.core import MAX_GROUP_ORDER, FiniteGroup, Irrep
from interp.groups.registry import (
    COMPOSITION_NAMES,
    GROUP_NAMES,
    composition_group_name,
    group,
    group_name_of,
    group_of,
    group_order,
)

__all__ = [
    "MAX_GROUP_ORDER",
    "COMPOSITION_NAMES",
    "GROUP_NAMES",
    "FiniteGroup",
    "Irrep",
    "group",
    "group_of",
    "group_name_of",
    "group_order",
    "composition_group_name",
]
