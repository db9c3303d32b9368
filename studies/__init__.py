"""The paper-level studies, each built on the core (`interp`) and the analysis (`probes`, `circuits`).

- `studies.raf`: the Rules-and-Facts model (Farne, Boncoraglio and Zdeborova 2026): data, learners,
  state-evolution theory, where a network keeps its facts, the bridge to arithmetic.
- `studies.diffusion`: diffusion models small enough to see memorisation exactly, consistency
  distillation (Jiang and Zou 2026) and Bonnaire et al.'s random-feature theory.
- `studies.distillation`: knowledge distillation on the arithmetic tasks: what a student inherits from
  a teacher that memorised noise.

Each study is a package with its example (`python -m studies.<name>.example --quick`), its tests
(`studies/<name>/tests/`) and its benchmark (`python -m studies.<name>.bench`) beside it. The studies do not
import each other (an import-linter contract); see docs/ARCHITECTURE.md.
"""
