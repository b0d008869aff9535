"""Random tabular MDPs: the RL² benchmark of Duan et al. 2016, §5.2 (docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.base import Task, TaskDistribution, TaskEnv
from metarl.envs.checks import (
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_positive_int,
    task_array,
)


@dataclass(frozen=True)
class RandomMDP(TaskDistribution):
    """Mean rewards μ_sa ~ N(mean, std²) and next-state distributions P(·|s,a) ~ Dirichlet(α).

    Task: `{"reward_means": [S][A], "transitions": [S][A][S]}`; each transition row must be a
    probability vector.
    """

    num_states: int
    num_actions: int
    reward_mean: float
    reward_mean_std: float
    dirichlet_alpha: float
    fields = ("reward_means", "transitions")

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` MDPs, drawn one after another."""
        return [self._sample_one(rng) for _ in range(n)]  # task by task: prefixes agree across n

    def _sample_one(self, rng: np.random.Generator) -> Task:
        shape = (self.num_states, self.num_actions)
        means = rng.normal(self.reward_mean, self.reward_mean_std, size=shape)
        transitions = rng.dirichlet(np.full(self.num_states, self.dirichlet_alpha), size=shape)
        return {"reward_means": means.tolist(), "transitions": transitions.tolist()}

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        """`reward_means` [S, A] finite; `transitions` [S, A, S] rows of probabilities."""
        s, a = self.num_states, self.num_actions
        means = task_array(task, "reward_means", (s, a))
        transitions = task_array(task, "transitions", (s, a, s))
        if np.any(transitions < 0) or not np.allclose(transitions.sum(-1), 1.0, atol=1e-6):
            raise ValueError(
                "task field 'transitions' must hold probability vectors: entries >= 0 that sum "
                "to 1 over the last axis"
            )
        return {"reward_means": means.tolist(), "transitions": transitions.tolist()}


class TabularMDPEnv(TaskEnv, gym.Env):
    """S states, A actions; reward r ~ N(μ_sa, noise²); every episode starts in `start_state`.

    The observation is the one-hot of the current state. Never terminates: the 10-step horizon
    comes from the registration. `info["reward_mean"]` is μ_sa of the step, for computing regret.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        num_states: int = 10,
        num_actions: int = 5,
        reward_mean: float = 1.0,
        reward_mean_std: float = 1.0,
        reward_noise_std: float = 1.0,
        dirichlet_alpha: float = 1.0,
        start_state: int = 0,
    ) -> None:
        """S = `num_states`, A = `num_actions`; tasks are drawn from `RandomMDP` with the
        reward-mean and Dirichlet settings; rewards have noise std `reward_noise_std`; every
        episode starts in `start_state`."""
        num_states = check_positive_int("num_states", num_states)
        num_actions = check_positive_int("num_actions", num_actions)
        self.task_distribution = RandomMDP(
            num_states,
            num_actions,
            check_finite("reward_mean", reward_mean),
            check_nonnegative("reward_mean_std", reward_mean_std),
            check_positive("dirichlet_alpha", dirichlet_alpha),
        )
        self._noise_std = check_nonnegative("reward_noise_std", reward_noise_std)
        self._start_state = check_int("start_state", start_state, 0, num_states)
        self._num_actions = num_actions
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(num_states,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(num_actions)
        self._state = self._start_state

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Also cache the task's arrays: μ [S, A] and the transition CDFs [S, A, S]."""
        super().set_task(task)
        self._means = np.asarray(self._task["reward_means"])
        self._cumulative = np.cumsum(self._task["transitions"], axis=-1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Return to `start_state`; `options["task"]` sets the MDP."""
        super().reset(seed=seed)
        info = {"task": self._reset_task(options)}
        self._state = self._start_state
        return self._observation(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Reward r ~ N(μ_sa, noise²), next state s' ~ P(·|s, a) for `action` an integer in
        [0, A); never terminates."""
        action = check_int("action", action, 0, self._num_actions)
        task = self._task_info()  # first: draws a task (and its arrays) if the env has none
        state = self._state
        mean = float(self._means[state, action])
        reward = mean + self._noise_std * float(self.np_random.standard_normal())
        # Inverse-CDF draw of the next state; the last bin catches float round-off below 1.
        u = self.np_random.random()
        next_state = np.searchsorted(self._cumulative[state, action], u, side="right")
        self._state = min(int(next_state), self.observation_space.shape[0] - 1)
        info = {"reward_mean": mean, "state": self._state, "task": task}
        return self._observation(), reward, False, False, info

    def _observation(self) -> np.ndarray:
        one_hot = np.zeros(self.observation_space.shape, dtype=np.float32)
        one_hot[self._state] = 1.0
        return one_hot
