"""Ant task families: velocity and direction along x, direction in the plane, and goal
position (docs/architecture.md §4).

All subclass Gymnasium's `Ant-v5` (frame_skip 5, dt 0.05, contact forces computed after every
step) and replace only its reward. Torso velocity is the finite difference of the torso position
over one env step, as in v5, but read from the root free joint's qpos: v5 reads `xpos`, which
after `mj_step` still holds the position before the last physics substep.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from metarl.envs.base import ScalarChoice, UniformDisk, UniformScalar
from metarl.envs.checks import check_bool, check_choices, check_nonnegative, check_range
from metarl.envs.mujoco_task import MujocoTaskEnv, Transitions, check_body, v5_kwargs


class AntTaskEnv(MujocoTaskEnv, AntEnv):
    """Ant-v5 whose reward is `task_reward + healthy − ctrl_cost − contact_cost`.

    contact_cost = contact_cost_weight · ‖clip(cfrc_ext, contact_force_range)‖², as in v5.
    """

    data_fields = ("cfrc_ext",)
    gymnasium_kwargs = {
        **v5_kwargs(AntEnv),
        "contact_cost_weight": check_nonnegative,
        "healthy_reward": check_nonnegative,
        "main_body": check_body,
        "terminate_when_unhealthy": check_bool,
        "healthy_z_range": check_range,
        "contact_force_range": check_range,
        "include_cfrc_ext_in_observation": check_bool,
    }

    def __init__(
        self,
        ctrl_cost_weight: float = 0.5,
        contact_cost_weight: float = 5e-4,
        healthy_reward: float = 1.0,
        healthy_z_range: Sequence[float] = (0.2, 1.0),
        contact_force_range: Sequence[float] = (-1.0, 1.0),
        **kwargs: Any,
    ) -> None:
        """v5's reward and health settings; they and `kwargs` (any of `AntEnv`'s) are checked
        by `MujocoTaskEnv`."""
        super().__init__(
            ctrl_cost_weight=ctrl_cost_weight,
            contact_cost_weight=contact_cost_weight,
            healthy_reward=healthy_reward,
            healthy_z_range=healthy_z_range,
            contact_force_range=contact_force_range,
            **kwargs,
        )

    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """`reward_task`, `reward_survive`, `reward_ctrl`, `reward_contact`, each [B]; the torso
        velocity is the qpos finite difference over `dt`."""
        xy = batch.qpos_after[:, :2]
        xy_velocity = (xy - batch.qpos_before[:, :2]) / self.dt
        healthy = ~self.batch_unhealthy(batch.qpos_after)
        contact = np.clip(batch.data_after["cfrc_ext"], *self._contact_force_range)
        return {
            "reward_task": self.task_reward(batch.task_values, xy_velocity, xy),
            "reward_survive": self._healthy_reward * healthy,
            "reward_ctrl": -self._ctrl_cost_weight * np.sum(batch.actions**2, axis=1),
            "reward_contact": -self._contact_cost_weight * np.sum(contact**2, axis=(1, 2)),
        }

    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """v5's observation on B states: qpos (less x, y unless kept), qvel, and the clipped
        contact forces of every body but the world when they are observed."""
        skip = 2 * int(self._exclude_current_positions_from_observation)
        parts = [qpos[:, skip:], qvel]
        if self._include_cfrc_ext_in_observation:
            contact = np.clip(data["cfrc_ext"][:, 1:], *self._contact_force_range)
            parts.append(contact.reshape(len(qpos), -1))
        return np.concatenate(parts, axis=1)

    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Unhealthy (or a non-finite qvel), when `terminate_when_unhealthy`."""
        unhealthy = self.batch_unhealthy(qpos) | ~np.all(np.isfinite(qvel), axis=1)
        return unhealthy & self._terminate_when_unhealthy

    def batch_unhealthy(self, qpos: np.ndarray) -> np.ndarray:
        """v5's health test on B states: torso z outside `healthy_z_range` or a non-finite qpos."""
        low, high = self._healthy_z_range
        z = qpos[:, 2]
        return ~((low <= z) & (z <= high)) | ~np.all(np.isfinite(qpos), axis=1)

    @staticmethod
    @abstractmethod
    def task_reward(task_values: np.ndarray, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """The task's part of the reward [B] from task values [B, k], torso velocity and position
        in the plane [B, 2]."""


class AntDirEnv(AntTaskEnv):
    """Walk forward or backward along x: reward d·v_x + 1 − 0.5‖a‖² − contact, d ∈ {−1, +1}.

    Terminates when the torso height leaves [0.2, 1.0]. Task: `{"direction": d}`, any finite d.
    """

    def __init__(self, directions: Sequence[float] = (-1.0, 1.0), **kwargs: Any) -> None:
        """`directions`: the values d is drawn from; `kwargs` go to `AntTaskEnv`."""
        self.task_distribution = ScalarChoice("direction", check_choices("directions", directions))
        super().__init__(**kwargs)

    @staticmethod
    def task_reward(task_values: np.ndarray, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """d·v_x."""
        return task_values[:, 0] * xy_velocity[:, 0]


class AntVelEnv(AntTaskEnv):
    """Walk forward at a target velocity v* (the MAML paper's ant): reward −|v_x − v*| + 1 −
    0.5‖a‖² − contact, v* ~ U[0, 3].

    Terminates like AntDir. Task: `{"velocity": v*}`, any finite v*.
    """

    def __init__(self, velocity_range: Sequence[float] = (0.0, 3.0), **kwargs: Any) -> None:
        """`velocity_range`: the interval v* is drawn from; `kwargs` go to `AntTaskEnv`."""
        bounds = check_range("velocity_range", velocity_range)
        self.task_distribution = UniformScalar("velocity", bounds)
        super().__init__(**kwargs)

    @staticmethod
    def task_reward(task_values: np.ndarray, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """−|v_x − v*|."""
        return -np.abs(xy_velocity[:, 0] - task_values[:, 0])


class AntDir2DEnv(AntTaskEnv):
    """Walk along a unit direction u = (cos θ, sin θ): reward u·v_xy + 1 − 0.5‖a‖² − contact.

    θ ~ U[0, 2π). Terminates like AntDir. Task: `{"angle": θ}` in radians, any finite θ.
    """

    def __init__(self, angle_range: Sequence[float] = (0.0, 2 * math.pi), **kwargs: Any) -> None:
        """`angle_range`: the interval θ is drawn from; `kwargs` go to `AntTaskEnv`."""
        self.task_distribution = UniformScalar("angle", check_range("angle_range", angle_range))
        super().__init__(**kwargs)

    @staticmethod
    def task_reward(task_values: np.ndarray, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """u·v_xy with u = (cos θ, sin θ)."""
        angle = task_values[:, 0]
        return np.cos(angle) * xy_velocity[:, 0] + np.sin(angle) * xy_velocity[:, 1]


class AntGoalEnv(AntTaskEnv):
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
    ) -> None:
        """`goal_radius`: the disk g is drawn from; the other defaults are the goal task's
        (lighter control cost, no survival bonus, no termination, x and y observed)."""
        radius = check_nonnegative("goal_radius", goal_radius)
        self.task_distribution = UniformDisk("goal", dim=2, radius=radius)
        super().__init__(
            ctrl_cost_weight=ctrl_cost_weight,
            healthy_reward=healthy_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            exclude_current_positions_from_observation=exclude_current_positions_from_observation,
            **kwargs,
        )

    @staticmethod
    def task_reward(task_values: np.ndarray, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """−‖xy − g‖₁."""
        return -np.sum(np.abs(xy - task_values[:, :2]), axis=1)
