"""Read-only measurements of a trained model (each returns a frozen dataclass with `to_dict()`).

- `probes.fourier` (basis helpers in `probes.basis`, re-exported): real Fourier basis of Z_p, per-neuron spectra, IPR, dominant frequencies,
  `classify_neurons` (periodic vs memorising), `key_frequencies`.
- `probes.gromov`: Gromov's analytic MLP (`gromov_mlp`) and the phase-relation fit (`phase_fit`).
- `probes.progress`: Nanda et al.'s progress measures over a run (`progress_measures`).
- `probes.memorization`: learning curves by subset, T_mem / T_gen, grokking delay, memorised bits,
  capacity in bits per parameter.
- `probes.extraction`: frequency filtration into the generalisation network G and residual R.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "fourier_basis": "probes.fourier",
    "neuron_spectra": "probes.fourier",
    "neuron_ipr": "probes.fourier",
    "dominant_frequencies": "probes.fourier",
    "classify_neurons": "probes.fourier",
    "key_frequencies": "probes.fourier",
    "gromov_mlp": "probes.gromov",
    "phase_fit": "probes.gromov",
    "progress_measures": "probes.progress",
    "learning_curves": "probes.memorization",
    "memorization_time": "probes.memorization",
    "generalization_time": "probes.memorization",
    "grokking_delay": "probes.memorization",
    "timescales": "probes.memorization",
    "memorized_bits": "probes.memorization",
    "capacity": "probes.memorization",
    "frequency_filtration": "probes.extraction",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy: `import probes` stays cheap; `from probes import classify_neurons` works.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'probes' has no attribute {name!r}")
