"""HookedTransformer's calling surface on grokscope's models: `return_type` and the loss, and the
tokens helpers (`to_tokens`, `to_str_tokens`, `to_string`, `to_single_token`).

`forward(input, return_type="logits" | "loss" | "both" | None, loss_per_token=False)` means what it
means on a HookedTransformer: the logits, the cross-entropy loss, `Output(logits, loss)`, or nothing.
HookedTransformer's loss is next-token prediction at every position; these models are trained on the
answer alone (Nanda et al. 2023: `a b =` -> c), so the loss is the cross-entropy of the answer
position's logits against the answer, which the input carries as its last column (`a b = c`: tokens
[batch, n_ctx + 1] on the transformer, triples (a, b, c) [batch, 3] on the MLP) or `labels=` gives.
`loss_per_token=True` keeps one loss per sequence, [batch, 1] on the transformer (its one predicted
position, where HookedTransformer's is [batch, pos - 1]) and [batch] on the MLP.

There is no tokenizer: a problem is written as text with its numbers, `"3 5 ="`, `"3 + 5 = 8"` or
`"3 5"`, and `to_tokens` turns it (or a list of them, or rows (a, b) / (a, b, c)) into the model's
input.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import torch
import torch.nn.functional as F

from interp.errors import ShapeError, SpecError

RETURN_TYPES = ("logits", "loss", "both", None)
EQ = "="
# What may stand between the numbers of a written problem: an operator and the '=' sign.
PROBLEM_PATTERN = re.compile(r"\s*(\d+|=|[-+*/^x·∘%])\s*")
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class Output(NamedTuple):
    """What `return_type="both"` returns, as HookedTransformer's `Output`."""

    logits: torch.Tensor
    loss: torch.Tensor


def check_return_type(return_type, where: str) -> None:
    """A SpecError for a `return_type` outside TransformerLens's choices."""
    if return_type not in RETURN_TYPES:
        raise SpecError(where, "return_type", return_type, "'logits', 'loss', 'both' or None (as TransformerLens)")


def check_labels(labels, batch: int, p: int, device) -> torch.Tensor:
    """`labels` as a long tensor [batch] of answers in [0, p), or a ShapeError."""
    labels = torch.as_tensor(labels, device=device)
    if labels.dtype not in INT_DTYPES or labels.shape != (batch,):
        raise ShapeError(
            f"labels must be integer answers of shape [{batch}] (one per example), got "
            f"{labels.dtype} {list(labels.shape)}."
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= p):
        raise ShapeError(f"labels must lie in [0, {p}), got [{int(labels.min())}, {int(labels.max())}].")
    return labels.long()


def answer_loss(answer_logits: torch.Tensor, answers: torch.Tensor, per_token: bool) -> torch.Tensor:
    """Cross-entropy of the answer logits [..., p] against answers [...]: the mean, or [...] per
    answer (computed as TransformerLens's lm_cross_entropy_loss: -log_softmax at the answer)."""
    log_probs = F.log_softmax(answer_logits, dim=-1)
    per_answer = -log_probs.gather(-1, answers[..., None])[..., 0]
    return per_answer if per_token else per_answer.mean()


def model_output(logits, answer_logits, answers, return_type, loss_per_token: bool, where: str, how_to_pass: str):
    """What forward returns for `return_type`, given the logits, the answer position's logits [..., p]
    and the answers [...] (None when the input carries none and no labels were given)."""
    if return_type == "logits":
        return logits
    if answers is None:
        raise SpecError(
            where, "return_type", return_type, "'logits' or None here: the input carries no answers", how_to_pass
        )
    loss = answer_loss(answer_logits, answers, loss_per_token)
    return loss if return_type == "loss" else Output(logits, loss)


def check_unsupported(where: str, **options) -> None:
    """A SpecError for each HookedTransformer forward option these models cannot honour (given a value
    other than None / False)."""
    reasons = {
        "prepend_bos": "there is no BOS token: the model reads `a b =` as it was trained",
        "shortformer_pos_embed": "the model uses standard positional embeddings",
        "attention_mask": "every input has the same length (no padding)",
        "past_kv_cache": "there is no text to generate",
    }
    for name, value in options.items():
        if value is not None and value is not False:
            raise SpecError(where, name, value, "None (the default)", f"Not supported: {reasons[name]}.")


