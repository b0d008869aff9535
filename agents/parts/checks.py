"""Checks behind every `ValueError` of an agent config: each config's `__post_init__` gives
every one of its fields one of these, so a bad value fails where the config is made (the CLI's
`--set`, a YAML file or the Python API) with a one-line message that names the key, e.g.
"config key 'discount' must lie in (0, 1], got 2.0", never deep inside training.

The type tests, range tests and message texts are the envs' (`metarl.envs.checks`); this layer
adds the message form "config key 'NAME' must ...", seeds, optional integers, layer widths and
tasks. Each check returns the value unchanged when it is valid. `label` replaces the message's
subject ("config key 'NAME'") where a config keeps messages of its own form (the reference
agents').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metarl.envs.checks import as_finite, as_int, as_real, bounds_text, describe, in_bounds, is_bool

SEED_LIMIT = 2**32
"""Seeds lie in [0, 2**32): numpy's legacy global seeding (the trainer's) takes no other."""


def config_error(key: str, requirement: str, value: Any, label: str | None = None) -> ValueError:
    """The `ValueError` "config key 'KEY' must REQUIREMENT, got VALUE" (subject `label` if
    given); numpy scalars show as Python numbers, integers of many digits by their size."""
    subject = f"config key {key!r}" if label is None else label
    return ValueError(f"{subject} must {requirement}, got {describe(value, plain_numbers=True)}")


def check_int(
    key: str,
    value: Any,
    low: int = 1,
    high: int | None = None,
    *,
    high_name: str | None = None,
    label: str | None = None,
) -> int:
    """`value` if it is an integer in [low, high] (no upper bound when `high` is None);
    `high_name` names the key that `high` is the value of."""
    return _checked_int(key, value, "be an integer", low, high, high_name, label)


def check_optional_int(
    key: str,
    value: Any,
    low: int = 1,
    high: int | None = None,
    *,
    none_means: str,
    high_name: str | None = None,
) -> int | None:
    """`value` if it is None (meaning `none_means`) or an integer in [low, high]; `high_name`
    names the key that `high` is the value of."""
    if value is None:
        return None
    return _checked_int(key, value, f"be None ({none_means}) or an integer", low, high, high_name)


def _checked_int(
    key: str,
    value: Any,
    wanted: str,
    low: int,
    high: int | None,
    high_name: str | None,
    label: str | None = None,
) -> int:
    """`value` if it is an integer in [low, high], else `config_error` "WANTED in [LOW, HIGH]"
    (HIGH as `NAME = HIGH` with `high_name`; `>= LOW` without `high`)."""
    if not _int_in(value, low, high):
        shown_high = high if high is None or high_name is None else f"{high_name} = {high}"
        raise config_error(key, f"{wanted} {bounds_text(low, shown_high)}", value, label)
    return value


def _int_in(value: Any, low: int, high: int | None = None, *, high_open: bool = False) -> bool:
    """Whether `value` is an integer (`as_int`) in [low, high] (`high` excluded with
    `high_open`) that a config keeps as it is."""
    number = as_int(value) if _kept_as_is(value) else None
    return number is not None and in_bounds(number, low, high, high_open=high_open)


def _kept_as_is(value: Any) -> bool:
    """Whether `value` is a Python or numpy scalar: a config keeps its values as given, so it
    takes no 0-d array, tensor or `Fraction` that the envs' checks convert to a number."""
    return isinstance(value, int | float | np.number)


def check_seed(key: str, value: Any, *, label: str | None = None) -> int:
    """`value` if it is an integer in [0, 2**32)."""
    if not _int_in(value, 0, SEED_LIMIT, high_open=True):
        raise config_error(key, "be an integer in [0, 2**32)", value, label)
    return value


def check_float(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    label: str | None = None,
) -> float:
    """`value` if it is a finite real number within the bounds (open where `low_open`,
    `high_open`; none where None): "lie in (0, 1]", "be a finite number > 0", ... NaN and ±inf
    never pass."""
    bounds = bounds_text(low, high, low_open=low_open, high_open=high_open)
    if low is not None and high is not None:
        requirement, wanted = f"lie {bounds}", f"be a number {bounds}"
    else:
        requirement = wanted = f"be a finite number {bounds}".rstrip()
    if not _kept_as_is(value) or as_real(value) is None:
        raise config_error(key, wanted, value, label)
    number = as_finite(value)
    if number is None or not in_bounds(number, low, high, low_open=low_open, high_open=high_open):
        raise config_error(key, requirement, value, label)
    return value


def check_bool(key: str, value: Any) -> bool:
    """`value` if it is a bool."""
    if not is_bool(value):
        raise config_error(key, "be true or false", value)
    return value


def check_choice(key: str, value: Any, choices: Sequence[str]) -> str:
    """`value` if it is one of the strings `choices` (named in the message: "be 'a' or 'b'")."""
    if not isinstance(value, str) or value not in choices:
        quoted = [repr(choice) for choice in choices]
        names = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise config_error(key, f"be {names}", value)
    return value


def check_sizes(key: str, value: Any) -> Sequence[int]:
    """`value` if it is a list or tuple of layer widths, each an integer >= 1 (empty: no hidden
    layer, a linear network)."""
    if not isinstance(value, list | tuple) or not all(_int_in(v, 1) for v in value):
        raise config_error(key, "be a list of layer widths, each an integer >= 1", value)
    return value


def check_task(key: str, value: Any) -> Mapping[str, Any] | None:
    """`value` if it is None or a mapping from task field names (str) to values; the env checks
    the fields and their values when the agent is built."""
    if value is not None and not (
        isinstance(value, Mapping) and all(isinstance(name, str) for name in value)
    ):
        raise config_error(key, "be None or a mapping of task field names to values", value)
    return value
