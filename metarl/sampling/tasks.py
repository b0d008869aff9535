"""Where tasks come from: an agent's seeded task source, and the held-out tasks every evaluation
draws apart from the training stream."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from metarl.envs import resolve_env_id
from metarl.envs.base import Task, TaskEnv

HELD_OUT_SEED_OFFSET = 10_000  # held-out tasks come from seed + this, never the training stream


def task_source(env_id: str, env_kwargs: dict[str, Any], seed: int) -> TaskEnv:
    """The env's unwrapped instance, seeded with `seed`, whose `sample_tasks` draws tasks with
    its own RNG (independent of the sampler's); a `ValueError` if the env has no tasks."""
    task_env = gym.make(env_id, **env_kwargs).unwrapped
    if not isinstance(task_env, TaskEnv):
        task_env.close()
        raise ValueError(f"{env_id} is not a metarl task env: it has no tasks to meta-learn over")
    task_env.reset(seed=seed)
    return task_env


def held_out_tasks(env: str, env_kwargs: dict[str, Any], seed: int, num_tasks: int) -> list[Task]:
    """`num_tasks` held-out tasks drawn by the env (`sample_test_tasks`: its test split where it
    has one), seeded with `seed` (a run's held-out tasks use its training seed +
    `HELD_OUT_SEED_OFFSET`)."""
    task_env = task_source(resolve_env_id(env), env_kwargs, seed)
    try:
        return task_env.sample_test_tasks(num_tasks)
    finally:
        task_env.close()
