"""The neuron graph (networkx): communities found from output-weight overlap alone recover the
frequency classes the Fourier probes find."""

import math

import pytest
import torch

from interp.errors import SpecError
from probes.neuron_graph import adjusted_rand_index, neuron_communities, neuron_graph, output_overlap


def test_adjusted_rand_index_matches_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(0.5714285714, abs=1e-9)
    assert adjusted_rand_index([0, 0, 1, 1, 2], [5, 5, 3, 3, 9]) == 1.0  # the same partition, other names
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)  # worse than chance
    assert math.isnan(adjusted_rand_index([1], [2]))
    assert math.isnan(adjusted_rand_index([3, 3, 3], [1, 1, 1]))  # one block each: 0/0 (sklearn: 1.0)
    assert math.isnan(adjusted_rand_index([0, 1, 2], [5, 4, 3]))  # every item alone in both: 0/0 (sklearn: 1.0)


def test_communities_of_output_overlap_recover_the_frequency_classes_of_a_grokked_mlp():
    res = neuron_communities("zoo:mlp-noise0-large")
    assert res.n_periodic > 500 and res.frequency_agreement > 0.99
    assert len(set(f for f in res.community_frequency if f >= 0)) > 20  # one community per key frequency
    assert res.community.shape == (513,) and res.graph.number_of_edges() == res.n_edges
    frame = res.to_frame()
    assert len(frame) == 513 and (frame["frequency_agreement"] == res.frequency_agreement).all()


def test_graph_edges_are_the_overlaps_above_the_cut():
    overlap = output_overlap("zoo:mlp-noise0-small")
    graph = neuron_graph("zoo:mlp-noise0-small", min_overlap=0.5)
    assert torch.allclose(overlap, overlap.T) and torch.allclose(overlap.diagonal(), torch.ones(65), atol=1e-5)
    expected = int((torch.triu(overlap >= 0.5, diagonal=1)).sum())
    assert graph.number_of_nodes() == 65 and graph.number_of_edges() == expected
    assert all(d["weight"] >= 0.5 for _, _, d in graph.edges(data=True))
    with pytest.raises(SpecError, match="min_overlap"):
        neuron_graph("zoo:mlp-noise0-small", min_overlap=0)
