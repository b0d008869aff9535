"""What the single-task trainers (TRPO, PPO) share: a policy, a sampler that runs one fixed task
(or a task-free Gymnasium env), and the sample → update → metrics iteration.

They are the non-meta baselines (docs/architecture.md §5): the same policies, sampler and
backend as the meta-learners, with the task held fixed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from torch import Tensor
from torch.distributions import Distribution

from metarl.agents.parts.checks import check_int, check_sizes, check_task
from metarl.agents.parts.config import AgentConfig, OwnsSampler
from metarl.agents.parts.seeding import InitRNG
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task, TaskEnv
from metarl.policies import Params, call, make_policy
from metarl.sampling.episodes import Episodes


@dataclass
class SingleTaskConfig(AgentConfig):
    """The settings every single-task trainer has."""

    iterations: int = 100
    """Training iterations the trainer runs, >= 1 (fewer by default than the meta-learners)."""
    task: Task | None = None
    """The fixed task of a metarl task env (e.g. `{"goal": [0.3, -0.2]}`), a mapping of its
    field names to values (the env checks them); None draws one with `seed` (a plain Gymnasium
    env has none)."""
    episodes_per_task: int = 20
    """Episodes sampled per iteration, all of the one task (the CLI's shared key), >= 1."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Hidden layers of the tanh MLP policy (and of PPO's value function): widths >= 1
    (empty: linear networks)."""
    num_workers: int = 0
    """Cores for the sampler, >= 0; 0 steps non-MuJoCo envs in this process (one task's small
    batch gains nothing from worker processes)."""

    def __post_init__(self) -> None:
        """Check the shared fields, then the single-task trainer's."""
        AgentConfig.__post_init__(self)
        check_task("task", self.task)
        check_int("episodes_per_task", self.episodes_per_task)
        check_sizes("hidden_sizes", self.hidden_sizes)


class SingleTaskTrainer(OwnsSampler, ABC):
    """Owns the sampler (close it, or use the trainer as a context manager) and the policy.

    Subclasses implement `update(episodes) -> metrics`; `train_step` samples a fresh batch with
    the current policy and updates on it.
    """

    def __init__(
        self, env: str, config: SingleTaskConfig, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The sampler of `env` (a Gymnasium id; `env_kwargs` go to `gymnasium.make`), the fixed
        task (None for a task-free env) and the policy, all seeded by `config.seed`."""
        self.init_rng = InitRNG(config.seed)  # initial weights of the policy (and value function)
        self.episodes_per_task = config.episodes_per_task
        self.sampler = config.make_sampler(env, config.episodes_per_task, env_kwargs)
        self.tasks = self._the_task(config, env_kwargs or {})
        self.device = config.torch_device
        self.progress: Progress = SILENT  # the trainer's nested bar, when it trains this agent
        with self.init_rng:  # initialized on the CPU: the same weights on every device
            self.policy = make_policy(
                self.sampler.observation_space, self.sampler.action_space, config.hidden_sizes
            )
        self.policy.to(self.device)

    def _the_task(self, config: SingleTaskConfig, env_kwargs: dict[str, Any]) -> list[Task] | None:
        """`[config.task]`, or for a metarl task env one task drawn with the seed: left to
        themselves its envs would each draw their own, and draw new ones in a resumed run."""
        if config.task is not None:
            return [config.task]
        if self.sampler.env_id is None:
            return None
        task_env = gym.make(self.sampler.env_id, **env_kwargs).unwrapped
        try:
            if not isinstance(task_env, TaskEnv):
                return None
            task_env.reset(seed=config.seed)
            return task_env.sample_tasks(1)
        finally:
            task_env.close()

    def sample(self) -> Episodes:
        """A batch of `episodes_per_task` episodes of the task with the current policy."""
        return self.sampler.sample(self.policy, self.tasks, self.episodes_per_task)

    def distribution(self, params: Params | None, observations: Tensor) -> Distribution:
        """The action distribution of the policy (with `params` when given) on `observations`
        `[..., obs_dim]`, batch shape `[...]`."""
        return self.policy.action_dist.distribution(call(self.policy, params, observations))

    @abstractmethod
    def update(self, episodes: Episodes) -> dict[str, float]:
        """Improve the policy on `episodes`; return the update's metrics."""

    def train_step(self) -> dict[str, float]:
        """One iteration: sample, update. Metrics: mean episode `return`, `env_steps` of this
        iteration, and the update's own."""
        episodes = self.sample()
        return {
            "return": episodes.episode_returns().mean().item(),
            "env_steps": float(episodes.num_env_steps),
            **self.update(episodes.to(self.device)),
        }

    def state_dict(self) -> dict[str, Any]:
        """The policy and the sampler's RNG states (subclasses add their own parts)."""
        return {"policy": self.policy.state_dict(), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.policy.load_state_dict(state["policy"])
        self.sampler.load_state_dict(state["sampler"])