def parse_problem(text: str) -> list[int]:
    """The numbers of a written problem: "3 + 5 = 8" -> [3, 5, 8]; "3 5 =" -> [3, 5]."""
    parts, pos = [], 0
    while pos < len(text):
        m = PROBLEM_PATTERN.match(text, pos)
        if m is None or m.end() == pos:
            raise SpecError(
                "to_tokens", "input", text, "a problem written with its numbers, such as '3 5 =', '3 + 5 = 8' or '3 5'"
            )
        tok, pos = m.group(1), m.end()
        if tok.isdigit():
            parts.append(int(tok))
        elif tok == EQ:
            parts.append(EQ)
    shape = ["n" if t != EQ else EQ for t in parts]
    if shape not in (["n", "n"], ["n", "n", EQ], ["n", "n", EQ, "n"]):
        raise SpecError(
            "to_tokens",
            "input",
            text,
            "two operands, then optionally '=' and the answer: '3 5 =', '3 + 5 = 8' or '3 5'",
        )
    return [t for t in parts if t != EQ]


def problem_rows(input) -> torch.Tensor:
    """Rows (a, b) or (a, b, c) [batch, 2 or 3] of a written problem, a list of them, or integer rows."""
    if isinstance(input, str):
        input = [input]
    if isinstance(input, (list, tuple)) and input and all(isinstance(s, str) for s in input):
        rows = [parse_problem(s) for s in input]
        if len({len(r) for r in rows}) != 1:
            raise ShapeError(
                "to_tokens: the problems in one batch must all carry an answer or none do "
                f"(got rows of lengths {sorted({len(r) for r in rows})})."
            )
        return torch.tensor(rows, dtype=torch.long)
    rows = torch.as_tensor(input)
    if rows.dtype not in INT_DTYPES:
        raise SpecError(
            "to_tokens",
            "input",
            type(input).__name__,
            "a problem as text ('3 5 ='), a list of them, or integer rows (a, b) / (a, b, c)",
        )
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] not in (2, 3):
        raise ShapeError(f"to_tokens expects rows (a, b) or (a, b, c): [batch, 2 or 3], got {list(rows.shape)}.")
    return rows.long()


class TokensMixin:
    """TransformerLens's tokens helpers over `problem_tokens(rows)` and `token_strings(tokens)`, which
    each model defines."""

    tokenizer = None  # as a HookedTransformer built without one: problems are read by to_tokens

    def to_tokens(self, input, prepend_bos=None, padding_side=None, move_to_device: bool = True, truncate: bool = True):
        """The model's input for problems written as text (`"3 5 ="`, `"3 + 5 = 8"`, a list of them) or
        given as rows (a, b) / (a, b, c), as HookedTransformer.to_tokens: [batch, pos]. A problem with
        its answer gets the answer as its last column, which `return_type="loss"` reads."""
        check_unsupported("to_tokens", prepend_bos=prepend_bos)
        rows = problem_rows(input)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= self.p):
            raise ShapeError(
                f"to_tokens: operands and answers must lie in [0, {self.p}), got [{int(rows.min())}, {int(rows.max())}]."
            )
        if move_to_device:
            rows = rows.to(next(self.parameters()).device)
        tokens = self.problem_tokens(rows[:, :2])
        return tokens if rows.shape[1] == 2 else torch.cat([tokens, rows[:, 2:]], dim=1)

    def to_str_tokens(self, input, prepend_bos=None, padding_side=None) -> list:
        """Each token as a string: `to_str_tokens("3 5 =")` -> ["3", "5", "="]; tokens [pos] or
        [1, pos]; a list gives one list per item, as HookedTransformer.to_str_tokens."""
        if isinstance(input, list) and not (input and isinstance(input[0], int)):
            return [self.to_str_tokens(x, prepend_bos, padding_side) for x in input]
        tokens = self.to_tokens(input, prepend_bos=prepend_bos)[0] if isinstance(input, str) else torch.as_tensor(input)
        tokens = tokens.squeeze()
        if tokens.ndim == 0:
            tokens = tokens[None]
        if tokens.ndim != 1:
            raise ShapeError(f"to_str_tokens expects tokens [pos] or [1, pos], got {list(tokens.shape)}.")
        return self.token_strings(tokens.tolist())

    def to_string(self, tokens):
        """Tokens [pos] -> "3 5 =", [batch, pos] -> a list of strings, as HookedTransformer.to_string."""
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 2:
            return [" ".join(self.token_strings(row.tolist())) for row in tokens]
        if tokens.ndim > 2:
            raise ShapeError(f"to_string expects tokens [pos] or [batch, pos], got {list(tokens.shape)}.")
        return " ".join(self.token_strings(tokens.reshape(-1).tolist()))

    def to_single_token(self, string: str) -> int:
        """The id of one number or '=' (a number is its residue, as an answer class), as
        HookedTransformer.to_single_token."""
        s = str(string).strip()
        if s == EQ and getattr(self.cfg, "eq_token", False):
            return self.cfg.d_vocab - 1
        if not s.isdigit() or int(s) >= self.p:
            eq = " or '='" if getattr(self.cfg, "eq_token", False) else ""
            raise SpecError("to_single_token", "string", string, f"one residue in [0, {self.p}){eq}")
        return int(s)
