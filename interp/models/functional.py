"""Many models of one config as one computation, for any model family: flat stacked weights and a
forward through `torch.func`.

`FlatLayout` lays each model's parameters out as one flat row, so M models are one tensor [M, P] and
each named parameter a view [M, *shape] of it: the vectorised optimizers (interp.train.optim) update a
whole sweep with a dozen elementwise operations, whatever the number of parameter tensors.

`FunctionalStack` runs M models of any registered family on their own inputs: one template module,
called with each model's weights in place of its parameters (as `torch.func.functional_call` does),
vectorised over the models by `torch.func.vmap` (a group of one calls the template directly, without
vmap's batching rules). Families
with a hand-written batched forward (interp.models.stacked for the MLP and the transformer) subclass it
and override `prepare` and `forward`; `ModelFamily.stacked_class` names it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.func import vmap

from interp.models.family import get_family


class FlatLayout:
    """Per-model parameters [(name, shape), ...] laid out as one flat row of P numbers."""

    def __init__(self, layout):
        layout = [(str(name), tuple(int(s) for s in shape)) for name, shape in layout]
        self.names = [n for n, _ in layout]
        self.shapes = [s for _, s in layout]
        self.sizes = [math.prod(s) for s in self.shapes]

    @property
    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        return list(zip(self.names, self.shapes))

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def stack(self, states: list[dict[str, Tensor]], device=None, dtype=None) -> Tensor:
        """The flat weights [M, P] (a leaf that requires grad) of M state dicts (other keys ignored)."""
        rows = [torch.cat([sd[n].detach().reshape(-1).to(dtype) for n in self.names]) for sd in states]
        return torch.stack(rows).to(device).requires_grad_(True)

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        """{name: [M, *shape]} views of the flat weights [M, P] (differentiable: one split per step)."""
        pieces = flat.split(self.sizes, dim=1)
        return {n: t.view(flat.shape[0], *shape) for n, t, shape in zip(self.names, pieces, self.shapes)}

    def state(self, flat: Tensor, i: int) -> dict[str, Tensor]:
        """Model i's weights as a state dict of copies."""
        return {n: v[0].clone() for n, v in self.views(flat.detach()[i : i + 1]).items()}


class FunctionalStack(FlatLayout):
    """The stacking, batched forward and unstacking of M models sharing `cfg` (any registered family)."""

    def __init__(self, cfg, device: torch.device, dtype: torch.dtype):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        self.template = get_family(cfg.family).model_class(cfg).to(device=device, dtype=dtype)
        if hasattr(self.template, "validate_inputs"):
            self.template.validate_inputs = False  # range checks read values back to the host: not under vmap
        self.template.requires_grad_(False)
        super().__init__((n, p.shape) for n, p in self.template.named_parameters())
        self._slots = [(self.template.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2]) for n in self.names]

    def stack(self, states: list[dict[str, Tensor]], device=None, dtype=None) -> Tensor:
        return super().stack(states, self.device if device is None else device, dtype or self.dtype)

    def model_at(self, flat: Tensor, i: int, copy: bool = True):
        """Model i as an ordinary module (a fresh one holding copies, or with copy=False the shared
        template holding views, valid until the weights change)."""
        model = get_family(self.cfg.family).model_class(self.cfg).to(self.device, self.dtype) if copy else self.template
        params = self.views(flat.detach()[i : i + 1])
        with torch.no_grad():
            for n, p in model.named_parameters():
                if copy:
                    p.copy_(params[n][0])
                else:
                    p.data = params[n][0]
        return model

    def prepare(self, inputs: Tensor) -> Tensor:
        """Inputs [M, B, ...] as `forward` reads them (here: unchanged)."""
        return inputs

    def forward(self, params: dict[str, Tensor], *inputs: Tensor) -> Tensor:
        """The M models' outputs [M, ...] on their own inputs [M, ...] (each input's first axis is the model)."""
        if next(iter(params.values())).shape[0] == 1:  # one model: no batching rules needed
            return self.call({n: v[0] for n, v in params.items()}, *(x[0] for x in inputs)).unsqueeze(0)
        return vmap(self.call)(params, *inputs)

    def call(self, params: dict[str, Tensor], *inputs: Tensor) -> Tensor:
        """The template run with `params` in place of its parameters (what torch.func.functional_call
        does, without its checks for tied weights and buffers: a few dictionary writes per call)."""
        saved = [module._parameters[name] for module, name in self._slots]
        try:
            for (module, name), n in zip(self._slots, self.names):
                module._parameters[name] = params[n]
            return self.template(*inputs)
        finally:
            for (module, name), p in zip(self._slots, saved):
                module._parameters[name] = p

    def activation_size(self) -> int:
        """Rough number of activation values per example and model (for sizing evaluation chunks):
        four times the widest parameter axis."""
        return 4 * max((max(s) for s in self.shapes if s), default=1)

    @classmethod
    def activation_size_of(cls, cfg) -> int | None:
        """`activation_size` from the config alone, where the family knows it (None: build a model to see)."""
        return None
