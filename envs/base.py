"""The task interface every metarl env shares: task distributions and the `TaskEnv` mixin.

A task is a small JSON-serializable dict of plain values (`{"velocity": 1.3}`). Envs draw tasks
from their own seeded `np_random`, so `env.reset(seed=s)` followed by `env.sample_tasks(n)` is
reproducible (docs/architecture.md §3).
"""

from __future__ import annotations

import copy
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from metarl.envs.checks import (
    check_int,
    check_kwargs,
    check_task_fields,
    describe,
    task_array,
    task_float,
)

Task = dict[str, Any]


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
        """`n` tasks from one uniform draw of size n."""
        return [{self.field: float(x)} for x in rng.uniform(*self.bounds, size=n)]


@dataclass(frozen=True)
class ScalarChoice(_ScalarTask):
    """`{field: x}` with x drawn uniformly from `values` (e.g. the directions ±1)."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` tasks, each x an independent uniform choice from `values`."""
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
        """`n` points from one uniform draw of shape [n, dim]."""
        return [{self.field: x.tolist()} for x in rng.uniform(*self.bounds, size=(n, self.dim))]


@dataclass(frozen=True)
class UniformDisk(_PointTask):
    """A point uniform in the disk of `radius` around the origin (dim must be 2)."""

    radius: float

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` points, each from its own (radius, angle) pair of uniforms."""
        # The radius's CDF is (r / R)², so r = R·sqrt(U) makes the density uniform in area.
        u = rng.uniform(size=(n, 2))  # one row per task keeps the first k tasks the same for any n
        radius, angle = self.radius * np.sqrt(u[:, 0]), 2 * math.pi * u[:, 1]
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return [{self.field: p.tolist()} for p in points]


class TaskEnv:
    """Mixin that gives a `gymnasium.Env` a task distribution (`self.task_distribution`).

    An env that has no task when it is reset (or asked for it) draws one, so a plain
    `gymnasium.make` env is a random member of its family. `reset(options={"task": task})` and the
    settable `task` property set one, which is how vector envs set per-env tasks. An unknown
    constructor keyword is a `ValueError` listing the known ones (`constructor_kwargs`).
    """

    task_distribution: TaskDistribution
    np_random: np.random.Generator
    _task: Task | None = None
    reports_success: bool = False
    """Whether every step's `info` carries `success` (Meta-World), which the sampler records
    and the agents report as success rates beside the returns."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        """Reject unknown keyword arguments before `__init__` runs, with a `ValueError` that
        lists the accepted ones (`gymnasium.make` passes its kwargs here)."""
        check_kwargs(cls.__name__, kwargs, cls.constructor_kwargs())
        return super().__new__(cls)

    @classmethod
    def constructor_kwargs(cls) -> tuple[str, ...]:
        """The keyword arguments the constructor takes: the named parameters of each metarl
        `__init__` up the class hierarchy (a subclass passes the rest on with `**kwargs`)."""
        names: dict[str, None] = {}
        for klass in cls.__mro__:
            init = vars(klass).get("__init__")
            if init is not None and issubclass(klass, TaskEnv):
                parameters = list(inspect.signature(init).parameters.values())[1:]  # not self
                names.update(
                    (p.name, None)
                    for p in parameters
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                )
        return tuple(names)

    def sample_tasks(self, n: int) -> list[Task]:
        """Draw `n` tasks from the training distribution with the env's seeded RNG."""
        n = check_int("sample_tasks's n", n, low=0)
        return self.task_distribution.sample(self.np_random, n)

    def sample_test_tasks(self, n: int) -> list[Task]:
        """Draw `n` held-out tasks with the env's seeded RNG: from the training distribution
        here (evaluation seeds it apart from training); an env with its own test split
        (Meta-World) draws from that."""
        return self.sample_tasks(n)

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Validate `task` and make it the env's task; it persists across `reset`."""
        self._task = self.task_distribution.validate(task)

    def get_task(self) -> Task:
        """Return a copy of the current task (drawing one first if the env has none yet)."""
        return copy.deepcopy(self._current_task())

    def task_vector(self, task: Task) -> np.ndarray:
        """The task's numbers, field by field and flattened: the form batched code consumes."""
        fields = self.task_distribution.fields
        return np.concatenate([np.ravel(np.asarray(task[f], dtype=np.float64)) for f in fields])

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
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"reset's options must be a dict or None, got {describe(options)}")
        if options and "task" in options:
            self.set_task(options["task"])
        return self._task_info()
