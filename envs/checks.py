"""Checks behind every `ValueError` of the envs: task values, constructor arguments, actions.

Each returns the value in canonical form or raises a one-line `ValueError` that names the field
or argument and says what is allowed. Every check of an argument takes `(name, value)` first, so
a table `{name: check}` can check keyword arguments an env passes on (`mujoco_task.py`).

The primitives under them (`describe`, the type tests `as_int`, `as_real`, `as_finite` and
`is_bool`, the range test `in_bounds`, the range texts `bounds_text` and `interval`) serve the
agent configs too: `metarl.agents.parts.checks` words them as "config key 'NAME' must ...".
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Check = Callable[[str, Any], Any]
"""A check of one argument: `check(name, value)` returns the canonical value or raises."""

_MAX_REPR = 80
_BOOLS = (bool, np.bool_)  # a tuple: `isinstance` takes it faster than `bool | np.bool_`


def describe(value: Any, *, plain_numbers: bool = False) -> str:
    """A short one-line repr of `value` for an error message (cut at 80 characters). With
    `plain_numbers` (the configs' messages), numpy scalars show as the Python numbers they hold
    and integers of more than 256 bits by their number of digits."""
    if plain_numbers:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int) and value.bit_length() > 256:  # never a bool
            digits = int(value.bit_length() * math.log10(2)) + 1
            return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300 digits, a deep nesting
        text = f"a {type(value).__name__} too large to show"
    text = " ".join(text.split())  # one line, whatever the value holds (numpy arrays wrap)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def as_int(value: Any) -> int | None:
    """`value` as an int if it is an integer (Python or numpy, a 0-d integer array; not a bool),
    else None."""
    try:
        number = operator.index(value)  # ints, numpy integers, 0-d integer arrays; no floats
    except TypeError:
        return None
    return None if is_bool(value) else number


def as_real(value: Any) -> float | None:
    """`value` as a float if it is a real number (Python or numpy, not a bool), else None; an
    int beyond float's range is ±inf."""
    if is_bool(value) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range: a number, but not a finite one
        return math.inf if value > 0 else -math.inf


def as_finite(value: Any) -> float | None:
    """`value` as a float if it is a finite real number (`as_real`), else None."""
    number = as_real(value)
    return number if number is not None and math.isfinite(number) else None


def in_bounds(
    number: float,
    low: float | None,
    high: float | None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> bool:
    """Whether `number` lies within [low, high]: no bound where None, open where `low_open`,
    `high_open`."""
    too_low = low is not None and (number < low or (low_open and number == low))
    too_high = high is not None and (number > high or (high_open and number == high))
    return not (too_low or too_high)


def is_bool(value: Any) -> bool:
    """Whether `value` is a bool (Python or numpy)."""
    return isinstance(value, _BOOLS)


Bound = float | str | None
"""A bound in a message: a number, or a text such as "meta_batch_size = 40"."""


def bounds_text(
    low: Bound = None, high: Bound = None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """The bounds in a message: "in [0, 1)", "in (0, 1]", ">= 1", "> 0", "< 5", "<= 5", or ""
    for none. Integers show as they are, other numbers by `:g`."""
    if low is not None and high is not None:
        return "in " + interval(low, high, low_open=low_open, high_open=high_open)
    if low is not None:
        return f"{'>' if low_open else '>='} {_shown(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_shown(high)}"
    return ""


def interval(low: Bound, high: Bound, *, low_open: bool = False, high_open: bool = False) -> str:
    """The interval "[low, high]" ("(" and ")" where open) of a message."""
    return f"{'(' if low_open else '['}{_shown(low)}, {_shown(high)}{')' if high_open else ']'}"


def _shown(bound: Bound) -> str:
    """A bound as a message shows it: a text as it is, an integer in full, a float by `:g`."""
    if isinstance(bound, str | numbers.Integral):
        return str(bound)
    return f"{bound:g}"


def check_kwargs(owner: str, kwargs: Iterable[str], accepted: Sequence[str]) -> None:
    """Raise `ValueError` naming the keyword arguments of `kwargs` not in `accepted`, and
    listing the accepted ones (Python's own error would be a `TypeError` naming only one)."""
    unknown = [name for name in kwargs if name not in accepted]
    if unknown:
        hints = [m for name in unknown for m in difflib.get_close_matches(name, accepted, n=1)]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ValueError(
            f"{owner} got unknown keyword arguments {unknown}{hint}; it takes {', '.join(accepted)}"
        )


def check_task_fields(task: Any, fields: Sequence[str]) -> None:
    """Raise `ValueError` unless `task` is a mapping with exactly the keys `fields`."""
    if not isinstance(task, Mapping):
        raise ValueError(
            f"a task must be a dict with the fields {list(fields)}, got {describe(task)}"
        )
    missing = [f for f in fields if f not in task]
    unknown = [k for k in task if k not in fields]
    if missing or unknown:
        problems = [f"lacks the fields {missing}"] if missing else []
        problems += [f"has unknown fields {describe(unknown)}"] if unknown else []
        raise ValueError(
            f"the task {' and '.join(problems)} (the fields are {list(fields)}), got "
            f"{describe(dict(task))}"
        )


def task_float(task: Mapping[str, Any], field: str) -> float:
    """Return `task[field]` as a finite float, or raise `ValueError` naming the field."""
    return float(task_array(task, field, ()))


def task_array(task: Mapping[str, Any], field: str, shape: tuple[int, ...]) -> np.ndarray:
    """Return `task[field]` as a finite float64 array of the given shape, or raise `ValueError`.

    Numbers (Python or numpy, in nested lists or an array) pass; bools, strings, None and ragged
    lists do not.
    """
    value = task[field]
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError):  # ragged nested lists, unconvertible objects
        array = np.asarray(None)
    if array.dtype.kind not in "iuf" or array.shape != shape or _holds_bool(value, array):
        raise ValueError(
            f"task field {field!r} must be numbers (not bools) of shape {shape}, got "
            f"{describe(value)}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"task field {field!r} must be finite, got {describe(value)}")
    return array


def _holds_bool(value: Any, array: np.ndarray) -> bool:
    """Whether nested lists that numpy made numeric held a bool (numpy casts [True, 0.5])."""
    if isinstance(value, np.ndarray | np.generic) or array.ndim == 0:
        return False  # a numeric array holds no bools; a 0-d one is the value itself
    return any(is_bool(x) for x in np.asarray(value, dtype=object).flat)


def _reals(values: Any) -> tuple[float, ...] | None:
    """`values` as floats if it is a list, tuple or 1-d array of real numbers, else None."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        return None
    floats = [as_real(v) for v in values]
    return None if any(f is None for f in floats) else tuple(floats)


def check_finite(name: str, value: Any) -> float:
    """Return `value` as a float if it is a finite real number (not a bool or a string)."""
    number = as_finite(value)
    if number is None:
        raise ValueError(f"{name} must be a finite number, got {describe(value)}")
    return number


def check_nonnegative(
    name: str, value: Any, *, allow_zero: bool = True, high: float | None = None
) -> float:
    """Return `value` as a float if it is finite and >= 0 (> 0 without `allow_zero`) and at most
    `high` if given, else raise."""
    number = as_finite(value)
    if number is None or not in_bounds(number, 0, high, low_open=not allow_zero):
        bound = bounds_text(0, low_open=not allow_zero)
        bound += "" if high is None else f" and {bounds_text(high=high)}"
        raise ValueError(f"{name} must be a finite number {bound}, got {describe(value)}")
    return number


def check_positive(name: str, value: Any, *, high: float | None = None) -> float:
    """`check_nonnegative` without zero: a finite number > 0 (and <= `high` if given)."""
    return check_nonnegative(name, value, allow_zero=False, high=high)


def check_range(
    name: str, bounds: Any, within: tuple[float, float] | None = None
) -> tuple[float, float]:
    """Return `(low, high)` as floats if finite, low <= high and inside `within`; else raise."""
    pair = _reals(bounds)
    if pair is None or len(pair) != 2:
        raise ValueError(f"{name} must be a pair [low, high] of numbers, got {describe(bounds)}")
    low, high = pair
    if not math.isfinite(high - low) or low > high:  # a width past float's range: no uniform
        raise ValueError(
            f"{name} must be a finite range (low <= high, finite width), got {describe(bounds)}"
        )
    if within is not None and not (in_bounds(low, *within) and in_bounds(high, *within)):
        raise ValueError(f"{name} must lie within {interval(*within)}, got {describe(bounds)}")
    return low, high


def check_limits(name: str, bounds: Any) -> tuple[float, float]:
    """Return `(low, high)` as floats if both are numbers (infinite allowed, NaN not) and
    low <= high: a health range such as Hopper's height (0.7, inf)."""
    pair = _reals(bounds)
    if pair is None or len(pair) != 2 or any(math.isnan(x) for x in pair) or pair[0] > pair[1]:
        raise ValueError(
            f"{name} must be a pair [low, high] of numbers with low <= high (inf allowed), got "
            f"{describe(bounds)}"
        )
    return pair[0], pair[1]


def check_choices(name: str, values: Any) -> tuple[float, ...]:
    """Return `values` as a tuple of floats if it is a non-empty sequence of finite numbers."""
    choices = _reals(values)
    if not choices or not all(math.isfinite(c) for c in choices):
        raise ValueError(
            f"{name} must be a non-empty list of finite numbers, got {describe(values)}"
        )
    return choices


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return `value` as an int if it is an integer (Python or numpy, not a bool) in
    [low, high) — no bound where None. Cheap enough for a step's action."""
    number = as_int(value)
    if number is None or not in_bounds(number, low, high, high_open=True):
        wanted = f"an integer {bounds_text(low, high, high_open=True)}".rstrip()
        raise ValueError(f"{name} must be {wanted}, got {describe(value)}")
    return number


def check_positive_int(name: str, value: Any) -> int:
    """Return `value` if it is an int >= 1, else raise `ValueError`."""
    return check_int(name, value, low=1)


def check_bool(name: str, value: Any) -> bool:
    """Return `value` if it is a bool (Python or numpy), else raise `ValueError`."""
    if not is_bool(value):
        raise ValueError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def check_str(name: str, value: Any) -> str:
    """Return `value` if it is a non-empty string, else raise `ValueError`."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {describe(value)}")
    return value


def check_one_of(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return `value` if it is one of `choices` (of the same type: 1 is not True), else raise."""
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(f"{name} must be one of {list(choices)}, got {describe(value)}")
    return value


def optional(check: Check) -> Check:
    """`check` that lets None through (an argument whose None means "the default")."""

    def check_or_none(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return check_or_none
