"""Checks behind every `ValueError` of the envs: task values and constructor arguments.

Each returns the value in canonical form or raises a `ValueError` that names the field or
argument and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def check_task_fields(task: Any, fields: Sequence[str]) -> None:
    """Raise `ValueError` unless `task` is a mapping with exactly the keys `fields`."""
    if not isinstance(task, Mapping):
        raise ValueError(f"a task must be a dict with the fields {list(fields)}, got {task!r}")
    missing = [f for f in fields if f not in task]
    unknown = [k for k in task if k not in fields]
    if missing or unknown:
        raise ValueError(
            f"task {dict(task)!r}: missing fields {missing}, unknown fields {unknown}; "
            f"the fields are {list(fields)}"
        )


def task_float(task: Mapping[str, Any], field: str) -> float:
    """Return `task[field]` as a finite float, or raise `ValueError` naming the field."""
    return float(task_array(task, field, ()))


def task_array(task: Mapping[str, Any], field: str, shape: tuple[int, ...]) -> np.ndarray:
    """Return `task[field]` as a finite float64 array of the given shape, or raise `ValueError`."""
    value = task[field]
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        array = np.asarray(None)
    if array.dtype.kind not in "iuf" or array.shape != shape:
        raise ValueError(
            f"task field {field!r} must be real numbers of shape {shape}, got {value!r}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"task field {field!r} must be finite, got {value!r}")
    return array


def check_range(
    name: str, bounds: Sequence[float], within: tuple[float, float] | None = None
) -> tuple[float, float]:
    """Return `(low, high)` as floats if finite, low <= high and inside `within`; else raise."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be a finite range with low <= high, got {bounds!r}")
    if within is not None and (low < within[0] or high > within[1]):
        raise ValueError(f"{name} must lie within [{within[0]}, {within[1]}], got {bounds!r}")
    return low, high


def check_nonnegative(name: str, value: float, *, allow_zero: bool = True) -> float:
    """Return `value` as a float if it is finite and >= 0 (> 0 without `allow_zero`), else raise."""
    bound = ">= 0" if allow_zero else "> 0"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number {bound}, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_choices(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """Return `values` as a tuple of floats if it is a non-empty sequence of finite numbers."""
    try:
        choices = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if not choices or not all(math.isfinite(c) for c in choices):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {values!r}")
    return choices


def check_positive_int(name: str, value: int) -> int:
    """Return `value` if it is an int >= 1, else raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
