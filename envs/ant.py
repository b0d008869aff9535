"""Ant task families: direction along x, direction in the plane, and goal position (DESIGN §4).

All subclass Gymnasium's `Ant-v5` (frame_skip 5, dt 0.05, contact forces computed after every
step) and replace only its reward. Torso velocity is the finite difference of the torso position
over one env step, as in v5; `step` records the position before the physics runs for that.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from metarl.envs import mujoco_warnings
from metarl.envs.base import ScalarChoice, Task, TaskEnv, UniformDisk, UniformScalar
from metarl.envs.checks import check_choices, check_nonnegative, check_range

mujoco_warnings.install()


class _AntTaskEnv(TaskEnv, AntEnv):
    """Ant-v5 whose reward is `task_reward + healthy − ctrl_cost − contact_cost`.

    contact_cost = contact_cost_weight · ‖clip(cfrc_ext, contact_force_range)‖², as in v5.
    """

    def __init__(
        self,
        ctrl_cost_weight: float = 0.5,
        contact_cost_weight: float = 5e-4,
        healthy_reward: float = 1.0,
        healthy_z_range: Sequence[float] = (0.2, 1.0),
        contact_force_range: Sequence[float] = (-1.0, 1.0),
        **kwargs: Any,
    ):
        super().__init__(
            ctrl_cost_weight=check_nonnegative("ctrl_cost_weight", ctrl_cost_weight),
            contact_cost_weight=check_nonnegative("contact_cost_weight", contact_cost_weight),
            healthy_reward=check_nonnegative("healthy_reward", healthy_reward),
            healthy_z_range=check_range("healthy_z_range", healthy_z_range),
            contact_force_range=check_range("contact_force_range", contact_force_range),
            **kwargs,
        )
        self._torso_id = self.model.body(self._main_body).id
        self._xy_before = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self._reset_task(options)}

    def step(self, action: np.ndarray):
        self._xy_before = self.data.xpos[self._torso_id, :2].copy()
        return super().step(action)

    def _get_rew(self, x_velocity: float, action: np.ndarray):
        task = self._current_task()
        xy = self.data.xpos[self._torso_id, :2]
        task_reward = self._task_reward(task, (xy - self._xy_before) / self.dt, xy)
        healthy = self.healthy_reward
        ctrl_cost = self.control_cost(action)
        contact_cost = self.contact_cost
        info = {
            "reward_task": task_reward,
            "reward_survive": healthy,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "task": self._task_info(),
        }
        return task_reward + healthy - ctrl_cost - contact_cost, info

    @abstractmethod
    def _task_reward(self, task: Task, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        """The task-dependent part of the reward, from torso velocity and position in the plane."""


class AntDirEnv(_AntTaskEnv):
    """Walk forward or backward along x: reward d·v_x + 1 − 0.5‖a‖² − contact, d ∈ {−1, +1}.

    Terminates when the torso height leaves [0.2, 1.0]. Task: `{"direction": d}`, any finite d.
    """

    def __init__(self, directions: Sequence[float] = (-1.0, 1.0), **kwargs: Any):
        self.task_distribution = ScalarChoice("direction", check_choices("directions", directions))
        super().__init__(**kwargs)

    def _task_reward(self, task: Task, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        return task["direction"] * float(xy_velocity[0])


class AntDir2DEnv(_AntTaskEnv):
    """Walk along a unit direction u = (cos θ, sin θ): reward u·v_xy + 1 − 0.5‖a‖² − contact.

    θ ~ U[0, 2π). Terminates like AntDir. Task: `{"angle": θ}` in radians, any finite θ.
    """

    def __init__(self, angle_range: Sequence[float] = (0.0, 2 * math.pi), **kwargs: Any):
        self.task_distribution = UniformScalar("angle", check_range("angle_range", angle_range))
        super().__init__(**kwargs)

    def _task_reward(self, task: Task, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        angle = task["angle"]
        return math.cos(angle) * float(xy_velocity[0]) + math.sin(angle) * float(xy_velocity[1])


class AntGoalEnv(_AntTaskEnv):
    """Walk to a goal g in the plane: reward −‖xy − g‖₁ − 0.1‖a‖² − contact; never terminates.

    g is uniform in the disk of radius 3. The observation keeps the torso's x, y (v5 drops them by
    default) since the goal cannot be reached without knowing where the ant is. Task:
    `{"goal": [x, y]}`, any finite point.
    """

    def __init__(
        self,
        goal_radius: float = 3.0,
        ctrl_cost_weight: float = 0.1,
        healthy_reward: float = 0.0,
        terminate_when_unhealthy: bool = False,
        exclude_current_positions_from_observation: bool = False,
        **kwargs: Any,
    ):
        radius = check_nonnegative("goal_radius", goal_radius)
        self.task_distribution = UniformDisk("goal", dim=2, radius=radius)
        super().__init__(
            ctrl_cost_weight=ctrl_cost_weight,
            healthy_reward=healthy_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            exclude_current_positions_from_observation=exclude_current_positions_from_observation,
            **kwargs,
        )

    def _task_reward(self, task: Task, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        goal = task["goal"]
        return -(abs(float(xy[0]) - goal[0]) + abs(float(xy[1]) - goal[1]))
