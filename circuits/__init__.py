"""Interventions on trained models: activation patching, ablation and pruning, neuron partitions,
and the clock/pizza tests. Every function works on the MLP and the transformer, on any device, and
returns a frozen dataclass with `to_dict()`.

    from circuits.patching import activation_patch
    from circuits.ablation import ablate, ablated, prune_curve
    from circuits.partition import neuron_scores, partition
    from circuits.clock_pizza import classify_circuit
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "activation_patch": "circuits.patching",
    "corrupt_pairs": "circuits.patching",
    "PatchResult": "circuits.patching",
    "ablate": "circuits.ablation",
    "ablated": "circuits.ablation",
    "ablate_batch": "circuits.ablation",
    "prune_curve": "circuits.ablation",
    "AblationResult": "circuits.ablation",
    "PruneCurve": "circuits.ablation",
    "neuron_scores": "circuits.partition",
    "NeuronScores": "circuits.partition",
    "PartitionResult": "circuits.partition",
    "classify_circuit": "circuits.clock_pizza",
    "gradient_symmetricity": "circuits.clock_pizza",
    "distance_irrelevance": "circuits.clock_pizza",
    "CircuitVerdict": "circuits.clock_pizza",
}

# `partition` (the function) is not re-exported: the name is the submodule circuits.partition.
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # `import circuits` stays cheap; each name loads its module on first use.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'circuits' has no attribute {name!r}")
