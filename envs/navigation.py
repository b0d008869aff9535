"""2D point navigation to a goal (Finn et al. 2017, §5.2; docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.base import TaskEnv, UniformBox
from metarl.envs.checks import check_positive, check_range


class Navigation2DEnv(TaskEnv, gym.Env):
    """A point starts at the origin and moves by s ← s + clip(a, ±0.1); reward −‖s − g‖₂.

    The goal g ~ U[−0.5, 0.5]² is not observed: it must be inferred from rewards. Never
    terminates (the 100-step horizon comes from the registration). Task: `{"goal": [x, y]}`.
    """

    metadata = {"render_modes": []}

    def __init__(self, goal_range: Sequence[float] = (-0.5, 0.5), max_action: float = 0.1) -> None:
        """Goals g ~ U[goal_range]²; actions are clipped to ±`max_action` (> 0) per coordinate."""
        bounds = check_range("goal_range", goal_range)
        self.task_distribution = UniformBox("goal", dim=2, bounds=bounds)
        # The action space is float32, so the bound must be one.
        float32_max = float(np.finfo(np.float32).max)
        self._max_action = check_positive("max_action", max_action, high=float32_max)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(
            -self._max_action, self._max_action, shape=(2,), dtype=np.float32
        )
        self._position = np.zeros(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the point back at the origin; `options["task"]` sets the goal."""
        super().reset(seed=seed)
        self._position = np.zeros(2)
        return self._position.astype(np.float32), {"task": self._reset_task(options)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by the clipped action; reward −‖s − g‖₂ after the move."""
        task = self._current_task()
        self._position = self._position + np.clip(action, -self._max_action, self._max_action)
        distance = float(np.hypot(*(self._position - task["goal"])))
        info = {"reward_task": -distance, "task": self._task_info()}
        return self._position.astype(np.float32), -distance, False, False, info
