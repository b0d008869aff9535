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
from metarl.fewshot.data.checks import check_fraction
from metarl.fewshot.data.classes import ROTATIONS, ClassificationTasks

DIGITS = tuple(range(10))
"""The base classes: the digits 0..9."""


SPLITS_BY = ("classes", "digits")
"""How `Digits` splits its classes into meta-training and held-out ones."""

SPLIT_SEED = 0
"""Seed of the fixed permutation that deals the classes to the splits with `split='classes'`."""


class Digits(ClassificationTasks):
    """N-way K-shot tasks on the 8×8 digits (`input_shape` (1, 8, 8), pixels in [0, 1]).

    `split='classes'` (the default) deals the 40 (digit, rotation) classes to the splits by a
    fixed permutation, `test_fraction` of them held out: a held-out class is never seen in
    meta-training, though its digit may be, turned otherwise. `split='digits'` holds out whole
    digits (those not in `train_digits`), the stricter split of Omniglot's characters; with five
    training digits it leaves meta-training 20 classes, too few to learn features that beat raw
    pixels on the others (measured while building it: ProtoNets, 1-shot, 500 iterations, 80.9%
    against 80.5% for the scratch baseline and 81.4% for prototypes of the raw pixels)."""

    def __init__(
        self,
        *,
        ways: int = 5,
        rotations: bool = True,
        split: str = "classes",
        test_fraction: float = 0.3,
        train_digits: Sequence[int] | None = None,
        shift: int = 0,
    ) -> None:
        """`ways`-way tasks (2 <= ways <= the smaller split's class count) over the digits, with
        rotated digits as classes of their own if `rotations`, split as `split` says
        (`test_fraction`, in (0, 1), with 'classes'; `train_digits`, distinct digits, a
        non-empty proper subset of 0..9, default 0..4, with 'digits'), each drawn image moved by
        up to `shift` pixels (`ClassificationTasks`). Bad values are one-line `ValueError`s."""
        if split not in SPLITS_BY:
            raise ValueError(f"split must be 'classes' or 'digits', got {describe(split)}")
        if split == "classes" and train_digits is not None:
            raise ValueError("train_digits goes with split 'digits', not 'classes'")
        rotations = check_bool("rotations", rotations)
        self.train_digits = _check_digits((0, 1, 2, 3, 4) if train_digits is None else train_digits)
        """With split 'digits': the digits whose classes are the training split's, ascending."""
        images, counts = _load_digits()
        test_digits = [d for d in DIGITS if d not in self.train_digits]
        class_splits = None
        if split == "classes":
            fraction = check_fraction("test_fraction", test_fraction)
            classes = len(DIGITS) * (ROTATIONS if rotations else 1)
            order = torch.randperm(classes, generator=torch.Generator().manual_seed(SPLIT_SEED))
            held_out = max(1, round(fraction * classes))
            class_splits = {"train": order[held_out:].tolist(), "test": order[:held_out].tolist()}
        super().__init__(
            images,
            counts,
            [str(d) for d in DIGITS],
            {"train": self.train_digits, "test": test_digits},
            ways=ways,
            rotations=rotations,
            source="the digits",
            class_splits=class_splits,
            shift=shift,
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
