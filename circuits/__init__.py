"""Interventions on trained models: what happens when you cut or swap. Every function changes weights
or activations (ablation, activation patching, the generalisation / memorisation partitions) and measures
what the change does; reading a model as it is belongs to `probes` (docs/ARCHITECTURE.md has the rule).
Every function takes `(subject, task=None, *, device=None, ...)` (a model, a Checkpoint, a run directory, a
checkpoint file or "zoo:NAME"), works on every model family, and returns a frozen `interp.results.Result`
with `to_dict()`.

    from circuits.patching import activation_patch
    from circuits.ablation import ablate, ablated, prune_curve
    from circuits.partition import partition
    from circuits.filtration import frequency_filtration   # G and R: each neuron kept in its dominant irrep

The reading and editing of activations they share lives one layer down, in `interp.interventions`.
"""
