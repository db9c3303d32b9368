"""Interventions on trained models. Every function takes `(subject, task=None, *, device=None, ...)`
(a model, a Checkpoint, a run directory, a checkpoint file or "zoo:NAME"), works on the MLP and the
transformer, and returns a frozen `interp.results.Result` with `to_dict()`.

    from circuits.patching import activation_patch
    from circuits.ablation import ablate, ablated, prune_curve
    from circuits.scores import neuron_scores          # also importable from circuits.partition
    from circuits.partition import partition
    from circuits.clock_pizza import classify_circuit

The reading and editing of activations they share lives one layer down, in `interp.interventions`.
"""
