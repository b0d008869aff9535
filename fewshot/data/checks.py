"""Checks behind the `ValueError`s of the few-shot task distributions: the arguments of every
`sample` call and the constructor arguments the distributions share. Each raises a one-line
message naming the argument and saying what is allowed, in the envs' words
(`metarl.envs.checks`), and returns the value in canonical form when it is valid.
"""

from __future__ import annotations

from typing import Any

import torch

from metarl.envs.checks import as_finite, bounds_text, check_int, check_one_of, describe
from metarl.fewshot.data.base import SPLITS, Split


def check_sample(
    num_tasks: Any, shots: Any, queries: Any, generator: Any, split: Any
) -> tuple[int, int, int, Split]:
    """`(num_tasks, shots, queries, split)` as ints and a split if each is valid (counts >= 1,
    `split` one of `SPLITS`) and `generator` is a `torch.Generator`: every draw of a batch comes
    from the caller's generator, never from torch's global one."""
    counts = tuple(
        check_int(name, value, low=1)
        for name, value in (("num_tasks", num_tasks), ("shots", shots), ("queries", queries))
    )
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {describe(generator)}")
    return (*counts, check_one_of("split", split, SPLITS))


def check_interval(name: str, value: Any) -> tuple[float, float]:
    """`value` as `(low, high)` floats if it is a list or tuple of two finite numbers (not bools)
    with low < high: the support of a uniform draw."""
    pair = tuple(as_finite(v) for v in value) if isinstance(value, list | tuple) else ()
    if len(pair) != 2 or None in pair or not pair[0] < pair[1]:
        raise ValueError(
            f"{name} must be a pair (low, high) of finite numbers with low < high, got "
            f"{describe(value)}"
        )
    return pair[0], pair[1]


def check_fraction(name: str, value: Any) -> float:
    """`value` as a float if it is a number in the open interval (0, 1)."""
    number = as_finite(value)
    if number is None or not 0 < number < 1:
        raise ValueError(
            f"{name} must be a number {bounds_text(0, 1, low_open=True, high_open=True)}, got "
            f"{describe(value)}"
        )
    return number
