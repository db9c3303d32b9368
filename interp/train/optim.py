"""Optimizers over stacked parameters: M models updated at once, each with its own hyper-parameters.

Every parameter is a tensor [M, ...] (model first). Hyper-parameters are tensors [M] (float64) that
broadcast over the other dimensions, so one AdamW call updates a whole sweep of learning rates, weight
decays and betas. The update rules are torch.optim's (what each guarantees: `BatchedOptimizer`):

- adamw: decoupled weight decay p <- p (1 - lr wd), then Adam with bias correction (Loshchilov & Hutter).
- adam: L2 penalty added to the gradient (g <- g + wd p), then Adam.
- sgd: g <- g + wd p; b <- momentum b + g; p <- p - lr b (torch.optim.SGD, dampening 0, no Nesterov).
- muon: torch.optim.Muon on every matrix (Nesterov momentum as an EMA, five quintic Newton-Schulz
  iterations in bfloat16, lr scaled by sqrt(max(1, rows / cols)), decoupled weight decay), batched over
  models with one bmm per iteration; 3-D attention weights [heads, d_in, d_out] are orthogonalised per
  head; vectors (biases) take AdamW with the same lr, betas and weight decay, as the Muon authors advise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from interp.errors import CheckpointError

# torch.optim.Muon's defaults (Keller Jordan's quintic Newton-Schulz coefficients).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
MUON_EPS = 1e-7
ADAM_EPS = 1e-8


@torch.no_grad()
def newton_schulz(G: Tensor, steps: int = NS_STEPS, eps: float = MUON_EPS) -> Tensor:
    """Orthogonalise each matrix of G [..., A, B] with torch.optim.Muon's quintic Newton-Schulz
    iteration (bfloat16; X <- a X + (b X X^T + c (X X^T)^2) X after scaling X to unit Frobenius norm)."""
    a, b, c = NS_COEFFICIENTS
    lead = G.shape[:-2]
    X = G.reshape(-1, *G.shape[-2:]).bfloat16()  # [K, A, B]
    transposed = X.shape[-2] > X.shape[-1]
    if transposed:
        X = X.mT
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = torch.bmm(X, X.mT)  # [K, A, A]
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        X = torch.baddbmm(X, gram_update, X, beta=a)
    if transposed:
        X = X.mT
    return X.reshape(*lead, *X.shape[-2:])


def update_rule(kind: str, shape: tuple) -> str:
    """The update a parameter of this per-model shape gets under optimizer `kind`."""
    if kind != "muon":
        return kind
    return "muon" if len(shape) >= 2 else "adamw"  # matrices (and per-head matrices) vs vectors


def state_slots(kind: str, shape: tuple) -> tuple[str, ...]:
    """The optimizer state a parameter of this shape keeps under optimizer `kind`."""
    return ("momentum_buffer",) if update_rule(kind, shape) in ("muon", "sgd") else ("exp_avg", "exp_avg_sq")


def model_state_shapes(kind: str, layout) -> dict[str, tuple]:
    """{"exp_avg.W": shape, ...}: the per-model optimizer state `model_state` gives for parameters `layout`."""
    return {f"{slot}.{name}": tuple(shape) for name, shape in layout for slot in state_slots(kind, tuple(shape))}


class BatchedOptimizer:
    """One optimizer for M stacked models. `step(flat, grad, lr)` updates the flat weights [M, P] in
    place (see interp.models.stacked.StackedModels: each named parameter is a view [M, ...] of them).

    layout: [(name, per-model shape), ...] in the order of the flat weights. Hyper-parameters are per
    model: weight_decay [M], betas [M, 2], momentum [M]; lr [M] (float64) is given at each step.
    AdamW, Adam and SGD run a dozen elementwise operations on the whole [M, P] tensor; Muon
    orthogonalises each matrix (one bmm per Newton-Schulz iteration for all models).

    What it guarantees. AdamW, Adam and SGD: torch.optim's update rule, hyper-parameters and state
    (exp_avg, exp_avg_sq, momentum_buffer, the step count) for each model, whatever the other models
    of the stack. Not bit-for-bit equality: the per-model factors are tensors cast once to the weights'
    dtype where torch.optim passes Python floats, and a few products are grouped differently so that
    one kernel serves M models. Given the same gradients, max |ours - torch.optim| stays within a
    few eps (of the weights' dtype) times the largest weight, with no systematic drift over steps
    (tests/test_train_reference.py holds it to 8 eps over 1000 steps; bench/bench_reference.py
    measures it). A whole training run can still drift further in float32, because training
    amplifies rounding differences of any origin; interp.train.reference is the loop this is
    checked against. Muon: torch.optim.Muon's update on matrices, up to the bfloat16 rounding of
    Newton-Schulz (tests/test_train.py).
    """

    def __init__(self, kind: str, flat: Tensor, layout, *, weight_decay, betas, momentum, nesterov: bool = True):
        self.kind = kind
        self.layout = [(name, tuple(shape)) for name, shape in layout]
        self.sizes = [math.prod(shape) for _, shape in self.layout]
        f64 = dict(dtype=torch.float64, device=flat.device)
        self.weight_decay = torch.as_tensor(weight_decay, **f64).reshape(-1)  # [M]
        betas = torch.as_tensor(betas, **f64).reshape(-1, 2)
        self.beta1, self.beta2 = betas[:, 0].contiguous(), betas[:, 1].contiguous()  # [M]
        self.momentum = torch.as_tensor(momentum, **f64).reshape(-1)  # [M]
        self.nesterov = nesterov
        self._const: tuple | None = None  # (dtype, the factors that do not change from step to step)
        self.t = 0  # updates taken so far (the same for every model of the group)
        slots = {"adamw": ("exp_avg", "exp_avg_sq"), "adam": ("exp_avg", "exp_avg_sq"), "sgd": ("momentum_buffer",)}
        self.state = {s: torch.zeros_like(flat) for s in slots.get(kind, ("momentum_buffer", "exp_avg", "exp_avg_sq"))}

    def rule(self, shape: tuple) -> str:
        """The update a parameter of this per-model shape gets."""
        return update_rule(self.kind, shape)

    def _slots(self, shape: tuple) -> tuple[str, ...]:
        return state_slots(self.kind, shape)

    def _views(self, t: Tensor) -> dict[str, Tensor]:
        M = t.shape[0]
        return {name: v.view(M, *shape) for (name, shape), v in zip(self.layout, t.split(self.sizes, dim=1))}

    # ----- the update ------------------------------------------------------------------------
    def _constants(self, dtype: torch.dtype) -> dict[str, Tensor]:
        """The per-model factors [M, 1] that stay the same from step to step, computed in float64 and
        cast once to the weights' dtype (kept until the models change)."""
        if self._const is None or self._const[0] != dtype:
            rows = {
                "wd": self.weight_decay,
                "one_minus_beta1": 1 - self.beta1,
                "beta2": self.beta2,
                "one_minus_beta2": 1 - self.beta2,
                "momentum": self.momentum,
                "one_minus_momentum": 1 - self.momentum,
            }
            packed = torch.stack(list(rows.values())).to(dtype).unsqueeze(-1)  # [K, M, 1]
            self._const = (dtype, dict(zip(rows, packed.unbind(0))))
        return self._const[1]

    def _scalars(self, lr: Tensor, dtype: torch.dtype) -> dict[str, Tensor]:
        """This step's per-model factors [M, 1], computed in float64 (as torch does with Python
        floats) and cast once to the weights' dtype (SGD needs the learning rate alone)."""
        t = self.t
        if self.kind == "sgd":
            rows = {"lr": lr}
        else:
            rows = {
                "decay": 1 - lr * self.weight_decay,
                "step_size": lr / (1 - self.beta1**t),
                "bc2_sqrt": (1 - self.beta2**t).sqrt(),
                "lr": lr,
            }
        packed = torch.stack(list(rows.values())).to(dtype).unsqueeze(-1)  # [K, M, 1]
        return {**self._constants(dtype), **dict(zip(rows, packed.unbind(0)))}

    @staticmethod
    def _adam(p, g, exp_avg, exp_avg_sq, k, decoupled: bool):
        if decoupled:
            p.mul_(k["decay"])
        else:
            g = g + p * k["wd"]
        exp_avg.lerp_(g, k["one_minus_beta1"])
        exp_avg_sq.mul_(k["beta2"]).addcmul_(g, g * k["one_minus_beta2"])
        denom = exp_avg_sq.sqrt().div_(k["bc2_sqrt"]).add_(ADAM_EPS)
        p.sub_(exp_avg.div(denom).mul_(k["step_size"]))

    @torch.no_grad()
    def step(self, flat: Tensor, grad: Tensor, lr: Tensor) -> None:
        self.t += 1
        k = self._scalars(lr, flat.dtype)
        st = self.state
        if self.kind in ("adamw", "adam"):
            self._adam(flat, grad, st["exp_avg"], st["exp_avg_sq"], k, decoupled=self.kind == "adamw")
        elif self.kind == "sgd":
            st["momentum_buffer"].mul_(k["momentum"]).add_(grad + flat * k["wd"])
            flat.sub_(st["momentum_buffer"] * k["lr"])
        else:
            self._muon_step(flat, grad, k)

    def _muon_step(self, flat: Tensor, grad: Tensor, k: dict[str, Tensor]) -> None:
        params, grads = self._views(flat), self._views(grad)
        bufs, m1, m2 = (self._views(self.state[s]) for s in ("momentum_buffer", "exp_avg", "exp_avg_sq"))
        for name, shape in self.layout:
            p, g = params[name], grads[name]
            kk = {key: v.view((-1,) + (1,) * len(shape)) for key, v in k.items()}  # [M, 1, ...]
            if self.rule(shape) == "adamw":
                self._adam(p, g, m1[name], m2[name], kk, decoupled=True)
                continue
            buf = bufs[name]
            buf.lerp_(g, kk["one_minus_momentum"])
            update = g.lerp(buf, kk["momentum"]) if self.nesterov else buf
            ortho = newton_schulz(update)
            rows, cols = shape[-2], shape[-1]  # torch.optim.Muon's shape rule, per matrix
            p.mul_(kk["decay"])
            p.sub_(ortho * (kk["lr"] * math.sqrt(max(1.0, rows / cols))))

    # ----- state: per model, for checkpoints and for regrouping ----------------------------------
    def model_state(self, i: int) -> dict[str, Tensor]:
        """Optimizer state of model i as {"exp_avg.U": ..., ...} (views, not copies)."""
        out = {}
        for slot, buf in self.state.items():
            views = self._views(buf[i : i + 1])
            for name, shape in self.layout:
                if slot in self._slots(shape):
                    out[f"{slot}.{name}"] = views[name][0]
        return out

    def load_model_states(self, states: list[dict[str, Tensor]], t: int, where: list | None = None) -> None:
        """Replace the state by per-model states (one dict per model, as `model_state` gives); CheckpointError
        naming `where[k]` (the file model k's state came from) when one lacks a tensor or has a wrong shape."""
        for slot, buf in self.state.items():
            views = self._views(buf)
            for name, shape in self.layout:
                if slot in self._slots(shape):
                    key = f"{slot}.{name}"
                    for k, s in enumerate(states):
                        if key not in s or tuple(s[key].shape) != tuple(shape):
                            got = "is missing" if key not in s else f"has shape {tuple(s[key].shape)}"
                            raise CheckpointError(
                                f"{where[k] if where else f'model {k}'}: the optimizer state {key!r} {got}; expected "
                                f"shape {tuple(shape)} for {self.kind}. The file is damaged: start over with "
                                "overwrite=True (interp-train --overwrite), or load the run's checkpoints with load_run."
                            )
                    views[name].copy_(torch.stack([s[key].to(buf.device, buf.dtype) for s in states]))
        self.t = t

    def select(self, keep: Tensor) -> None:
        """Keep only the models at indices `keep` (e.g. after some diverged)."""
        for slot in self.state:
            self.state[slot] = self.state[slot].index_select(0, keep)
        for attr in ("weight_decay", "beta1", "beta2", "momentum"):
            setattr(self, attr, getattr(self, attr).index_select(0, keep))
        self._const = None
