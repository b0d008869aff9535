"""Meta-World's ML1, ML10 and ML45 as metarl task distributions (the `metaworld` extra).

A task is one of Meta-World's own: an env class and the random vector that places its object
and goal, `{"env_name": "push-v3", "rand_vec": [...]}`. Training tasks come from the benchmark's
train split and held-out tasks (`sample_test_tasks`, what `metarl evaluate` uses) from its test
split: ML1's 50 train and 50 test goals of one env; ML10's and ML45's train and test env classes
with 50 goals each. The splits are Meta-World's, built by `metaworld.ML1(name, seed)` etc. with
`benchmark_seed`. Episodes last 500 steps, and every step's `info["success"]` is recorded: an
episode succeeds if it is set at any step (Meta-World's evaluation ends an episode at success).

Meta-World 3.1.1 pins `mujoco==3.3.0`; metarl runs on it and on mujoco 4, so the extra is
installed into an environment of its own (the README says how).
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.base import Task, TaskDistribution, TaskEnv
from metarl.envs.checks import check_int, check_one_of, describe, task_array

INSTALL = (
    "Meta-World is an extra: install it into an environment of its own with "
    '`pip install torch==2.13.0 && pip install -e ".[metaworld]"` (it pins mujoco 3.3.0; '
    "see the README's Meta-World section)"
)


def require_metaworld() -> Any:
    """The `metaworld` module, or a one-line `ValueError` naming the install command."""
    if importlib.util.find_spec("metaworld") is None:
        raise ValueError(f"the Meta-World envs need the metaworld package. {INSTALL}")
    import metaworld

    return metaworld


@functools.cache
def benchmark_tasks(benchmark: str, env_name: str | None, seed: int) -> tuple[tuple, tuple]:
    """(train, test) tasks of a Meta-World benchmark as tuples of (env_name, rand_vec tuple):
    built once per process, since Meta-World builds its goals by resetting its envs 100 times
    per class."""
    metaworld = require_metaworld()
    if benchmark == "ML1":
        suite = metaworld.ML1(env_name, seed=seed)
    else:
        suite = getattr(metaworld, benchmark)(seed=seed)

    def decode(tasks: list) -> tuple:
        return tuple(
            (task.env_name, tuple(float(x) for x in pickle.loads(task.data)["rand_vec"]))
            for task in tasks
        )

    return decode(suite.train_tasks), decode(suite.test_tasks)


@dataclass(frozen=True, eq=False)  # eq=False: `_known` is cached on the instance
class MetaWorldTasks(TaskDistribution):
    """Tasks drawn uniformly (with replacement) from a benchmark split; a task of either split
    is valid."""

    train: tuple[tuple[str, tuple[float, ...]], ...]
    """The train split's (env_name, rand_vec) pairs."""
    test: tuple[tuple[str, tuple[float, ...]], ...]
    """The test split's (env_name, rand_vec) pairs."""

    fields = ("env_name", "rand_vec")

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` tasks of the train split."""
        return self._draw(self.train, rng, n)

    def sample_test(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` tasks of the test split."""
        return self._draw(self.test, rng, n)

    @staticmethod
    def _draw(split: tuple, rng: np.random.Generator, n: int) -> list[Task]:
        """One uniform index per task: the first k tasks are the same for any n."""
        return [
            {"env_name": split[i][0], "rand_vec": list(split[i][1])}
            for i in rng.integers(len(split), size=n)
        ]

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        """`env_name` one of the benchmark's classes and `rand_vec` one of that class's goals in
        the train or test split. Unlike metarl's other envs, no other task is allowed:
        Meta-World's resets loop forever on some random vectors it would not have drawn (reach
        with its goal near the object, for one)."""
        sizes = {name: len(vec) for name, vec in (*self.train, *self.test)}
        name = task["env_name"]
        if not isinstance(name, str) or name not in sizes:
            raise ValueError(
                f"task field 'env_name' must be one of this benchmark's envs {sorted(sizes)}, "
                f"got {describe(name)}"
            )
        rand_vec = task_array(task, "rand_vec", (sizes[name],))
        if (name, tuple(rand_vec.tolist())) not in self._known:
            raise ValueError(
                f"task field 'rand_vec' must be one of the benchmark's goals for {name} (its "
                "train or test split: sample_tasks or sample_test_tasks), got "
                f"{describe(rand_vec.tolist())}"
            )
        return {"env_name": name, "rand_vec": rand_vec.tolist()}

    @functools.cached_property
    def _known(self) -> frozenset:
        """Every (env_name, rand_vec) of both splits."""
        return frozenset((*self.train, *self.test))


class MetaWorldEnv(TaskEnv, gym.Env):
    """One Meta-World benchmark as a task env: each task runs in a Meta-World env of its class
    (one made per class the env meets, and kept), with the task set through Meta-World's own
    `set_task`, so the physics, reward and success are Meta-World's."""

    benchmark: str
    """The Meta-World benchmark: "ML1", "ML10" or "ML45"."""
    reports_success = True
    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}  # Meta-World's
    _env_name: str | None = None  # ML1's one env

    def __init__(self, benchmark_seed: int = 0, render_mode: str | None = None) -> None:
        """`benchmark_seed`: the seed Meta-World builds the goals of both splits with;
        `render_mode`: None or "rgb_array"."""
        self._metaworld = require_metaworld()  # the module, looked up once
        seed = check_int("benchmark_seed", benchmark_seed, low=0, high=2**32)
        self.render_mode = check_one_of("render_mode", render_mode, (None, "rgb_array"))
        train, test = benchmark_tasks(self.benchmark, self._env_name, seed)
        self.task_distribution = MetaWorldTasks(train, test)
        self._envs: dict[str, Any] = {}
        self._env = self._env_of(train[0][0])
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space

    def sample_test_tasks(self, n: int) -> list[Task]:
        """`n` tasks of the benchmark's test split (its held-out goals or env classes)."""
        n = check_int("sample_test_tasks's n", n, low=0)
        return self.task_distribution.sample_test(self.np_random, n)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Set `options["task"]` if given, then reset the task's Meta-World env (its initial
        state is the task's: Meta-World draws nothing at reset once a task is set)."""
        super().reset(seed=seed)
        info_task = self._reset_task(options)
        self._env = self._env_of(self._task["env_name"])
        self._env.set_task(self._meta_world_task(self._task))
        obs, info = self._env.reset()
        return obs, {**info, "task": info_task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Meta-World's step; `info["success"]` is 1.0 where the task is solved at this step."""
        obs, reward, terminated, truncated, info = self._env.step(action)
        info = {**info, "task": self._task_info()}
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """The Meta-World env's frame (`render_mode="rgb_array"`)."""
        return self._env.render()

    def close(self) -> None:
        """Close every Meta-World env made."""
        for env in self._envs.values():
            env.close()

    def _env_of(self, env_name: str) -> Any:
        """The Meta-World env of class `env_name`, made on first use."""
        if env_name not in self._envs:
            env_class = self._metaworld.env_dict.ALL_V3_ENVIRONMENTS[env_name]
            self._envs[env_name] = env_class(render_mode=self.render_mode)
        return self._envs[env_name]

    def _meta_world_task(self, task: Task) -> Any:
        """Meta-World's `Task` for a metarl task: the pickled data Meta-World's benchmarks give
        their tasks (the random vector, the env class, the goal hidden from the observation)."""
        env_class = type(self._envs[task["env_name"]])
        data = {
            "rand_vec": np.asarray(task["rand_vec"]),
            "env_cls": env_class,
            "partially_observable": True,
        }
        return self._metaworld.Task(env_name=task["env_name"], data=pickle.dumps(data))


class ML1Env(MetaWorldEnv):
    """ML1: one env class, 50 train and 50 test goals."""

    benchmark = "ML1"

    def __init__(self, env_name: str = "reach-v3", **kwargs: Any) -> None:
        """`env_name`: any of Meta-World's 50 envs (reach-v3, push-v3, pick-place-v3, ...: a
        bad name's error lists them); `kwargs` go to `MetaWorldEnv`."""
        names = sorted(require_metaworld().ML1.ENV_NAMES)
        self._env_name = check_one_of("env_name", env_name, names)
        super().__init__(**kwargs)


class ML10Env(MetaWorldEnv):
    """ML10: 10 train env classes, 5 test classes, 50 goals each."""

    benchmark = "ML10"


class ML45Env(MetaWorldEnv):
    """ML45: 45 train env classes, 5 test classes, 50 goals each."""

    benchmark = "ML45"
