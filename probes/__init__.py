"""What a trained model represents, read from it as it is (weights, activations, gradients, outputs):
nothing here changes a weight or an activation; that is `circuits` (docs/ARCHITECTURE.md has the
rule). Every function takes `(subject, task=None, *, device=None, ...)` (a model, a Checkpoint, a run directory, a checkpoint file or "zoo:NAME") and
returns a tensor or a frozen `interp.results.Result` with `to_dict()`.

- `probes.basis`: the real Fourier basis of Z_p, DFT helpers, IPR, the projection on kept frequencies.
- `probes.group_basis`: the task's own Fourier basis (its group's irreps: Z_p, Z_p^*, S_n, A_n, D_n),
  which every spectrum below is read in.
- `probes.fourier`: per-neuron spectra, IPR, dominant frequencies (irreps), `classify_neurons`
  (periodic vs memorising), `key_frequencies`, `key_irreps`.
- `probes.representations`: Chughtai et al.'s per-irrep measurements (`rep_metrics`).
- `probes.gromov`: Gromov's analytic MLP (`gromov_mlp`) and the phase-relation fit (`phase_fit`).
- `probes.progress`: Nanda et al.'s progress measures over a run (`progress_measures`).
- `probes.memorization`: learning curves by subset, T_mem / T_gen, grokking delay, Doshi et al.'s
  phases, memorised bits, capacity in bits per parameter.
- `probes.scores`: one score per neuron (IPR, the coexistence paper's strength, the task-agnostic
  coherence and spread), `DEFAULT_SCORE`.
- `probes.neuron_graph`: the networkx graph of neurons (output-weight overlap), its communities.
- `probes.clock_pizza`: Zhong et al.'s gradient symmetricity and distance irrelevance, `classify_circuit`.
- `probes.stats`: the small statistics the probes share (Otsu, a 2-component mixture, Gini).
"""
