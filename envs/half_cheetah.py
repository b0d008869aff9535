"""HalfCheetah task families: target velocity and direction (DESIGN §4).

Both subclass Gymnasium's `HalfCheetah-v5` (frame_skip 5, dt 0.05) and replace only its reward;
x-velocity is the finite difference of the root x position over one env step, as in v5.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from metarl.envs import mujoco_warnings
from metarl.envs.base import ScalarChoice, Task, TaskEnv, UniformScalar
from metarl.envs.checks import check_choices, check_nonnegative, check_range

mujoco_warnings.install()


class _HalfCheetahTaskEnv(TaskEnv, HalfCheetahEnv):
    """HalfCheetah-v5 whose reward is `task_reward(v_x) - ctrl_cost_weight * ||a||²`."""

    def __init__(self, ctrl_cost_weight: float = 0.05, **kwargs: Any):
        super().__init__(
            ctrl_cost_weight=check_nonnegative("ctrl_cost_weight", ctrl_cost_weight), **kwargs
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self._reset_task(options)}

    def _get_rew(self, x_velocity: float, action: np.ndarray):
        task = self._current_task()
        task_reward = self._task_reward(task, x_velocity)
        ctrl_cost = self.control_cost(action)
        info = {"reward_task": task_reward, "reward_ctrl": -ctrl_cost, "task": self._task_info()}
        return task_reward - ctrl_cost, info

    @abstractmethod
    def _task_reward(self, task: Task, x_velocity: float) -> float:
        """The task-dependent part of the reward."""


class HalfCheetahVelEnv(_HalfCheetahTaskEnv):
    """Run at a target forward velocity v*: reward −|v_x − v*| − 0.05‖a‖², v* ~ U[0, 3].

    Task: `{"velocity": v*}`; any finite v* is accepted (out-of-range values are for
    out-of-distribution evaluation).
    """

    def __init__(self, velocity_range: Sequence[float] = (0.0, 3.0), **kwargs: Any):
        bounds = check_range("velocity_range", velocity_range)
        self.task_distribution = UniformScalar("velocity", bounds)
        super().__init__(**kwargs)

    def _task_reward(self, task: Task, x_velocity: float) -> float:
        return -abs(x_velocity - task["velocity"])


class HalfCheetahDirEnv(_HalfCheetahTaskEnv):
    """Run forward or backward: reward d·v_x − 0.05‖a‖², d drawn from `directions` (±1).

    Task: `{"direction": d}`; any finite d is accepted and scales the forward reward.
    """

    def __init__(self, directions: Sequence[float] = (-1.0, 1.0), **kwargs: Any):
        self.task_distribution = ScalarChoice("direction", check_choices("directions", directions))
        super().__init__(**kwargs)

    def _task_reward(self, task: Task, x_velocity: float) -> float:
        return task["direction"] * x_velocity
