"""What activation patching compares: clean and corrupted pairs, their answers, and the metric of
the answer logits (per example, or the user's function)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from interp.errors import ShapeError, SpecError

__all__ = [
    "CORRUPTIONS",
    "METRICS",
    "answers",
    "corrupt_pairs",
]

CORRUPTIONS = ("a", "b", "both")
METRICS = ("logit_diff", "logprob", "accuracy")
REDUCTIONS = ("scalar", "mean", "none")  # TransformerLens 4's `reduce`
# What a metric function reads: the answer position's logits [batch, p] ("answer"), the model's own
# output [batch, pos, d_vocab_out] as TransformerLens's patching passes it ("model"), or whichever it
# reads ("auto": the answer logits first).
METRIC_LOGITS = ("auto", "answer", "model")
LOGITS_SHAPES = {"answer": "the answer logits [batch, p]", "model": "the model's logits [batch, pos, d_vocab_out]"}


def pair_index_grid(task) -> torch.Tensor:
    """[p, p] long: the row of (a, b) in task.inputs, -1 where the pair is not in the table."""
    p = task.p
    grid = torch.full((p, p), -1, dtype=torch.long)
    grid[task.inputs[:, 0], task.inputs[:, 1]] = torch.arange(len(task.inputs))
    return grid


def corrupt_pairs(task, pairs: torch.Tensor, corruption: str = "a", seed: int = 0) -> torch.Tensor:
    """Corrupted copies of `pairs` [B, 2]: "a" replaces a by a random other residue, "b" replaces b,
    "both" replaces both; every corrupted pair is in the task's table (e.g. b != 0 for division)."""
    if corruption not in CORRUPTIONS:
        raise SpecError(
            "activation_patch", "corruption", corruption, f"one of {list(CORRUPTIONS)} or clean_pairs/corrupted_pairs"
        )
    grid = pair_index_grid(task)
    p = task.p
    gen = torch.Generator().manual_seed(seed)
    out = pairs.clone()
    cols = {"a": [0], "b": [1], "both": [0, 1]}[corruption]
    for col in cols:
        todo = torch.ones(len(pairs), dtype=torch.bool)
        for _ in range(100):  # resample the few draws that leave the table (b = 0 for division)
            shift = torch.randint(1, p, (int(todo.sum()),), generator=gen)
            out[todo, col] = (pairs[todo, col] + shift) % p
            todo = grid[out[:, 0], out[:, 1]] < 0
            if not todo.any():
                break
        else:
            raise SpecError(
                "activation_patch", "corruption", corruption, "a corruption that keeps pairs inside the task's table"
            )
    return out


def answers(task, pairs: torch.Tensor) -> torch.Tensor:
    """[B] the task's true answer of each pair [B, 2] (a ShapeError for a pair outside its table)."""
    rows = pair_index_grid(task)[pairs[:, 0], pairs[:, 1]]
    if (rows < 0).any():
        bad = pairs[rows < 0][0].tolist()
        raise ShapeError(
            f"the pair {bad} is not in the task's table ({task.spec.op} mod {task.p}); pass pairs from task.inputs."
        )
    return task.labels[rows]


def patch_pairs(task, clean_pairs, corrupted_pairs, corruption: str, split: str, n_pairs: int, seed: int):
    """(clean [B, 2], corrupted [B, 2], corruption name): the user's pairs, or n_pairs drawn from the
    task's `split` (seeded) with `corruption` applied."""
    if (clean_pairs is None) != (corrupted_pairs is None):
        raise SpecError(
            "activation_patch",
            "clean_pairs",
            "one of clean_pairs/corrupted_pairs",
            "both, or neither (and a corruption)",
        )
    if clean_pairs is not None:
        clean = torch.as_tensor(clean_pairs, dtype=torch.long).cpu()
        corrupted = torch.as_tensor(corrupted_pairs, dtype=torch.long).cpu()
        if clean.ndim != 2 or clean.shape[1] != 2 or clean.shape != corrupted.shape:
            raise ShapeError(
                f"clean_pairs and corrupted_pairs must both be [batch, 2], got {list(clean.shape)} and {list(corrupted.shape)}."
            )
        return clean, corrupted, "user"
    if task is None:
        raise SpecError(
            "activation_patch",
            "task",
            None,
            "a Task (to draw pairs and corrupt them), or clean_pairs and corrupted_pairs",
        )
    pool = {"all": task.inputs, "train": task.train_inputs, "test": task.test_inputs}.get(split)
    if pool is None:
        raise SpecError("activation_patch", "split", split, "'all', 'train' or 'test'")
    gen = torch.Generator().manual_seed(seed)
    clean = pool[torch.randperm(len(pool), generator=gen)[: max(1, int(n_pairs))]]
    return clean, corrupt_pairs(task, clean, corruption, seed=seed + 1), corruption


