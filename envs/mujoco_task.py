"""The mixin that turns a Gymnasium v5 MuJoCo env into a task env with a vectorized reward.

The reward is written once, over a batch of B states (`reward_terms`), and serves both the
Gymnasium env (B = 1) and the sampler's fast path, which steps all B physics states in C and
needs observations, rewards and terminations for all of them at once (docs/architecture.md §3).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

from metarl.envs import mujoco_warnings
from metarl.envs.base import TaskEnv

mujoco_warnings.install()


class Transitions(NamedTuple):
    """B physics transitions, what a reward needs of them: arrays with a leading batch axis."""

    task_values: np.ndarray
    """`task_vector` of each env's task, [B, k]."""
    qpos_before: np.ndarray
    """Joint positions before the step, [B, nq]."""
    qpos_after: np.ndarray
    """Joint positions after the step, [B, nq]."""
    actions: np.ndarray
    """The actions taken, float64 [B, nu]."""
    cfrc_ext: np.ndarray
    """External contact forces after the step, [B, nbody, 6]."""


class MujocoTaskEnv(TaskEnv, ABC):
    """Mixin for a v5 MuJoCo env: `_get_rew` becomes the sum of the vectorized `reward_terms`.

    Subclasses also give the vectorized twins of v5's `_get_obs` and termination test
    (`batch_observations`, `batch_terminated`) that the fast sampler uses; tests hold them equal.
    """

    needs_contact_forces: bool = False  # whether rewards or observations read cfrc_ext
    _qpos_before: np.ndarray

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """v5's reset; `options["task"]` sets the task, and `info["task"]` reports it."""
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self._reset_task(options)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """v5's step, keeping qpos from before it for the velocities of `reward_terms`."""
        self._qpos_before = self.data.qpos.copy()  # for velocities; the physics is v5's own
        return super().step(action)

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        batch = Transitions(
            self.task_vector(self._current_task())[None],
            self._qpos_before[None],
            self.data.qpos[None],
            np.asarray(action, dtype=np.float64)[None],
            self.data.cfrc_ext[None],
        )
        terms = self.reward_terms(batch)
        terms = {name: float(value[0]) for name, value in terms.items()}
        return sum(terms.values()), {**terms, "task": self._task_info()}

    @abstractmethod
    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """Reward terms `{name: [B]}` that sum to the reward of the B transitions."""

    @abstractmethod
    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, cfrc_ext: np.ndarray
    ) -> np.ndarray:
        """Observations [B, obs_dim] of B states, equal to v5's `_get_obs` on each."""

    @abstractmethod
    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Termination flags [B] of B states, equal to v5's termination test on each."""
