"""Bernoulli multi-armed bandits: the RL² benchmark of Duan et al. 2016, §5.1
(docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.base import Task, TaskDistribution, TaskEnv
from metarl.envs.checks import check_int, check_positive_int, check_range, describe, task_array


@dataclass(frozen=True)
class BernoulliArms(TaskDistribution):
    """`{"probs": [p_1, …, p_k]}` with every p_i ~ U[low, high]; valid tasks have p_i in [0, 1]."""

    k: int
    bounds: tuple[float, float]
    fields = ("probs",)

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` tasks from one uniform draw of shape [n, k]."""
        return [{"probs": p.tolist()} for p in rng.uniform(*self.bounds, size=(n, self.k))]

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        """`probs` must be k finite numbers in [0, 1]."""
        probs = task_array(task, "probs", (self.k,))
        if np.any((probs < 0) | (probs > 1)):
            got = describe(task["probs"])
            raise ValueError(f"task field 'probs' must lie in [0, 1], got {got}")
        return {"probs": probs.tolist()}


class BanditEnv(TaskEnv, gym.Env):
    """k Bernoulli arms; each episode is one pull (reward 1 with probability p_arm, else 0).

    The observation is the constant one-hot of the single state, [1.0]. An RL² trial of n pulls is
    n episodes of the same task. `info["arm_prob"]` is the pulled arm's p, for computing regret.
    """

    metadata = {"render_modes": []}

    def __init__(self, k: int = 5, prob_range: Sequence[float] = (0.0, 1.0)) -> None:
        """`k` arms, each p_i drawn from U[prob_range] (which must lie within [0, 1])."""
        k = check_positive_int("k", k)
        self.task_distribution = BernoulliArms(k, check_range("prob_range", prob_range, (0, 1)))
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(k)
        self._num_arms = k
        self._observation = np.ones(1, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Seed the RNG, apply `options["task"]` if given; the observation is always [1.0]."""
        super().reset(seed=seed)
        return self._observation.copy(), {"task": self._reset_task(options)}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Pull arm `action` (an integer in [0, k)): reward 1 with probability p_action; the
        episode terminates."""
        # Not `action_space.contains`: it is slower, says nothing of why, and passes True.
        arm = check_int("action", action, 0, self._num_arms)
        task = self._current_task()
        prob = task["probs"][arm]
        reward = float(self.np_random.random() < prob)
        info = {"arm_prob": prob, "task": self._task_info()}
        return self._observation.copy(), reward, True, False, info
