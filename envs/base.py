"""The task interface every metarl env shares, and the checks behind its `ValueError`s.

A task is a small JSON-serializable dict of plain values (`{"velocity": 1.3}`). Envs draw tasks
from their own seeded `np_random`, so `env.reset(seed=s)` followed by `env.sample_tasks(n)` is
reproducible (DESIGN §3).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Task = dict[str, Any]


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


def check_range(name: str, bounds: Sequence[float], within: tuple[float, float] | None = None):
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


class TaskDistribution(ABC):
    """A family of tasks: which fields a task has, how to draw tasks, how to check one."""

    fields: tuple[str, ...]

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """Draw `n` canonical tasks from `rng`."""

    @abstractmethod
    def validate_values(self, task: Mapping[str, Any]) -> Task:
        """Check the values of a task whose fields are right; return its canonical dict."""

    def validate(self, task: Any) -> Task:
        """Return the canonical dict of `task`, or raise `ValueError` naming what is wrong."""
        check_task_fields(task, self.fields)
        return self.validate_values(task)


@dataclass(frozen=True)
class _ScalarTask(TaskDistribution):
    """`{field: x}`; any finite x is a valid task (out-of-distribution evaluation)."""

    field: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        return {self.field: task_float(task, self.field)}


@dataclass(frozen=True)
class UniformScalar(_ScalarTask):
    """`{field: x}` with x ~ U[low, high]."""

    bounds: tuple[float, float]

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        return [{self.field: float(x)} for x in rng.uniform(*self.bounds, size=n)]


@dataclass(frozen=True)
class ScalarChoice(_ScalarTask):
    """`{field: x}` with x drawn uniformly from `values` (e.g. the directions ±1)."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        return [{self.field: float(x)} for x in rng.choice(self.values, size=n)]


@dataclass(frozen=True)
class _PointTask(TaskDistribution):
    """`{field: [x_1, …, x_dim]}`; any finite point is a valid task."""

    field: str
    dim: int

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        return {self.field: task_array(task, self.field, (self.dim,)).tolist()}


@dataclass(frozen=True)
class UniformBox(_PointTask):
    """A point with every coordinate ~ U[low, high]."""

    bounds: tuple[float, float]

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        return [{self.field: x.tolist()} for x in rng.uniform(*self.bounds, size=(n, self.dim))]


@dataclass(frozen=True)
class UniformDisk(_PointTask):
    """A point uniform in the disk of `radius` around the origin (dim must be 2)."""

    radius: float

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        # The radius's CDF is (r / R)², so r = R·sqrt(U) makes the density uniform in area.
        u = rng.uniform(size=(n, 2))  # one row per task keeps the first k tasks the same for any n
        radius, angle = self.radius * np.sqrt(u[:, 0]), 2 * math.pi * u[:, 1]
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return [{self.field: p.tolist()} for p in points]


class TaskEnv:
    """Mixin that gives a `gymnasium.Env` a task distribution (`self.task_distribution`).

    An env that has no task when it is reset (or asked for it) draws one, so a plain
    `gymnasium.make` env is a random member of its family. `reset(options={"task": task})` and the
    settable `task` property set one, which is how vector envs set per-env tasks.
    """

    task_distribution: TaskDistribution
    np_random: np.random.Generator
    _task: Task | None = None

    def sample_tasks(self, n: int) -> list[Task]:
        """Draw `n` tasks from the training distribution with the env's seeded RNG."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"sample_tasks needs an integer n >= 0, got {n!r}")
        return self.task_distribution.sample(self.np_random, int(n))

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Validate `task` and make it the env's task; it persists across `reset`."""
        self._task = self.task_distribution.validate(task)

    def get_task(self) -> Task:
        """Return a copy of the current task (drawing one first if the env has none yet)."""
        return copy.deepcopy(self._current_task())

    @property
    def task(self) -> Task:
        """The current task; assigning validates it, so vector envs can set per-env tasks with
        `envs.set_attr("task", tasks)`."""
        return self.get_task()

    @task.setter
    def task(self, task: Mapping[str, Any]) -> None:
        self.set_task(task)

    def _current_task(self) -> Task:
        if self._task is None:
            # Drawn from a child generator: `np_random`'s own stream, which `sample_tasks` uses,
            # stays the same whether or not the env had to draw a task of its own first.
            self.set_task(self.task_distribution.sample(self.np_random.spawn(1)[0], 1)[0])
        return self._task

    def _task_info(self) -> Task:
        """The task for an `info` dict: a new dict each call, whose values are the env's own."""
        return dict(self._current_task())

    def _reset_task(self, options: Mapping[str, Any] | None) -> Task:
        """Apply `options["task"]` if given; return `_task_info()` for the new episode."""
        if options and "task" in options:
            self.set_task(options["task"])
        return self._task_info()
