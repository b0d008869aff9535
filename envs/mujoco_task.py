"""The mixin that turns a Gymnasium v5 MuJoCo env into a task env with a vectorized reward.

The reward is written once, over a batch of B states (`reward_terms`), and serves both the
Gymnasium env (B = 1) and the sampler's fast path, which steps all B physics states in C and
needs observations, rewards and terminations for all of them at once (docs/architecture.md §3).

The keyword arguments an env passes on to Gymnasium's are checked here too, from a table of
checks (`v5_kwargs`), so a bad one is a `ValueError` naming it, not an error deep in v5 or MuJoCo.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar, NamedTuple

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv, expand_model_path

from metarl.envs import mujoco_warnings
from metarl.envs.base import Task, TaskEnv
from metarl.envs.checks import (
    Check,
    check_bool,
    check_finite,
    check_int,
    check_nonnegative,
    check_one_of,
    check_str,
    describe,
    optional,
)

mujoco_warnings.install()


def check_xml_file(name: str, value: Any) -> str:
    """A path (str or `os.PathLike`) to an existing model file, as Gymnasium resolves it: a bare
    name is looked up among Gymnasium's MuJoCo assets."""
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{name} must be a path to a MuJoCo XML file, got {describe(value)}")
    path = os.fspath(value)
    try:
        full_path = expand_model_path(path)
    except OSError:
        full_path = None
    if full_path is None or not os.path.isfile(full_path):
        raise ValueError(f"{name} must name an existing MuJoCo XML file, got {path!r}")
    return path


def check_camera_config(name: str, value: Any) -> dict[str, Any]:
    """A dict of `mujoco.MjvCamera` attributes and finite values (Gymnasium sets them on the
    render camera only at the first `render`, so they are tried on a spare camera now)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict of MjvCamera attributes, got {describe(value)}")
    camera = mujoco.MjvCamera()
    for key, item in value.items():
        try:
            if isinstance(item, np.ndarray):  # as Gymnasium's renderer sets them
                getattr(camera, key)[:] = item
            else:
                setattr(camera, key, item)
            valid = bool(np.all(np.isfinite(getattr(camera, key))))
        except (AttributeError, TypeError, ValueError):
            valid = False
        if not valid:
            attributes = [a for a in dir(camera) if not a.startswith("_")]
            raise ValueError(
                f"{name}[{describe(key)}] must be a finite value of one of the MjvCamera "
                f"attributes {attributes}, got {describe(item)}"
            )
    return dict(value)


def check_visual_options(name: str, value: Any) -> dict[int, bool]:
    """A dict `{mjtVisFlag index: bool}` of render flags."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict {{mjtVisFlag: bool}}, got {describe(value)}")
    flags = int(mujoco.mjtVisFlag.mjNVISFLAG)
    return {
        check_int(f"{name} key", key, 0, flags): check_bool(f"{name}[{describe(key)}]", flag)
        for key, flag in value.items()
    }


def check_body(name: str, value: Any) -> int | str:
    """A body of the model by name or index (checked against the model once it is built)."""
    return value if isinstance(value, str) else check_int(name, value, low=0)


check_c_int = partial(check_int, low=1, high=2**31)
"""A count MuJoCo takes as a C int (steps per env step, image sizes): in [1, 2**31)."""


def v5_kwargs(env_class: type[MujocoEnv]) -> dict[str, Check]:
    """The keyword arguments every Gymnasium v5 MuJoCo env (`env_class`) takes, with checks."""
    return {
        "xml_file": check_xml_file,
        "frame_skip": check_c_int,
        "default_camera_config": optional(check_camera_config),
        "forward_reward_weight": check_finite,
        "ctrl_cost_weight": check_nonnegative,
        "reset_noise_scale": check_nonnegative,
        "exclude_current_positions_from_observation": check_bool,
        "render_mode": partial(check_one_of, choices=(None, *env_class.metadata["render_modes"])),
        "width": check_c_int,
        "height": check_c_int,
        "camera_id": optional(partial(check_int, low=-1)),  # -1: MuJoCo's free camera
        "camera_name": optional(check_str),
        "max_geom": check_c_int,
        "visual_options": optional(check_visual_options),
    }


class Transitions(NamedTuple):
    """B physics transitions, what a reward needs of them: arrays with a leading batch axis."""

    task_values: np.ndarray
    """`task_vector` of each env's task, [B, k]."""
    qpos_before: np.ndarray
    """Joint positions before the step, [B, nq]."""
    qpos_after: np.ndarray
    """Joint positions after the step, [B, nq]."""
    qvel_after: np.ndarray
    """Joint velocities after the step, [B, nv]."""
    actions: np.ndarray
    """The actions taken, float64 [B, nu]."""
    data_before: Mapping[str, np.ndarray]
    """The env's `data_fields` of `MjData` before the step, each [B, ...]."""
    data_after: Mapping[str, np.ndarray]
    """The env's `data_fields` after the step, each [B, ...]."""


