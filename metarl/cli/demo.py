"""Random-policy returns per task for every env: a check of the install, the physics and tasks.

Different tasks of one family give different returns for the same (random) behaviour, which is
what a meta-learner has to tell apart. It also times each env single-threaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from metarl.envs import resolve_env_id
from metarl.envs.base import Task


@dataclass
class DemoResult:
    """Random-policy figures for one task of one env."""

    env: str
    observation_shape: tuple[int, ...]
    action_space: str
    task: Task
    mean_return: float
    episodes: int
    env_steps: int
    env_steps_per_s: float


def describe_space(space: gym.Space) -> str:
    """`"6"` for a 6-dim Box, `"5 discrete"` for Discrete(5)."""
    if isinstance(space, gym.spaces.Discrete):
        return f"{space.n} discrete"
    return "×".join(str(d) for d in space.shape)


def describe_task(task: Task, max_numbers: int = 5) -> str:
    """A one-line view of a task; arrays longer than `max_numbers` are shown by shape."""
    parts = []
    for field, value in task.items():
        array = np.asarray(value)
        if array.size > max_numbers:
            parts.append(f"{field}: {'×'.join(map(str, array.shape))}")
        else:
            numbers = ", ".join(f"{x:.2f}" for x in array.ravel())
            parts.append(f"{field}: {numbers if array.ndim == 0 else f'[{numbers}]'}")
    return "{" + ", ".join(parts) + "}"


def random_policy_returns(
    env_name: str, num_tasks: int = 3, episodes: int = 10, seed: int = 0
) -> list[DemoResult]:
    """Run `episodes` random-action episodes on each of `num_tasks` tasks drawn with `seed`."""
    env_id = resolve_env_id(env_name)
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    tasks = env.unwrapped.sample_tasks(num_tasks)
    results = []
    for task in tasks:
        returns, steps = [], 0
        start = time.perf_counter()
        for _ in range(episodes):
            env.reset(options={"task": task})
            done, total = False, 0.0
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
        elapsed = time.perf_counter() - start
        results.append(
            DemoResult(
                env=env_id,
                observation_shape=env.observation_space.shape,
                action_space=describe_space(env.action_space),
                task=task,
                mean_return=float(np.mean(returns)),
                episodes=episodes,
                env_steps=steps,
                env_steps_per_s=steps / elapsed,
            )
        )
    env.close()
    return results
