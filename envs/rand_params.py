"""Dynamics-randomized Hopper and Walker2d: ProMP's and PEARL's `rand_param_envs` on Gymnasium v5.

A task scales the model's physical parameters, element by element: every body's mass and its
three principal inertias, every DOF's damping and every geom's three friction coefficients, each
by `base ** u` with u ~ U[−log_scale_limit, log_scale_limit] (log_scale_limit 3). The bases are
those of the original code (rand_param_envs/base.py): 1.5 for masses, inertias and frictions,
1.3 for damping. The reward is Gymnasium v5's own (forward velocity + healthy bonus − control
cost); the task changes only the *physics*, so a policy has to find out the robot it drives.

A task is the table of multipliers, `{"body_mass": [...], "dof_damping": [...], ...}`, one field
per randomized parameter (`rand_params`), shaped like the model's array. Applying a task writes
`original * multiplier` into the model and recomputes MuJoCo's derived constants (`mj_setConst`:
subtree masses, inverse weights), always from the originals, so a task applied twice, or after any
other, gives bit-identical physics. On the sampler's fast path each env steps with its own copy of
the model (`MujocoBatchEnv` asks `apply_task` for it; `mujoco.rollout` takes one model per state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from metarl.envs.base import Task, TaskDistribution
from metarl.envs.checks import check_bool, check_limits, check_nonnegative, describe, task_array
from metarl.envs.mujoco_task import MujocoTaskEnv, Transitions, v5_kwargs

SCALE_BASES: dict[str, float] = {
    "body_mass": 1.5,
    "body_inertia": 1.5,
    "dof_damping": 1.3,
    "geom_friction": 1.5,
}
"""The model arrays a task can scale, each with the base of its multiplier `base ** u`."""


def check_rand_params(name: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of distinct names from `SCALE_BASES`, kept in that table's order."""
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, Sequence)
        or not names
        or not all(isinstance(n, str) and n in SCALE_BASES for n in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f"{name} must be a non-empty list of distinct names from {list(SCALE_BASES)}, got "
            f"{describe(value)}"
        )
    return tuple(n for n in SCALE_BASES if n in names)


@dataclass(frozen=True)
class ModelScales(TaskDistribution):
    """Tasks of per-element multipliers of model arrays: `{name: nested list shaped like it}`."""

    shapes: Mapping[str, tuple[int, ...]]
    """The shape of each randomized model array, by name (in `SCALE_BASES` order)."""
    log_scale_limit: float
    """u ~ U[−log_scale_limit, log_scale_limit] in each multiplier `base ** u`."""

    @property
    def fields(self) -> tuple[str, ...]:
        """The randomized model arrays' names."""
        return tuple(self.shapes)

    def sample(self, rng: np.random.Generator, n: int) -> list[Task]:
        """`n` tasks; each draws its exponents field by field, in `fields` order."""
        limit = self.log_scale_limit
        return [
            {
                name: (SCALE_BASES[name] ** rng.uniform(-limit, limit, size=shape)).tolist()
                for name, shape in self.shapes.items()
            }
            for _ in range(n)
        ]

    def validate_values(self, task: Mapping[str, Any]) -> Task:
        """Each field a finite positive array of its model array's shape (any size of scale is
        allowed, for out-of-distribution evaluation)."""
        canonical = {}
        for name, shape in self.shapes.items():
            array = task_array(task, name, shape)
            if not np.all(array > 0):
                raise ValueError(f"task field {name!r} must be > 0, got {describe(task[name])}")
            canonical[name] = array.tolist()
        return canonical


