"""Hidden-layer activations by name: the one table the MLP, the transformer, the stacked forward, the
circuits and the Rules-and-Facts learners read (each family says which names it allows)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interp.validation import check_choice

ACTIVATIONS = {
    "relu": F.relu,
    "quad": torch.square,  # phi(x) = x^2 (Gromov; Doshi et al.)
    "gelu": F.gelu,
    "silu": F.silu,
    "rev_relu": lambda x: F.relu(-x),  # max(0, -x), the coexistence paper's reverse ReLU
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # TransformerLens's gelu_new
    "tanh": torch.tanh,  # Zhong et al.'s "Tanh"
    "erf": torch.erf,  # the Rules-and-Facts random features and two-layer networks use these three too
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def activation(name: str, allowed=None, where: str = "activation", fix: str | None = None):
    """The activation function called `name`; a SpecError naming the choices when it is unknown
    (or not among `allowed`, the names a model family or a learner supports)."""
    spec, _, field = where.partition(".")
    check_choice(spec, field or "name", name, tuple(ACTIVATIONS) if allowed is None else tuple(allowed), fix)
    return ACTIVATIONS[name]