def builtin_metric(name: str, clean_answer: torch.Tensor, corrupted_answer: torch.Tensor) -> Callable:
    """A metric of logits [..., B, p] -> [..., B], per example."""
    ar = torch.arange(len(clean_answer), device=clean_answer.device)
    if name == "logit_diff":
        return lambda lg: (lg[..., ar, clean_answer] - lg[..., ar, corrupted_answer]).float()
    if name == "logprob":
        return lambda lg: F.log_softmax(lg.float(), dim=-1)[..., ar, clean_answer]
    if name == "accuracy":
        return lambda lg: (lg.argmax(-1) == clean_answer).float()
    raise SpecError("activation_patch", "metric", name, f"one of {list(METRICS)} or a function of logits [batch, p]")


def user_metric(fn: Callable, per_example: bool, event_ndim: int = 1) -> Callable:
    """The user's function of logits [B, p] (event_ndim=1; [B, pos, p] with event_ndim=2) -> a scalar,
    or [B] when per_example, applied to logits [B, ...] or [k, B, ...] (-> [] / [B], or [k] / [k, B]):
    one torch.func.vmap call over the k variants, or a loop over them when fn is not vmappable."""
    tail = "[batch]" if per_example else "a scalar"
    shape = "[batch, p]" if event_ndim == 1 else "[batch, pos, p]"

    def one(lg: torch.Tensor) -> torch.Tensor:
        out = torch.as_tensor(fn(lg), dtype=torch.float32, device=lg.device)
        return out if per_example else out.reshape(())

    def batched(lg: torch.Tensor) -> torch.Tensor:
        if lg.ndim == event_ndim + 1:
            out = one(lg)
        else:
            try:
                out = torch.func.vmap(fn)(lg)
            except Exception:  # e.g. .item() inside fn; the loop is over variants, not forward passes
                out = torch.stack([one(x) for x in lg])
        out = torch.as_tensor(out).float()
        expected = lg.shape[:-event_ndim] if per_example else lg.shape[: -event_ndim - 1]
        if out.shape != expected:
            raise ShapeError(
                f"the patching metric must return {tail} for logits {shape} (reduce='scalar' wants a scalar, "
                f"'mean' and 'none' one value per example), got shape {list(out.shape[lg.ndim - event_ndim - 1 :])}."
            )
        return out

    return batched


def resolve_user_metric(fn: Callable, per_example: bool, metric_logits: str, examples: dict) -> tuple[Callable, str]:
    """(metric over logits [..., B, p] or [..., B, pos, p], "answer" or "model"): the user's function,
    tried on `examples` ({"answer": logits [B, p], "model": logits [B, pos, p]}) in the order
    `metric_logits` allows; a ShapeError naming the shapes tried and what each call raised."""
    if metric_logits not in METRIC_LOGITS:
        raise SpecError("activation_patch", "metric_logits", metric_logits, f"one of {list(METRIC_LOGITS)}")
    order = ("answer", "model") if metric_logits == "auto" else (metric_logits,)
    failures = []
    for mode in order:
        candidate = user_metric(fn, per_example, examples[mode].ndim - 1)
        try:
            candidate(examples[mode])
        except Exception as exc:  # the user's function: any error means it cannot read this shape
            failures.append(f"on {LOGITS_SHAPES[mode]} it raised {type(exc).__name__}: {exc}")
            continue
        return candidate, mode
    raise ShapeError(
        "activation_patch could not apply the metric: "
        + "; ".join(failures)
        + ". It calls metric(logits) with the answer position's logits [batch, p] (metric_logits='answer') or "
        "with the model's logits [batch, pos, d_vocab_out] as TransformerLens's patching does "
        "(metric_logits='model'); write the function for one of them."
    )