class RandParamsEnv(MujocoTaskEnv):
    """Mixin for a v5 locomotion env whose task scales its model (see the module docstring).

    The reward is v5's `forward_reward_weight·v_x + healthy_reward·healthy − ctrl_cost_weight·‖a‖²`
    (Hopper and Walker2d share it), with v_x the root-x finite difference over `dt`.
    """

    task_changes_model = True
    _original: dict[str, np.ndarray]

    def __init__(
        self,
        log_scale_limit: float = 3.0,
        rand_params: Sequence[str] = tuple(SCALE_BASES),
        **kwargs: Any,
    ) -> None:
        """`log_scale_limit`: the range of the exponents u; `rand_params`: which model arrays a
        task scales (any of `SCALE_BASES`); `kwargs` go to the v5 env (checked by
        `MujocoTaskEnv`)."""
        limit = check_nonnegative("log_scale_limit", log_scale_limit)
        names = check_rand_params("rand_params", rand_params)
        super().__init__(**kwargs)
        self._original = {name: getattr(self.model, name).copy() for name in names}
        shapes = {name: array.shape for name, array in self._original.items()}
        self.task_distribution = ModelScales(shapes, limit)

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Validate `task`, make it the env's task and apply it to the env's model."""
        super().set_task(task)
        self.apply_task(self.model, self._task)

    def apply_task(self, model: mujoco.MjModel, task: Task) -> None:
        """Write the task's scaled parameters into `model` (this env's or a copy of it) and
        recompute the constants MuJoCo derives from them."""
        for name, original in self._original.items():
            getattr(model, name)[:] = original * np.asarray(task[name], dtype=np.float64)
        mujoco.mj_setConst(model, mujoco.MjData(model))

    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """`reward_forward`, `reward_survive`, `reward_ctrl`, each [B], as v5 computes them."""
        x_velocity = (batch.qpos_after[:, 0] - batch.qpos_before[:, 0]) / self.dt
        healthy = self.batch_healthy(batch.qpos_after, batch.qvel_after)
        return {
            "reward_forward": self._forward_reward_weight * x_velocity,
            "reward_survive": self._healthy_reward * healthy,
            "reward_ctrl": -self._ctrl_cost_weight * np.sum(batch.actions**2, axis=1),
        }

    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """v5's observation on B states: qpos (less the root x unless kept), qvel clipped to ±10."""
        skip = int(self._exclude_current_positions_from_observation)
        return np.concatenate([qpos[:, skip:], np.clip(qvel, -10, 10)], axis=1)

    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Unhealthy, when `terminate_when_unhealthy`."""
        return ~self.batch_healthy(qpos, qvel) & self._terminate_when_unhealthy

    def batch_healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """v5's health test on B states: height and torso angle (qpos[1], qpos[2]) strictly
        inside their ranges (Hopper also tests qvel)."""
        (z_low, z_high), (a_low, a_high) = self._healthy_z_range, self._healthy_angle_range
        z, angle = qpos[:, 1], qpos[:, 2]
        return (z_low < z) & (z < z_high) & (a_low < angle) & (angle < a_high)


class HopperRandParamsEnv(RandParamsEnv, HopperEnv):
    """Hopper-v5 with randomized dynamics (ProMP's HopperRandParams); horizon 200.

    Terminates, as v5, when the height or torso angle leave their ranges or any of qpos[2:], qvel
    leaves `healthy_state_range`.
    """

    gymnasium_kwargs: ClassVar[Mapping[str, Any]] = {
        **v5_kwargs(HopperEnv),
        "healthy_reward": check_nonnegative,
        "terminate_when_unhealthy": check_bool,
        "healthy_state_range": check_limits,
        "healthy_z_range": check_limits,
        "healthy_angle_range": check_limits,
    }

    def batch_healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Height and angle in range, and every one of qpos[2:] and qvel strictly inside
        `healthy_state_range` (v5 reads `state_vector()[2:]`)."""
        low, high = self._healthy_state_range
        state = np.concatenate([qpos[:, 2:], qvel], axis=1)
        in_range = np.all((low < state) & (state < high), axis=1)
        return super().batch_healthy(qpos, qvel) & in_range


class Walker2dRandParamsEnv(RandParamsEnv, Walker2dEnv):
    """Walker2d-v5 with randomized dynamics (ProMP's and PEARL's Walker2DRandParams); horizon
    200. Terminates, as v5, when the height or torso angle leave their ranges."""

    gymnasium_kwargs: ClassVar[Mapping[str, Any]] = {
        **v5_kwargs(Walker2dEnv),
        "healthy_reward": check_nonnegative,
        "terminate_when_unhealthy": check_bool,
        "healthy_z_range": check_limits,
        "healthy_angle_range": check_limits,
    }
