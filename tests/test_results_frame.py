"""Result.to_frame(): every analysis result as a tidy pandas DataFrame, so a sweep's results concatenate."""

import sys

import pandas as pd
import pytest

from probes.clock_pizza import classify_circuit
from probes.fourier import classify_neurons, neuron_spectra


@pytest.fixture(scope="module")
def classes():
    return {name: classify_neurons(f"zoo:{name}") for name in ("mlp-noise0-small", "mlp-noise50-small")}


def test_per_neuron_results_give_one_row_per_neuron_and_constant_scalar_columns(classes):
    res = classes["mlp-noise0-small"]
    frame = res.to_frame()
    assert len(frame) == res.n_neurons and list(frame["index"]) == list(range(res.n_neurons))
    assert frame["ipr"].tolist() == pytest.approx(res.ipr.tolist())
    assert frame["periodic"].tolist() == res.periodic.tolist()
    assert (frame["threshold"] == res.threshold).all() and (frame["family"] == "mlp").all()


def test_frames_of_a_sweep_concatenate_into_one_table(classes):
    frame = pd.concat([r.to_frame().assign(entry=name) for name, r in classes.items()], ignore_index=True)
    share = frame.groupby("entry")["periodic"].mean()
    for name, res in classes.items():
        assert share[name] == pytest.approx(res.frac_periodic)


def test_a_result_without_arrays_is_one_row_with_nested_dicts_flattened():
    frame = classify_circuit("zoo:pizza-transformer", n_triples=256).to_frame()
    assert len(frame) == 1 and frame.loc[0, "verdict"] == "pizza"
    assert frame.loc[0, "thresholds.pizza_min_symmetricity"] == 0.95


def test_without_pandas_the_error_names_the_extra(monkeypatch, classes):
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` sees when it is not installed
    with pytest.raises(ImportError, match=r"pip install grokscope\[pandas\]"):
        neuron_spectra("zoo:mlp-noise0-small").to_frame()
