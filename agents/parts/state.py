"""The checkpoint state of an agent made of a policy, a seeded task source and a sampler (RL²,
the oracle): one layout, written and read in one place."""

from __future__ import annotations

from typing import Any

from torch import nn

from metarl.envs.base import TaskEnv
from metarl.sampling.sampler import VectorSampler


def policy_tasks_sampler_state(
    policy: nn.Module, task_env: TaskEnv, sampler: VectorSampler
) -> dict[str, Any]:
    """The policy's weights, and the task and sampler RNG states."""
    return {
        "policy": policy.state_dict(),
        "task_rng": task_env.np_random.bit_generator.state,
        "sampler": sampler.state_dict(),
    }


def load_policy_tasks_sampler_state(
    state: dict[str, Any], policy: nn.Module, task_env: TaskEnv, sampler: VectorSampler
) -> None:
    """Restore what `policy_tasks_sampler_state` returned (other keys of `state` are the
    agent's own)."""
    policy.load_state_dict(state["policy"])
    task_env.np_random.bit_generator.state = state["task_rng"]
    sampler.load_state_dict(state["sampler"])
