"""The sampler's in-process path for metarl's non-MuJoCo envs: Navigation2D, Bandit, TabularMDP.

All B envs live in numpy arrays (positions, states, task arrays) and one `step` moves all of
them with a few array operations: no worker processes (so a script needs no `__main__` guard).
Episodes are bit for bit those of the Gymnasium envs that `gymnasium.make` builds, random draws
included:

- each env keeps its own `np_random`, the generator `reset(seed=...)` makes
  (`seeding.np_random(seed)`), and a step draws from it what the env's `step` draws, in the same
  order: `random()` (Bandit's pull); `standard_normal()` then `random()` (TabularMDP's reward
  noise, then its next state). The per-env draw, one generator call per draw per env per step
  (~1 µs each), is the only per-env Python in `step`; the rest (rewards, transitions by comparing
  the drawn uniforms with cumulative probabilities, observations, all of Navigation2D) is arrays.
- a task an env draws itself (no task given) comes from `np_random.spawn(1)`, as `TaskEnv` does;
  `TimeLimit`'s truncation and `OrderEnforcing`'s reset-first rule are kept.

Which envs qualify (`ToyBatchEnv.supports`): exactly these three classes, under no wrappers but
the three `gymnasium.make` adds, since a subclass or another wrapper could change the dynamics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from metarl.envs.bandit import BanditEnv
from metarl.envs.base import Task
from metarl.envs.navigation import Navigation2DEnv
from metarl.envs.tabular_mdp import TabularMDPEnv

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_MAKE_WRAPPERS = (TimeLimit, OrderEnforcing, PassiveEnvChecker)
"""The wrappers `gymnasium.make` puts around an env, none of which changes what a step returns."""


class _Dynamics:
    """The vectorized step of one env class over arrays of `n` envs; tasks set per env."""

    uses_rng: ClassVar[bool] = False
    """Whether a step draws from the env's `np_random` (else only a task draw does)."""

    def __init__(self, env: gym.Env, n: int) -> None:
        """Arrays for `n` copies of `env` (the unwrapped template, whose settings they take)."""

    def set_task(self, i: int, task: Task) -> None:
        """Make the validated `task` env `i`'s."""

    def reset(self, ids: np.ndarray) -> np.ndarray:
        """Put the envs `ids` at their start; their observations [n, obs]."""
        raise NotImplementedError

    def step(
        self, ids: np.ndarray, actions: np.ndarray, generators: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step the envs `ids`, drawing from their `np_random`s `generators` [n] (objects; None
        where `uses_rng` is False): (observations [n, obs], rewards [n], terminated [n])."""
        raise NotImplementedError

    @staticmethod
    def bytes_per_env(env: gym.Env) -> int:
        """Bytes of arrays one env needs (for the sampler's memory check)."""
        return 0


class _Navigation(_Dynamics):
    """`Navigation2DEnv.step`: s ← s + clip(a, ±max_action); reward −‖s − g‖₂."""

    def __init__(self, env: Navigation2DEnv, n: int) -> None:
        """Positions and goals [n, 2]; the template's action bound."""
        self.max_action = env._max_action  # the same float the env clips with
        self.position, self.goal = np.zeros((n, 2)), np.zeros((n, 2))

    def set_task(self, i: int, task: Task) -> None:
        """The goal."""
        self.goal[i] = task["goal"]

    def reset(self, ids: np.ndarray) -> np.ndarray:
        """Back to the origin."""
        self.position[ids] = 0.0
        return self.position[ids].astype(np.float32)

    def step(
        self, ids: np.ndarray, actions: np.ndarray, generators: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Move by the clipped actions; reward minus the distance to the goal."""
        rows = _rows(ids)
        # clip(a, ±m) as min(max(a, −m), m): the same numbers for a bound m > 0 (NaN passes
        # through both), without `np.clip`'s Python layers.
        step = np.minimum(np.maximum(actions, -self.max_action), self.max_action)
        position = self.position[rows] + step
        self.position[rows] = position
        offset = position - self.goal[rows]
        rewards = -np.hypot(offset[:, 0], offset[:, 1])
        return position.astype(np.float32), rewards, np.zeros(len(ids), dtype=bool)

    @staticmethod
    def bytes_per_env(env: gym.Env) -> int:
        """Position and goal."""
        return 4 * 8


class _Bandit(_Dynamics):
    """`BanditEnv.step`: reward 1 with probability p_arm (one `random()` draw); terminates."""

    uses_rng = True

    def __init__(self, env: BanditEnv, n: int) -> None:
        """Arm probabilities [n, k]."""
        self.probs = np.zeros((n, env.action_space.n))

    def set_task(self, i: int, task: Task) -> None:
        """The arms' probabilities."""
        self.probs[i] = task["probs"]

    def reset(self, ids: np.ndarray) -> np.ndarray:
        """The constant observation [1.0]."""
        return np.ones((len(ids), 1), dtype=np.float32)

    def step(
        self, ids: np.ndarray, actions: np.ndarray, generators: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pull each env's arm."""
        probs = self.probs[ids, _arms(actions, self.probs.shape[1])]
        u = np.array([generator.random() for generator in generators], dtype=np.float64)
        rewards = (u < probs).astype(np.float64)
        return self.reset(ids), rewards, np.ones(len(ids), dtype=bool)

    @staticmethod
    def bytes_per_env(env: gym.Env) -> int:
        """The arm probabilities."""
        return 8 * int(env.action_space.n)


class _TabularMDP(_Dynamics):
    """`TabularMDPEnv.step`: r = μ_sa + noise · `standard_normal()`, then s' by inverse CDF of
    one `random()` draw; never terminates."""

    uses_rng = True

    def __init__(self, env: TabularMDPEnv, n: int) -> None:
        """Reward means [n, S, A], transition CDFs [n, S, A, S], states [n]."""
        states, actions = env.observation_space.shape[0], env.action_space.n
        self.noise_std, self.start_state = env._noise_std, env._start_state
        self.means = np.zeros((n, states, actions))
        self.cumulative = np.zeros((n, states, actions, states))
        self.state = np.full(n, self.start_state, dtype=np.intp)

    def set_task(self, i: int, task: Task) -> None:
        """The MDP's arrays, cached as `TabularMDPEnv.set_task` caches them."""
        self.means[i] = np.asarray(task["reward_means"])
        self.cumulative[i] = np.cumsum(task["transitions"], axis=-1)

    def reset(self, ids: np.ndarray) -> np.ndarray:
        """Back to the start state."""
        self.state[ids] = self.start_state
        return self._observations(ids)

    def step(
        self, ids: np.ndarray, actions: np.ndarray, generators: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reward noise first, then the next-state draw, as the env draws them."""
        state, action = self.state[ids], _arms(actions, self.means.shape[2])
        draws = [(generator.standard_normal(), generator.random()) for generator in generators]
        normal, u = np.array(draws, dtype=np.float64).reshape(len(ids), 2).T
        rewards = self.means[ids, state, action] + self.noise_std * normal
        # searchsorted(cdf, u, side="right") on a sorted cdf counts its entries <= u.
        next_state = (self.cumulative[ids, state, action] <= u[:, None]).sum(axis=1)
        self.state[ids] = np.minimum(next_state, self.means.shape[1] - 1)
        return self._observations(ids), rewards, np.zeros(len(ids), dtype=bool)

    def _observations(self, ids: np.ndarray) -> np.ndarray:
        one_hot = np.zeros((len(ids), self.means.shape[1]), dtype=np.float32)
        one_hot[np.arange(len(ids)), self.state[ids]] = 1.0
        return one_hot

    @staticmethod
    def bytes_per_env(env: gym.Env) -> int:
        """Means, CDFs and the state."""
        states, actions = env.observation_space.shape[0], int(env.action_space.n)
        return 8 * (states * actions * (states + 1) + 1)


def _rows(ids: np.ndarray) -> slice | np.ndarray:
    """`ids` as a slice where they are a run of consecutive envs (the sampler's usual batch):
    a slice indexes a view, where an index array gathers a copy, several per step."""
    count = len(ids)
    if count == 0 or ids[-1] - ids[0] != count - 1:
        return ids
    if count > 2 and not (ids[1:] > ids[:-1]).all():  # strictly increasing: no repeats
        return ids
    return slice(int(ids[0]), int(ids[-1]) + 1)


def _arms(actions: np.ndarray, count: int) -> np.ndarray:
    """Discrete actions as indices, checked as the envs check each: integers in [0, count)."""
    actions = np.asarray(actions)
    if actions.dtype.kind not in "iu" or np.any((actions < 0) | (actions >= count)):
        raise ValueError(f"action must be an integer in [0, {count}), got {actions!r}")
    return actions.astype(np.intp)


_DYNAMICS: dict[type, type[_Dynamics]] = {
    Navigation2DEnv: _Navigation,
    BanditEnv: _Bandit,
    TabularMDPEnv: _TabularMDP,
}


class ToyBatchEnv:
    """`num_envs` copies of a metarl Navigation2D, Bandit or TabularMDP env, as arrays.

    env: the template env as `gymnasium.make` built it (owned: closed by `close`); its settings
    (constructor arguments, `max_episode_steps`) are those of every copy.
    """

    def __init__(self, env: gym.Env, num_envs: int) -> None:
        """Arrays for `num_envs` envs; each starts with no task and no seed, as a new env."""
        if not self.supports(env):
            raise TypeError(f"the in-process path needs a metarl toy env, got {env}")
        self.template, self.env = env, env.unwrapped
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.num_envs = num_envs
        self.max_episode_steps = _max_episode_steps(env)
        self._dynamics = _DYNAMICS[type(self.env)](self.env, num_envs)
        self._generators = np.full(num_envs, None, dtype=object)  # each env's `np_random`
        self._seeds: list[int | None] = [None] * num_envs  # of a generator not made yet
        self._has_task = np.zeros(num_envs, dtype=bool)
        self._was_reset = np.zeros(num_envs, dtype=bool)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)

    @staticmethod
    def supports(env: gym.Env) -> bool:
        """Whether `env` is one of the three env classes (exactly: a subclass may step otherwise)
        under no wrappers but those of `gymnasium.make`."""
        while isinstance(env, gym.Wrapper):
            if type(env) not in _MAKE_WRAPPERS:
                return False
            env = env.env
        return type(env) in _DYNAMICS

    @staticmethod
    def bytes_per_env(env: gym.Env) -> int:
        """Bytes of the arrays one copy of `env` (a supported env) takes."""
        return _DYNAMICS[type(env.unwrapped)].bytes_per_env(env.unwrapped) + 64

    def reset(
        self, env_ids: np.ndarray, tasks: Sequence[Task | None], seeds: Sequence[int | None]
    ) -> np.ndarray:
        """Set the named envs' tasks (None: keep theirs), reseed those with a seed (None: their
        stream goes on) and reset them; returns their first observations [n, obs]."""
        env_ids = np.asarray(env_ids, dtype=np.intp)
        validated: dict[int, Task] = {}  # the sampler passes one task object per column of a task
        for i, task in zip(env_ids.tolist(), tasks, strict=True):
            if task is not None:
                if id(task) not in validated:
                    validated[id(task)] = self.env.task_distribution.validate(task)
                self._dynamics.set_task(i, validated[id(task)])
                self._has_task[i] = True
        for i, seed in zip(env_ids.tolist(), seeds, strict=True):
            if seed is not None:  # what `gymnasium.Env.reset(seed=seed)` does, when needed:
                # a seeded generator is ~25 µs to make, and Navigation2D's steps never draw,
                # so it is made from the seed only at its first draw (`_generator`).
                self._generators[i] = None
                self._seeds[i] = int(seed)
                if self._dynamics.uses_rng:
                    self._generator(i)
            elif self._dynamics.uses_rng:
                self._generator(i)  # made now, unseeded, for the step's draws
            if not self._has_task[i]:  # `TaskEnv._current_task`: a draw from a child generator
                child = self._generator(i).spawn(1)[0]
                task = self.env.task_distribution.sample(child, 1)[0]
                self._dynamics.set_task(i, self.env.task_distribution.validate(task))
                self._has_task[i] = True
        self._elapsed[env_ids] = 0
        self._was_reset[env_ids] = True
        return self._dynamics.reset(env_ids)

    def step(self, env_ids: np.ndarray, actions: np.ndarray) -> StepResult:
        """Step the named envs; returns (obs [n, obs], rewards, terminated, truncated) [n]."""
        env_ids = np.asarray(env_ids, dtype=np.intp)
        rows = _rows(env_ids)
        if not self._was_reset[rows].all():
            raise gym.error.ResetNeeded("reset an env before stepping it")
        generators = self._generators[env_ids] if self._dynamics.uses_rng else None
        obs, rewards, terminated = self._dynamics.step(env_ids, actions, generators)
        self._elapsed[rows] += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(len(env_ids), dtype=bool)
        else:
            truncated = self._elapsed[rows] >= self.max_episode_steps
        return obs, rewards, terminated, truncated

    def close(self) -> None:
        """Close the template env (there are no threads or processes)."""
        self.template.close()

    def _generator(self, i: int) -> np.random.Generator:
        """Env `i`'s `np_random`: made from the seed of its last seeded reset if none was made
        since (nothing has drawn from it, so it is the generator that reset would have made),
        else unseeded on first use, as `gymnasium.Env` makes it."""
        if self._generators[i] is None:
            self._generators[i] = seeding.np_random(self._seeds[i])[0]
            self._seeds[i] = None
        return self._generators[i]


def _max_episode_steps(env: gym.Env) -> int | None:
    """The step limit of the `TimeLimit` wrappers around `env` (the least), None without one."""
    limits = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit):
            limits.append(int(env._max_episode_steps))
        env = env.env
    return min(limits, default=None)
