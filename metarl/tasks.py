"""Held-out tasks: the task set every evaluation draws, apart from the training stream."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from metarl.envs import resolve_env_id
from metarl.envs.base import Task

HELD_OUT_SEED_OFFSET = 10_000  # held-out tasks come from seed + this, never the training stream


def held_out_tasks(env: str, env_kwargs: dict[str, Any], seed: int, num_tasks: int) -> list[Task]:
    """`num_tasks` tasks drawn by the env's own distribution, seeded with `seed` (a run's
    held-out tasks use its training seed + `HELD_OUT_SEED_OFFSET`)."""
    task_env = gym.make(resolve_env_id(env), **env_kwargs).unwrapped
    try:
        task_env.reset(seed=seed)
        return task_env.sample_tasks(num_tasks)
    finally:
        task_env.close()
