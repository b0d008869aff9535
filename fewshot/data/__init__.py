"""The few-shot task distributions (issue 19) and their registry: `fewshot/sinusoid` (sine
regression, Finn et al. 2017), `fewshot/digits` (N-way K-shot on scikit-learn's 8×8 digits) and
`fewshot/images` (N-way K-shot on a local image folder such as Omniglot or mini-ImageNet, given
by `{"root": ...}`). The CLI takes either the full id or the short name (`--env digits`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from metarl.envs.checks import describe
from metarl.fewshot.data.base import FewShotBatch, Split, TaskDistribution
from metarl.fewshot.data.digits import Digits
from metarl.fewshot.data.images import ImageFolder
from metarl.fewshot.data.sinusoid import Sinusoid

__all__ = [
    "DESCRIPTIONS",
    "PREFIX",
    "TASK_DISTRIBUTIONS",
    "Digits",
    "FewShotBatch",
    "ImageFolder",
    "Sinusoid",
    "Split",
    "TaskDistribution",
    "is_fewshot_task",
    "make_tasks",
    "resolve_task_id",
]

PREFIX = "fewshot/"
"""What a full few-shot task id starts with: `fewshot/<name>`."""

TASK_DISTRIBUTIONS: dict[str, type] = {
    "sinusoid": Sinusoid,
    "digits": Digits,
    "images": ImageFolder,
}
"""Each few-shot task distribution's class, by short name."""

DESCRIPTIONS: dict[str, str] = {
    "sinusoid": "sine regression y = A·sin(x − φ), A ~ U[0.1, 5], φ ~ U[0, π] (Finn et al. 2017)",
    "digits": "N-way K-shot on scikit-learn's 8×8 digits, rotations as classes, 12 of 40 held out",
    "images": 'N-way K-shot on a local image folder (Omniglot, mini-ImageNet): {"root": PATH}',
}
"""A one-line description of each distribution, by short name (`metarl list`)."""


def resolve_task_id(name: str) -> str:
    """The full id `fewshot/<name>` of `name` (a full id or a short name); anything else is a
    one-line `ValueError` listing the valid names."""
    short = name.removeprefix(PREFIX) if isinstance(name, str) else None
    if short not in TASK_DISTRIBUTIONS:
        names = ", ".join(PREFIX + short for short in TASK_DISTRIBUTIONS)
        raise ValueError(
            f"unknown few-shot task {describe(name)}; the few-shot tasks are {names} (or their "
            f"short names {', '.join(TASK_DISTRIBUTIONS)})"
        )
    return PREFIX + short


def is_fewshot_task(name: str) -> bool:
    """Whether `name` is a few-shot task (full id or short name)."""
    return isinstance(name, str) and name.removeprefix(PREFIX) in TASK_DISTRIBUTIONS


def make_tasks(task_id: str, kwargs: Mapping[str, Any] | None = None) -> TaskDistribution:
    """The distribution `task_id` (full id or short name) built with `kwargs`: an unknown or
    missing kwarg is a one-line `ValueError` naming the valid ones, and so is a bad value (the
    distribution's own check)."""
    full_id = resolve_task_id(task_id)
    cls = TASK_DISTRIBUTIONS[full_id.removeprefix(PREFIX)]
    kwargs = {} if kwargs is None else kwargs
    signature = inspect.signature(cls)
    valid = ", ".join(signature.parameters)
    if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
        raise ValueError(
            f"bad kwargs for {full_id}: they must be a mapping of names to values, got "
            f"{describe(kwargs)}; valid kwargs: {valid}"
        )
    try:
        signature.bind(**kwargs)
    except TypeError as error:  # an unknown name, a missing required one
        raise ValueError(f"bad kwargs for {full_id}: {error}; valid kwargs: {valid}") from None
    return cls(**kwargs)
