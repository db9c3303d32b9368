"""Hidden-layer activations by name, shared by the MLP and the transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "relu": F.relu,
    "quad": torch.square,  # phi(x) = x^2 (Gromov; Doshi et al.)
    "gelu": F.gelu,
    "silu": F.silu,
    "rev_relu": lambda x: F.relu(-x),  # max(0, -x), the coexistence paper's reverse ReLU
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # TransformerLens's gelu_new
}