class MujocoTaskEnv(TaskEnv, ABC):
    """Mixin for a v5 MuJoCo env: `_get_rew` becomes the sum of the vectorized `reward_terms`.

    Subclasses also give the vectorized twins of v5's `_get_obs` and termination test
    (`batch_observations`, `batch_terminated`) that the fast sampler uses; tests hold them equal.
    """

    data_fields: ClassVar[tuple[str, ...]] = ()
    """The `MjData` arrays besides qpos and qvel that the reward or observation read (Ant's
    contact forces `cfrc_ext`). The fast sampler keeps them per env; an env that reads any is
    stepped exactly through per-thread `MjData`s, since `mujoco.rollout` returns only the state."""
    task_changes_model: bool = False
    """Whether a task changes the physics (`apply_task` writes it into a model), not only the
    reward: then the fast sampler steps each env with its own model."""
    gymnasium_kwargs: ClassVar[Mapping[str, Check]] = {}
    """The keyword arguments of the Gymnasium env below, with their checks (`v5_kwargs`)."""
    _qpos_before: np.ndarray
    _data_before: dict[str, np.ndarray]

    def __init__(self, **kwargs: Any) -> None:
        """Check `kwargs` (Gymnasium's, all named in `gymnasium_kwargs`) and build the v5 env;
        then check those that name a body or camera against its model."""
        checked = {name: self.gymnasium_kwargs[name](name, value) for name, value in kwargs.items()}
        super().__init__(**checked)
        self._check_model_references(kwargs)

    @classmethod
    def constructor_kwargs(cls) -> tuple[str, ...]:
        """metarl's own parameters, then Gymnasium's."""
        return tuple(dict.fromkeys((*super().constructor_kwargs(), *cls.gymnasium_kwargs)))

    def _check_model_references(self, kwargs: Mapping[str, Any]) -> None:
        """Raise `ValueError` if `main_body`, `camera_id` or `camera_name` names no body or
        camera of the model (v5 would fail only at the first step or render, or not at all)."""
        references = (
            ("main_body", mujoco.mjtObj.mjOBJ_BODY, self.model.nbody),
            ("camera_id", mujoco.mjtObj.mjOBJ_CAMERA, self.model.ncam),
            ("camera_name", mujoco.mjtObj.mjOBJ_CAMERA, self.model.ncam),
        )
        for name, kind, count in references:
            value = kwargs.get(name)
            names = [mujoco.mj_id2name(self.model, kind, i) for i in range(count)]
            names = [n for n in names if n]  # unnamed bodies have None
            # The checks of `gymnasium_kwargs` have made an index an int >= 0 (>= -1 for a camera)
            if value is None or (value in names if isinstance(value, str) else value < count):
                continue
            what = "body" if kind == mujoco.mjtObj.mjOBJ_BODY else "camera"
            index = "" if name == "camera_name" else f" or an index < {count}"
            raise ValueError(
                f"{name} must be a {what} of the model: one of {names}{index}, got "
                f"{describe(value)}"
            )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """v5's reset; `options["task"]` sets the task, and `info["task"]` reports it."""
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "task": self._reset_task(options)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """v5's step, keeping qpos and `data_fields` from before it for `reward_terms`."""
        self._qpos_before = self.data.qpos.copy()  # for velocities; the physics is v5's own
        self._data_before = self._data_snapshot()
        return super().step(action)

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        batch = Transitions(
            self.task_vector(self._current_task())[None],
            self._qpos_before[None],
            self.data.qpos[None],
            self.data.qvel[None],
            np.asarray(action, dtype=np.float64)[None],
            {name: value[None] for name, value in self._data_before.items()},
            {name: value[None] for name, value in self._data_snapshot().items()},
        )
        terms = self.reward_terms(batch)
        terms = {name: float(value[0]) for name, value in terms.items()}
        return sum(terms.values()), {**terms, "task": self._task_info()}

    def _data_snapshot(self) -> dict[str, np.ndarray]:
        """Copies of this env's `data_fields` of `MjData`."""
        return {name: getattr(self.data, name).copy() for name in self.data_fields}

    def apply_task(self, model: mujoco.MjModel, task: Task) -> None:
        """Write `task` into `model` (this env's or a copy of it): nothing here, since the task
        of most envs changes only the reward (`task_changes_model`)."""

    @abstractmethod
    def reward_terms(self, batch: Transitions) -> dict[str, np.ndarray]:
        """Reward terms `{name: [B]}` that sum to the reward of the B transitions."""

    @abstractmethod
    def batch_observations(
        self, qpos: np.ndarray, qvel: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """Observations [B, obs_dim] of B states, equal to v5's `_get_obs` on each."""

    @abstractmethod
    def batch_terminated(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Termination flags [B] of B states, equal to v5's termination test on each."""
