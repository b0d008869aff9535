"""Humanoid direction task (PEARL's humanoid-dir) on Gymnasium's `Humanoid-v5`.

The humanoid walks along a unit direction u = (cos θ, sin θ), θ ~ U[0, 2π). The reward is v5's
with the forward term turned along u: 1.25·u·v_com + 5·healthy − 0.1‖a‖² − min(5e-7‖cfrc_ext‖²,
10), v_com the finite difference of the center of mass in the plane over one env step, as both
v5 and PEARL's code (oyster's `HumanoidDirEnv`, whose 0.25/timestep is the same 1.25/dt) compute
it. It terminates when the torso height leaves (1, 2).

v5's observation reads inertias, velocities and forces that only MuJoCo's forward pass gives
(`cinert`, `cvel`, `qfrc_actuator`, `cfrc_ext`), and the center of mass reads `xipos`: these are
the env's `data_fields`, which the fast sampler copies out of each env's `MjData` after its step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv

from metarl.envs.base import UniformScalar
from metarl.envs.checks import check_bool, check_limits, check_nonnegative, check_range
from metarl.envs.mujoco_task import MujocoTaskEnv, Transitions, v5_kwargs


class HumanoidDirEnv(MujocoTaskEnv, HumanoidEnv):
    """Humanoid-v5 rewarded for its center-of-mass velocity along the task's direction.

    Task: `{"angle": θ}` in radians, any finite θ.
    """

    data_fields = ("xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext")
    gymnasium_kwargs = {
        **v5_kwargs(HumanoidEnv),
        "contact_cost_weight": check_nonnegative,
        "contact_cost_range": check_limits,
        "healthy_reward": check_nonnegative,
        "terminate_when_unhealthy": check_bool,
        "healthy_z_range": check_limits,
        "include_cinert_in_observation": check_bool,
        "include_cvel_in_observation": check_bool,
        "include_qfrc_actuator_in_observation": check_bool,
        "include_cfrc_ext_in_observation": check_bool,
    }

    def __init__(self, angle_range: Sequence[float] = (0.0, 2 * math.pi), **kwargs: Any) -> None:
        """`angle_range`: the interval θ is drawn from; `kwargs` go to `HumanoidEnv` (checked by
        `MujocoTaskEnv`)."""
        self.task_distribution = UniformScalar("angle", check_range("angle_range", angle_range))
        super().__init__(**kwargs)

    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """`reward_task`, `reward_survive`, `reward_ctrl`, `reward_contact`, each [B]."""
        angle = batch.task_values[:, 0]
        velocity = (
            self.batch_mass_center(batch.data_after["xipos"])
            - self.batch_mass_center(batch.data_before["xipos"])
        ) / self.dt
        along = np.cos(angle) * velocity[:, 0] + np.sin(angle) * velocity[:, 1]
        contact = self._contact_cost_weight * np.sum(batch.data_after["cfrc_ext"] ** 2, axis=(1, 2))
        return {
            "reward_task": self._forward_reward_weight * along,
            "reward_survive": self._healthy_reward * self.batch_healthy(batch.qpos_after),
            "reward_ctrl": -self._ctrl_cost_weight * np.sum(batch.actions**2, axis=1),
            "reward_contact": -np.clip(contact, *self._contact_cost_range),
        }

    def batch_mass_center(self, xipos: np.ndarray) -> np.ndarray:
        """The center of mass in the plane [B, 2] from the bodies' inertial frames [B, nbody, 3]
        (v5's `mass_center`)."""
        mass = self.model.body_mass
        return (np.einsum("b,nbk->nk", mass, xipos) / mass.sum())[:, :2]

    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """v5's observation on B states: qpos (less x, y unless kept), qvel, and the inertias,
        velocities, actuator forces and contact forces of every body but the world that are
        observed."""
        count = len(qpos)
        skip = 2 * int(self._exclude_current_positions_from_observation)
        parts = [qpos[:, skip:], qvel]
        if self._include_cinert_in_observation:
            parts.append(data["cinert"][:, 1:].reshape(count, -1))
        if self._include_cvel_in_observation:
            parts.append(data["cvel"][:, 1:].reshape(count, -1))
        if self._include_qfrc_actuator_in_observation:
            parts.append(data["qfrc_actuator"][:, 6:])
        if self._include_cfrc_ext_in_observation:
            parts.append(data["cfrc_ext"][:, 1:].reshape(count, -1))
        return np.concatenate(parts, axis=1)

    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Unhealthy, when `terminate_when_unhealthy`."""
        return ~self.batch_healthy(qpos) & self._terminate_when_unhealthy

    def batch_healthy(self, qpos: np.ndarray) -> np.ndarray:
        """v5's health test on B states: torso height strictly inside `healthy_z_range`."""
        low, high = self._healthy_z_range
        return (low < qpos[:, 2]) & (qpos[:, 2] < high)
