"""N-way K-shot classification on scikit-learn's 8×8 handwritten digits (`load_digits`: 1797
images shipped with scikit-learn, nothing downloaded), a few-shot benchmark small enough for a
CPU and a test suite. With rotations each digit gives four classes (0°, 90°, 180°, 270°), the
Omniglot convention (Santoro et al. 2016, Vinyals et al. 2016): 40 classes, of which those of
the held-out digits are the test split, so that no test class is seen in meta-training.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from metarl.envs.checks import as_int, check_bool, describe
from metarl.fewshot.data.classes import ClassificationTasks

DIGITS = tuple(range(10))
"""The base classes: the digits 0..9."""


class Digits(ClassificationTasks):
    """N-way K-shot tasks on the 8×8 digits (`input_shape` (1, 8, 8), pixels in [0, 1]); the
    training split holds the classes of `train_digits`, the test split those of the others."""

    def __init__(
        self,
        *,
        ways: int = 5,
        rotations: bool = True,
        train_digits: Sequence[int] = (0, 1, 2, 3, 4),
    ) -> None:
        """`ways`-way tasks (2 <= ways <= the smaller split's class count) over the digits, with
        rotated digits as classes of their own if `rotations`; `train_digits` (distinct digits,
        a non-empty proper subset of 0..9) are meta-training's. Bad values are one-line
        `ValueError`s."""
        self.train_digits = _check_digits(train_digits)
        """The digits whose classes are the training split's, ascending."""
        images, counts = _load_digits()
        test_digits = [d for d in DIGITS if d not in self.train_digits]
        super().__init__(
            images,
            counts,
            [str(d) for d in DIGITS],
            {"train": self.train_digits, "test": test_digits},
            ways=ways,
            rotations=check_bool("rotations", rotations),
            source="the digits",
        )


def _check_digits(value: Any) -> tuple[int, ...]:
    """`value` as an ascending tuple of digits if it is a list or tuple of distinct integers in
    0..9 that is neither empty nor all ten."""
    digits = [as_int(v) for v in value] if isinstance(value, list | tuple) else [None]
    if (
        None in digits
        or not set(digits) <= set(DIGITS)
        or len(set(digits)) != len(digits)
        or not 0 < len(digits) < len(DIGITS)
    ):
        raise ValueError(
            "train_digits must be a non-empty proper subset of the digits 0..9 (distinct "
            f"integers), got {describe(value)}"
        )
    return tuple(sorted(digits))


@functools.cache
def _load_digits() -> tuple[Tensor, list[int]]:
    """The digits once per process: images `[1797, 1, 8, 8]` float32 in [0, 1] (pixel values
    0..16 scaled), sorted by digit (stably), and the number of images of each digit."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the digits task distribution needs scikit-learn (pip install scikit-learn)"
        ) from error
    data = load_digits()
    labels = torch.as_tensor(data.target, dtype=torch.int64)
    order = labels.argsort(stable=True)
    images = torch.as_tensor(data.images, dtype=torch.float32)[order, None] / 16.0
    return images, torch.bincount(labels, minlength=len(DIGITS)).tolist()
