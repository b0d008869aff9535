"""The "oracle" baseline (Finn et al. 2017, §5.3): a policy that observes the task, trained by
TRPO on the whole task distribution. It needs no adaptation, so its return is the level an
adapting agent would reach if it identified the task perfectly.

The policy is π(a | s, c) with c the task's numbers flattened (`task_features`: the goal, the
target velocity, the direction, the dynamics scales, …, fields in name order). c is a buffer,
like PEARL's z, so the sampler conditions each task's episodes on its own c through per-task
parameter sets in one vmapped forward. Each iteration draws `meta_batch_size` tasks, samples
`episodes_per_task` episodes of each and takes one TRPO step on all of them, with one linear
baseline per task (the oracle may know the task).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from metarl.agents.parts.config import OwnsSampler, TaskBatchConfig
from metarl.agents.parts.seeding import InitRNG
from metarl.agents.parts.state import (
    load_policy_tasks_sampler_state,
    policy_tasks_sampler_state,
)
from metarl.agents.parts.task_batch import pooled_trpo_step
from metarl.agents.parts.trust_region import TrustRegionConfig
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task
from metarl.policies import call, make_policy
from metarl.sampling.episodes import EpisodeOutcomes
from metarl.sampling.tasks import task_source


def task_features(task: Task) -> np.ndarray:
    """The task's numbers as one float32 vector, fields in name order, each flattened; a
    `ValueError` naming a field that is not numeric."""
    parts = []
    for name in sorted(task):
        try:
            parts.append(np.asarray(task[name], dtype=np.float32).ravel())
        except (TypeError, ValueError):
            raise ValueError(
                f"the oracle observes the task as numbers, but its field {name!r} is {task[name]!r}"
            ) from None
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class TaskConditionedPolicy(nn.Module):
    """The default MLP policy (`make_policy`) on the observation and the task features c; c is
    the buffer `task`, which per-task parameter sets (`{"task": c_i}`) replace."""

    recurrent = False

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        task_dim: int,
        hidden_sizes: Sequence[int],
    ) -> None:
        """An MLP on [observation, c] with c of `task_dim` numbers (zeros until set)."""
        super().__init__()
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"the oracle needs a flat Box observation space, got {observation_space}"
            )
        wide = gym.spaces.Box(-np.inf, np.inf, (observation_space.shape[0] + task_dim,))
        self.base = make_policy(wide, action_space, hidden_sizes)
        self.action_dist = self.base.action_dist
        self.register_buffer("task", torch.zeros(task_dim))

    def forward(self, obs: Tensor, task: Tensor | None = None) -> Any:
        """The base policy's distribution parameters for obs [..., obs_dim] and c [..., D]
        (default: the buffer, broadcast)."""
        task = self.task.expand(*obs.shape[:-1], -1) if task is None else task
        return self.base(torch.cat([obs, task], -1))


@dataclass
class OracleConfig(TaskBatchConfig, TrustRegionConfig):
    """Oracle settings: MAML-TRPO's batch and trust region (docs/architecture.md §5)."""

    def __post_init__(self) -> None:
        """Check the task batch's and the trust region's fields."""
        TaskBatchConfig.__post_init__(self)
        TrustRegionConfig.__post_init__(self)


class Oracle(OwnsSampler):
    """TRPO with a task-observing policy on a metarl task env (see the module docstring)."""

    def __init__(
        self, env: str, config: OracleConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """The sampler, the seeded task source and the task-conditioned policy."""
        self.config = cfg = config or OracleConfig()
        env_kwargs = env_kwargs or {}
        self.sampler = cfg.make_sampler(
            env, cfg.meta_batch_size * cfg.episodes_per_task, env_kwargs
        )
        try:
            self.task_env = task_source(self.sampler.env_id or env, env_kwargs, cfg.seed)
            probe = task_source(self.sampler.env_id or env, env_kwargs, cfg.seed)  # the task size
            try:
                task_dim = len(task_features(probe.sample_tasks(1)[0]))
            finally:
                probe.close()
        except ValueError:
            self.close()
            raise
        self.device = cfg.torch_device
        self.progress: Progress = SILENT
        with InitRNG(cfg.seed):  # initialized on the CPU: the same weights on every device
            self.policy = TaskConditionedPolicy(
                self.sampler.observation_space,
                self.sampler.action_space,
                task_dim,
                cfg.hidden_sizes,
            )
        self.policy.to(self.device)

    def task_parameters(self, tasks: Sequence[Task]) -> list[dict[str, Tensor]]:
        """The per-task parameter sets that condition the policy on each task."""
        return [{"task": torch.from_numpy(task_features(t))} for t in tasks]

    def train_step(self) -> dict[str, float]:
        """One iteration: a batch of fresh tasks, one pooled TRPO step. Metrics: mean episode
        `return` (and `success`), env steps, the TRPO step's."""
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        params = self.task_parameters(tasks)
        self.progress.phase("sampling", 1)
        episodes = self.sampler.sample(self.policy, tasks, cfg.episodes_per_task, params)
        self.progress.advance()
        episodes = episodes.to(self.device)
        features = torch.stack([p["task"] for p in params]).to(self.device)
        observations = episodes.observations
        columns = features[episodes.task_index.to(self.device)]  # [B, D]
        conditions = columns.expand(observations.shape[0], *columns.shape)  # [T, B, D]
        return pooled_trpo_step(
            self.policy,
            episodes,
            lambda p: call(self.policy, p, observations, conditions),
            cfg,
            per_task_baselines=True,
            progress=self.progress,
        )

    def task_outcomes(self, tasks: Sequence[Task], deterministic: bool = False) -> EpisodeOutcomes:
        """Mean episode return (and success rate) of each task, [1, len(tasks)]: the oracle
        does not adapt, so this one point is its whole evaluation. `meta_batch_size` tasks
        at a time."""
        size = self.config.meta_batch_size
        returns, successes = [], []
        for start in range(0, len(tasks), size):
            chunk = list(tasks[start : start + size])
            batch = self.sampler.sample(
                self.policy,
                chunk,
                self.config.episodes_per_task,
                self.task_parameters(chunk),
                deterministic=deterministic,
            )
            returns.append(batch.episode_returns().reshape(len(chunk), -1).mean(1))
            success = batch.episode_successes()
            successes.append(None if success is None else success.reshape(len(chunk), -1).mean(1))
        success = None if any(s is None for s in successes) else torch.cat(successes)[None]
        return EpisodeOutcomes(torch.cat(returns)[None], success)

    def state_dict(self) -> dict[str, Any]:
        """Policy, and the task and sampler RNG states."""
        return policy_tasks_sampler_state(self.policy, self.task_env, self.sampler)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        load_policy_tasks_sampler_state(state, self.policy, self.task_env, self.sampler)
