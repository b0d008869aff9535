"""metarl's task-distribution environments, registered with Gymnasium as `metarl/<Name>-v0`.

Importing this package (which `import metarl` does) registers every id; the env classes are
imported only when `gymnasium.make` builds one. Each env offers `sample_tasks(n)`, `set_task`,
`get_task` on `env.unwrapped` (docs/architecture.md §3, §4).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered task family: its Gymnasium id, CLI short name, class and horizon."""

    id: str
    short_name: str
    entry_point: str
    max_episode_steps: int
    description: str
    extra: str | None = None
    """The pip extra the env needs (`pip install -e ".[extra]"`), None if it needs none."""

    @property
    def installed(self) -> bool:
        """Whether the env can be made here: its extra's package is installed."""
        return self.extra is None or importlib.util.find_spec(self.extra) is not None


ENVS: tuple[EnvEntry, ...] = (
    EnvEntry(
        "metarl/HalfCheetahVel-v0",
        "halfcheetah-vel",
        "metarl.envs.half_cheetah:HalfCheetahVelEnv",
        200,
        "HalfCheetah runs at a target velocity v* ~ U[0, 3]",
    ),
    EnvEntry(
        "metarl/HalfCheetahDir-v0",
        "halfcheetah-dir",
        "metarl.envs.half_cheetah:HalfCheetahDirEnv",
        200,
        "HalfCheetah runs forward or backward",
    ),
    EnvEntry(
        "metarl/AntDir-v0",
        "ant-dir",
        "metarl.envs.ant:AntDirEnv",
        200,
        "Ant walks forward or backward along x",
    ),
    EnvEntry(
        "metarl/AntVel-v0",
        "ant-vel",
        "metarl.envs.ant:AntVelEnv",
        200,
        "Ant walks forward at a target velocity v* ~ U[0, 3]",
    ),
    EnvEntry(
        "metarl/AntDir2D-v0",
        "ant-dir2d",
        "metarl.envs.ant:AntDir2DEnv",
        200,
        "Ant walks along a direction drawn from the circle",
    ),
    EnvEntry(
        "metarl/AntGoal-v0",
        "ant-goal",
        "metarl.envs.ant:AntGoalEnv",
        200,
        "Ant walks to a goal drawn from the disk of radius 3",
    ),
    EnvEntry(
        "metarl/HumanoidDir-v0",
        "humanoid-dir",
        "metarl.envs.humanoid:HumanoidDirEnv",
        200,
        "Humanoid walks along a direction drawn from the circle",
    ),
    EnvEntry(
        "metarl/Walker2dRandParams-v0",
        "walker2d-rand-params",
        "metarl.envs.rand_params:Walker2dRandParamsEnv",
        200,
        "Walker2d runs forward; a task scales masses, inertias, damping, friction",
    ),
    EnvEntry(
        "metarl/HopperRandParams-v0",
        "hopper-rand-params",
        "metarl.envs.rand_params:HopperRandParamsEnv",
        200,
        "Hopper hops forward; a task scales masses, inertias, damping, friction",
    ),
    EnvEntry(
        "metarl/Navigation2D-v0",
        "navigation2d",
        "metarl.envs.navigation:Navigation2DEnv",
        100,
        "A point moves to an unobserved goal in [-0.5, 0.5]²",
    ),
    EnvEntry(
        "metarl/ML1-v0",
        "ml1",
        "metarl.envs.metaworld:ML1Env",
        500,
        "Meta-World ML1: one env (env_name, e.g. push-v3), 50 train and 50 test goals",
        extra="metaworld",
    ),
    EnvEntry(
        "metarl/ML10-v0",
        "ml10",
        "metarl.envs.metaworld:ML10Env",
        500,
        "Meta-World ML10: 10 train and 5 test manipulation envs, 50 goals each",
        extra="metaworld",
    ),
    EnvEntry(
        "metarl/ML45-v0",
        "ml45",
        "metarl.envs.metaworld:ML45Env",
        500,
        "Meta-World ML45: 45 train and 5 test manipulation envs, 50 goals each",
        extra="metaworld",
    ),
    EnvEntry(
        "metarl/Bandit-v0",
        "bandit",
        "metarl.envs.bandit:BanditEnv",
        1,
        "k-armed Bernoulli bandit, one pull per episode, p_i ~ U[0, 1]",
    ),
    EnvEntry(
        "metarl/TabularMDP-v0",
        "tabular-mdp",
        "metarl.envs.tabular_mdp:TabularMDPEnv",
        10,
        "Random 10-state, 5-action MDP with Gaussian rewards",
    ),
)


def register_envs() -> None:
    """Register every metarl env with Gymnasium (idempotent)."""
    for entry in ENVS:
        if entry.id not in gym.registry:
            gym.register(
                id=entry.id,
                entry_point=entry.entry_point,
                max_episode_steps=entry.max_episode_steps,
            )


def resolve_env_id(name: str) -> str:
    """Map a full id (`metarl/AntDir-v0`) or short name (`ant-dir`) to the full id."""
    for entry in ENVS:
        if name == entry.id or name.lower() == entry.short_name:
            return entry.id
    valid = ", ".join(f"{e.short_name} ({e.id})" for e in ENVS)
    raise ValueError(f"unknown env {name!r}; the envs are: {valid}")


def make(name: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` for a metarl env given by full id or short name."""
    return gym.make(resolve_env_id(name), **kwargs)


register_envs()
