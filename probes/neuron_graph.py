"""The neuron graph behind a task-agnostic partition: neurons as nodes, an edge where two neurons
write to the logits in overlapping directions, and its communities set beside the Fourier frequency
classes.

Edges use only the weights (no labels, no Fourier basis): |cos| between two neurons' output weights
w_m (`neuron_out_weights`, centred over classes, since a push on every logit alike changes no
prediction). Neurons of one frequency write into the same 2-D span {cos_k, sin_k} of the logits, and
different frequencies are orthogonal, so a network built from frequency clusters shows them as
communities (Louvain, networkx); `frequency_agreement` measures how far the communities recover the
periodic neurons' dominant frequencies (adjusted Rand index: 1 = the same partition, ~0 = chance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from interp.checkpoints.subject import resolve_subject
from interp.errors import SpecError
from interp.results import Result
from probes.fourier import classify_neurons

__all__ = [
    "DEFAULT_MIN_OVERLAP",
    "NeuronCommunities",
    "neuron_communities",
    "neuron_graph",
    "output_overlap",
]

DEFAULT_MIN_OVERLAP = 0.5  # |cos| of output weights for an edge


@torch.no_grad()
def output_overlap(subject, task=None, *, device=None) -> torch.Tensor:
    """[n, n] |cos| between the neurons' output weights, centred over classes (0 for a dead neuron)."""
    model, _ = resolve_subject(subject, task, need_task=False, device=device)
    w = model.neuron_out_weights().detach().double()  # [n, p]
    w = w - w.mean(-1, keepdim=True)
    unit = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (unit @ unit.T).abs().float().cpu()  # [n, n]


def neuron_graph(subject, task=None, *, min_overlap: float = DEFAULT_MIN_OVERLAP, device=None) -> nx.Graph:
    """The neurons (nodes 0..n-1) joined where their output overlap is >= min_overlap (edge weight: the overlap)."""
    if not 0.0 < min_overlap <= 1.0:
        raise SpecError("neuron_graph", "min_overlap", min_overlap, "a number in (0, 1], e.g. 0.5")
    overlap = output_overlap(subject, task, device=device).numpy()
    i, j = np.nonzero(np.triu(overlap >= min_overlap, k=1))  # each pair once, no self-loops
    graph = nx.Graph()
    graph.add_nodes_from(range(len(overlap)))
    graph.add_weighted_edges_from(zip(i.tolist(), j.tolist(), overlap[i, j].tolist()))
    return graph


def adjusted_rand_index(a, b) -> float:
    """Adjusted Rand index of two labellings of the same items (1: identical partitions, ~0: chance),
    scikit-learn's `adjusted_rand_score`; NaN where the index is 0/0 and carries no information: fewer
    than two items, or both labellings one block each, or both every item a block of its own
    (scikit-learn calls the last two 1.0)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    blocks = {len(np.unique(a)), len(np.unique(b))}
    if len(a) < 2 or blocks == {1} or blocks == {len(a)}:
        return float("nan")
    return float(adjusted_rand_score(a, b))


@dataclass(frozen=True, eq=False)
class NeuronCommunities(Result):
    """Louvain communities of the neuron graph and how they line up with the frequency classes."""

    community: torch.Tensor  # [n] long: each neuron's community, largest community first
    n_communities: int
    n_edges: int
    min_overlap: float
    modularity: float
    n_periodic: int  # periodic neurons (probes.fourier.classify_neurons) the agreement is measured on
    frequency_agreement: float  # adjusted Rand index, communities vs dominant frequencies, periodic neurons
    community_frequency: list[
        int
    ]  # each community's commonest dominant frequency among its periodic neurons (-1: none)
    graph: nx.Graph = field(repr=False)


def neuron_communities(
    subject, task=None, *, min_overlap: float = DEFAULT_MIN_OVERLAP, resolution: float = 1.0, seed: int = 0, device=None
) -> NeuronCommunities:
    """Communities of `neuron_graph` (Louvain, seeded) compared with the Fourier frequency classes."""
    model, task = resolve_subject(subject, task, need_task=False, device=device)
    graph = neuron_graph(model, min_overlap=min_overlap)
    found = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    found = sorted(found, key=lambda c: (-len(c), min(c)))
    community = torch.empty(graph.number_of_nodes(), dtype=torch.long)
    for k, members in enumerate(found):
        community[list(members)] = k
    classes = classify_neurons(model, task)
    periodic, freq = classes.periodic, classes.dominant_freq
    majority = [
        int(torch.mode(freq[periodic & (community == k)]).values) if bool((periodic & (community == k)).any()) else -1
        for k in range(len(found))
    ]
    return NeuronCommunities(
        community=community,
        n_communities=len(found),
        n_edges=graph.number_of_edges(),
        min_overlap=min_overlap,
        modularity=float(nx.community.modularity(graph, found, weight="weight"))
        if graph.number_of_edges()
        else float("nan"),
        n_periodic=int(periodic.sum()),
        frequency_agreement=adjusted_rand_index(community[periodic].numpy(), freq[periodic].numpy()),
        community_frequency=majority,
        graph=graph,
    )
