"""HalfCheetah task families: target velocity and direction (docs/architecture.md §4).

Both subclass Gymnasium's `HalfCheetah-v5` (frame_skip 5, dt 0.05) and replace only its reward;
x-velocity is the finite difference of the root x position over one env step, as in v5.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from metarl.envs.base import ScalarChoice, UniformScalar
from metarl.envs.checks import check_choices, check_range
from metarl.envs.mujoco_task import MujocoTaskEnv, Transitions, v5_kwargs


class HalfCheetahTaskEnv(MujocoTaskEnv, HalfCheetahEnv):
    """HalfCheetah-v5 whose reward is `task_reward(v_x) − ctrl_cost_weight·‖a‖²`."""

    gymnasium_kwargs = v5_kwargs(HalfCheetahEnv)

    def __init__(self, ctrl_cost_weight: float = 0.05, **kwargs: Any) -> None:
        """A lighter `ctrl_cost_weight` than v5's; it and `kwargs` (any of `HalfCheetahEnv`'s)
        are checked by `MujocoTaskEnv`."""
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)

    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """`reward_task` and `reward_ctrl`, each [B]; v_x is the root-x finite difference over
        `dt` (contact forces are unused)."""
        x_velocity = (batch.qpos_after[:, 0] - batch.qpos_before[:, 0]) / self.dt
        return {
            "reward_task": self.task_reward(batch.task_values, x_velocity),
            "reward_ctrl": -self._ctrl_cost_weight * np.sum(batch.actions**2, axis=1),
        }

    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """v5's observation on B states: qpos (less the root x unless kept) and qvel."""
        skip = int(self._exclude_current_positions_from_observation)
        return np.concatenate([qpos[:, skip:], qvel], axis=1)

    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """All False: HalfCheetah never terminates."""
        return np.zeros(len(qpos), dtype=bool)

    @staticmethod
    @abstractmethod
    def task_reward(task_values: np.ndarray, x_velocity: np.ndarray) -> np.ndarray:
        """The task's part of the reward [B] from task values [B, k] and v_x [B]."""


class HalfCheetahVelEnv(HalfCheetahTaskEnv):
    """Run at a target forward velocity v*: reward −|v_x − v*| − 0.05‖a‖², v* ~ U[0, 3].

    Task: `{"velocity": v*}`; any finite v* is accepted (out-of-range values are for
    out-of-distribution evaluation).
    """

    def __init__(self, velocity_range: Sequence[float] = (0.0, 3.0), **kwargs: Any) -> None:
        """`velocity_range`: the interval v* is drawn from; `kwargs` go to `HalfCheetahTaskEnv`."""
        bounds = check_range("velocity_range", velocity_range)
        self.task_distribution = UniformScalar("velocity", bounds)
        super().__init__(**kwargs)

    @staticmethod
    def task_reward(task_values: np.ndarray, x_velocity: np.ndarray) -> np.ndarray:
        """−|v_x − v*|."""
        return -np.abs(x_velocity - task_values[:, 0])


class HalfCheetahDirEnv(HalfCheetahTaskEnv):
    """Run forward or backward: reward d·v_x − 0.05‖a‖², d drawn from `directions` (±1).

    Task: `{"direction": d}`; any finite d is accepted and scales the forward reward.
    """

    def __init__(self, directions: Sequence[float] = (-1.0, 1.0), **kwargs: Any) -> None:
        """`directions`: the values d is drawn from; `kwargs` go to `HalfCheetahTaskEnv`."""
        self.task_distribution = ScalarChoice("direction", check_choices("directions", directions))
        super().__init__(**kwargs)

    @staticmethod
    def task_reward(task_values: np.ndarray, x_velocity: np.ndarray) -> np.ndarray:
        """d·v_x."""
        return task_values[:, 0] * x_velocity
