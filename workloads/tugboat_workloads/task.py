"""The serving task: prompts are space-separated token ids of an arithmetic progression mod the
vocabulary size; the right continuation keeps the progression going.

Decides prompt syntax and what the correct answer is. Pure and torch-free: the serving runtime
imports it next to ONNX Runtime only.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence


class PromptError(ValueError):
    """A prompt is not a list of in-vocabulary integer token ids."""


def encode_prompt(text: str, vocab_size: int | None = None) -> list[int]:
    """"3 7 11" -> [3, 7, 11]. Raises PromptError naming the offending word."""
    if not isinstance(text, str):
        raise PromptError(f"prompt must be a string, got {type(text).__name__}")
    words = text.split()
    if not words:
        raise PromptError("prompt is empty: expected space-separated integers such as '3 7 11'")
    tokens = []
    for position, word in enumerate(words):
        try:
            token = int(word, 10)
        except ValueError:
            raise PromptError(f"prompt word {position} ({word!r}) is not an integer") from None
        if token < 0 or (vocab_size is not None and token >= vocab_size):
            limit = f"[0, {vocab_size})" if vocab_size is not None else ">= 0"
            raise PromptError(f"prompt word {position} ({token}) is outside the vocabulary {limit}")
        tokens.append(token)
    return tokens


def decode_tokens(tokens: Iterable[int]) -> str:
    """[15, 19] -> "15 19"."""
    return " ".join(str(int(token)) for token in tokens)


def progression_stride(tokens: Sequence[int], vocab_size: int) -> int | None:
    """The common difference mod vocab_size, or None when fewer than two tokens or not constant."""
    tokens = _as_token_ids(tokens, vocab_size)
    if len(tokens) < 2:
        return None
    stride = (tokens[1] - tokens[0]) % vocab_size
    for previous, current in zip(tokens[1:], tokens[2:], strict=False):
        if (current - previous) % vocab_size != stride:
            return None
    return stride


def expected_continuation(prompt_tokens: Sequence[int], n: int, vocab_size: int) -> list[int] | None:
    """The next n tokens of the progression, or None when the prompt is not a progression."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    stride = progression_stride(prompt_tokens, vocab_size)
    if stride is None:
        return None
    last = operator.index(prompt_tokens[-1])
    return [(last + stride * step) % vocab_size for step in range(1, n + 1)]


def _as_token_ids(tokens: Sequence[int], vocab_size: int) -> list[int]:
    """Plain ints (numpy integers from a runtime are welcome); anything else is an error."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
    ids = []
    for position, token in enumerate(tokens):
        try:
            value = None if isinstance(token, bool) else operator.index(token)
        except TypeError:
            value = None
        if value is None or not 0 <= value < vocab_size:
            raise ValueError(f"token {position} ({token!r}) is not an id in [0, {vocab_size})")
        ids.append(value)
    return ids
