"""`VectorSampler`: (policy parameters, tasks) → `Episodes`, as fast as the physics allows.

B = tasks × episodes_per_task envs step together. Each step runs ONE policy forward for all B
envs, with per-task parameter sets stacked and batched by `torch.func.vmap`, then steps the
physics of all B envs: in C threads for metarl's MuJoCo envs (`MujocoBatchEnv`), as numpy arrays
in this process for metarl's Navigation2D, Bandit and TabularMDP (`ToyBatchEnv`), in worker
processes for any other Gymnasium env (`GymBatchEnv`). docs/architecture.md §3.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from metarl.envs import ENVS, resolve_env_id
from metarl.envs.base import Task
from metarl.envs.mujoco_task import MujocoTaskEnv
from metarl.policies import Params, call
from metarl.sampling.episodes import Episodes
from metarl.sampling.gym_batch_env import GymBatchEnv
from metarl.sampling.mujoco_batch_env import MujocoBatchEnv
from metarl.sampling.toy_batch_env import ToyBatchEnv

ParamSets = Params | Sequence[Params] | None


class VectorSampler:
    """Collects episodes of a batch of tasks with up to `num_envs` envs stepped together.

    env: a Gymnasium id (metarl ids also by short name) or a picklable env factory.
    horizon: steps per episode; defaults to the env's registered `max_episode_steps`.
    num_workers: cores for the physics (threads on the MuJoCo fast path, processes on the generic
        path; 0 runs the generic path in this process). fast: use the fast path the env allows:
        C threads for metarl's MuJoCo envs, numpy arrays in this process for Navigation2D,
        Bandit and TabularMDP (both give the generic path's episodes; False forces the generic).
    torch_threads: torch's intra-op threads while `sample` runs the policy, leaving the other
        cores to the physics. torch's thread count is process-wide: `sample` sets it and puts
        the previous count back when it returns; None leaves it alone.
    """

    def __init__(
        self,
        env: str | Callable[[], gym.Env],
        num_envs: int,
        *,
        env_kwargs: dict[str, Any] | None = None,
        horizon: int | None = None,
        seed: int = 0,
        num_workers: int = 2,
        fast: bool = True,
        torch_threads: int | None = 1,
    ) -> None:
        """Build the `num_envs` envs of `env` (arguments above) and seed the RNGs of env resets
        and action noise with `seed`. Raises `ValueError` before building them if the batch
        would not fit in the memory available."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        num_envs = int(num_envs)
        env_fn = _env_factory(env, env_kwargs or {})
        self.env_id: str | None = env_fn.args[0] if isinstance(env_fn, functools.partial) else None
        template = env_fn()
        horizon = horizon or (template.spec.max_episode_steps if template.spec else None)
        if not horizon or horizon < 1:
            raise ValueError("the env has no registered max_episode_steps: give a horizon >= 1")
        self.horizon, self.num_envs = int(horizon), num_envs
        self.observation_space, self.action_space = (
            template.observation_space,
            template.action_space,
        )
        mujoco_path = fast and isinstance(template.unwrapped, MujocoTaskEnv)
        toy_path = fast and not mujoco_path and ToyBatchEnv.supports(template)
        if mujoco_path:
            per_env = MujocoBatchEnv.bytes_per_env(template.unwrapped)
        else:
            per_env = ToyBatchEnv.bytes_per_env(template) if toy_path else 0
        try:
            check_batch_memory(
                num_envs, self.horizon, self.observation_space, self.action_space, per_env
            )
        except ValueError:
            template.close()
            raise
        self.batch_env: MujocoBatchEnv | ToyBatchEnv | GymBatchEnv
        if mujoco_path:
            self.batch_env = MujocoBatchEnv(template.unwrapped, num_envs, max(num_workers, 1))
        elif toy_path:
            self.batch_env = ToyBatchEnv(template, num_envs)
        else:
            template.close()
            self.batch_env = GymBatchEnv(env_fn, num_envs, num_workers)
        self.torch_threads = torch_threads
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)

    def sample(
        self,
        policy: nn.Module,
        tasks: Sequence[Task] | None,
        episodes_per_task: int,
        params: ParamSets = None,
        *,
        episodes_per_trial: int = 1,
        deterministic: bool = False,
    ) -> Episodes:
        """Run `episodes_per_task` columns per task; return them as one `Episodes` batch.

        params: None (the policy's own), one dict (shared), or one dict per task (stacked and
            batched with vmap). episodes_per_trial: episodes per column, back to back with the
            recurrent hidden state carried across them (RL² trials). deterministic: take the
            distribution's mode instead of sampling.
        """
        tasks_or_none: list[Task | None] = [None] if tasks is None else list(tasks)
        num_tasks = len(tasks_or_none)
        batch = num_tasks * episodes_per_task
        if not 1 <= batch <= self.num_envs:
            raise ValueError(
                f"{num_tasks} tasks × {episodes_per_task} episodes need {batch} envs; "
                f"this sampler has {self.num_envs}"
            )
        if episodes_per_trial > 1:
            check_batch_memory(
                batch,
                self.horizon * episodes_per_trial,
                self.observation_space,
                self.action_space,
                0,
                "episodes_per_trial",
            )
        forward = _batched_forward(policy, params, num_tasks)
        with torch.no_grad(), torch_threads(self.torch_threads):
            return self._collect(
                policy, forward, tasks_or_none, episodes_per_task, episodes_per_trial, deterministic
            )

    @staticmethod
    def seeded_state(seed: int) -> dict[str, Any]:
        """The `state_dict` of a sampler freshly seeded with `seed`, for a second stream (an
        evaluation's) that a caller swaps in with `load_state_dict` and out again."""
        return {
            "numpy": np.random.default_rng(seed).bit_generator.state,
            "torch": torch.Generator().manual_seed(seed).get_state(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The random state of env resets and action noise, so a resumed run samples the same."""
        return {"numpy": self._rng.bit_generator.state, "torch": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self._rng.bit_generator.state = state["numpy"]
        self._generator.set_state(state["torch"])

    def close(self) -> None:
        """Release the physics threads or worker processes (the in-process path has none)."""
        self.batch_env.close()

    def __enter__(self) -> VectorSampler:
        """The sampler itself, closed when the `with` block ends."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the sampler; an exception from the block propagates."""
        self.close()

    def _collect(
        self,
        policy: nn.Module,
        forward: Callable[..., Any],
        tasks: list[Task | None],
        episodes_per_task: int,
        episodes_per_trial: int,
        deterministic: bool,
    ) -> Episodes:
        batch = len(tasks) * episodes_per_task
        max_steps = self.horizon * episodes_per_trial
        column_task = np.repeat(np.arange(len(tasks)), episodes_per_task)
        column_tasks = [tasks[i] for i in column_task]
        all_ids = np.arange(batch)
        seeds = self._rng.integers(2**31, size=batch).tolist()
        obs = self.batch_env.reset(all_ids, column_tasks, seeds).astype(np.float32)

        buffers = _Buffers(max_steps, batch, obs.shape[1:], self.action_space)
        active = np.ones(batch, dtype=bool)
        episodes_done = np.zeros(batch, dtype=np.int64)
        episode_steps = np.zeros(batch, dtype=np.int64)
        recurrent_state = (
            _RecurrentState(policy, batch, self.action_space) if policy.recurrent else None
        )
        low, high = _action_bounds(self.action_space)

        steps = 0
        while active.any() and steps < max_steps:
            ids = np.flatnonzero(active)
            obs_t = torch.from_numpy(obs)
            if recurrent_state is None:
                dist_params = forward(obs_t)
            else:
                dist_params = recurrent_state.step(forward, obs_t)
            if deterministic:
                actions = policy.action_dist.mode(dist_params)
            else:
                actions = policy.action_dist.sample(dist_params, self._generator)
            log_probs = policy.action_dist.distribution(dist_params).log_prob(actions)

            env_actions = actions.numpy()[ids]
            if low is not None:
                env_actions = np.clip(env_actions, low, high)
            next_obs, rewards, terminated, truncated = self.batch_env.step(ids, env_actions)
            episode_steps[ids] += 1
            dones = terminated | truncated | (episode_steps[ids] >= self.horizon)
            buffers.record(steps, ids, obs_t, actions, log_probs, rewards, dones, terminated)
            if recurrent_state is not None:
                recurrent_state.remember(ids, actions, rewards, dones)

            obs[ids] = next_obs
            episodes_done[ids] += dones
            ended = ids[dones]
            finished = ended[episodes_done[ended] >= episodes_per_trial]
            active[finished] = False
            restart = ended[episodes_done[ended] < episodes_per_trial]
            if len(restart):
                obs[restart] = self.batch_env.reset(
                    restart, [None] * len(restart), [None] * len(restart)
                )
                episode_steps[restart] = 0
            steps += 1
        return buffers.episodes(steps, torch.from_numpy(column_task), list(tasks))


class _Buffers:
    """Preallocated [T, B] tensors that the collection loop fills step by step."""

    def __init__(self, steps: int, batch: int, obs_shape: tuple, action_space: gym.Space) -> None:
        discrete = isinstance(action_space, gym.spaces.Discrete)
        action_shape = () if discrete else action_space.shape
        self.observations = torch.zeros(steps, batch, *obs_shape)
        self.actions = torch.zeros(
            steps, batch, *action_shape, dtype=torch.int64 if discrete else torch.float32
        )
        self.rewards = torch.zeros(steps, batch)
        self.log_probs = torch.zeros(steps, batch)
        self.dones = torch.zeros(steps, batch, dtype=torch.bool)
        self.terminated = torch.zeros(steps, batch, dtype=torch.bool)
        self.mask = torch.zeros(steps, batch)

    def record(
        self,
        t: int,
        ids: np.ndarray,
        obs: Tensor,
        actions: Tensor,
        log_probs: Tensor,
        rewards: np.ndarray,
        dones: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        index = torch.from_numpy(ids)
        self.observations[t, index] = obs[index]
        self.actions[t, index] = actions[index].to(self.actions.dtype)
        self.log_probs[t, index] = log_probs[index].float()
        self.rewards[t, index] = torch.from_numpy(np.asarray(rewards, dtype=np.float32))
        self.dones[t, index] = torch.from_numpy(np.asarray(dones, dtype=bool))
        self.terminated[t, index] = torch.from_numpy(np.asarray(terminated, dtype=bool))
        self.mask[t, index] = 1.0

    def episodes(self, steps: int, task_index: Tensor, tasks: list) -> Episodes:
        return Episodes(
            observations=self.observations[:steps],
            actions=self.actions[:steps],
            rewards=self.rewards[:steps],
            log_probs=self.log_probs[:steps],
            dones=self.dones[:steps],
            terminated=self.terminated[:steps],
            mask=self.mask[:steps],
            task_index=task_index,
            tasks=tasks,
        )


class _RecurrentState:
    """Hidden state and previous (action, reward, done) of each column, for recurrent policies.

    Carried across the episodes of a column (an RL² trial); fresh zeros for every new batch.
    """

    def __init__(self, policy: nn.Module, batch: int, action_space: gym.Space) -> None:
        self.hidden = policy.initial_hidden(batch)
        if isinstance(action_space, gym.spaces.Discrete):
            self.prev_action = torch.zeros(batch, dtype=torch.int64)
        else:
            self.prev_action = torch.zeros(batch, *action_space.shape)
        self.prev_reward = torch.zeros(batch)
        self.prev_done = torch.zeros(batch)

    def step(self, forward: Callable[..., Any], obs: Tensor) -> Any:
        dist_params, self.hidden = forward(
            obs, self.prev_action, self.prev_reward, self.prev_done, self.hidden
        )
        return dist_params

    def remember(
        self, ids: np.ndarray, actions: Tensor, rewards: np.ndarray, dones: np.ndarray
    ) -> None:
        index = torch.from_numpy(ids)
        self.prev_action[index] = actions[index].to(self.prev_action.dtype)
        self.prev_reward[index] = torch.from_numpy(np.asarray(rewards, dtype=np.float32))
        self.prev_done[index] = torch.from_numpy(np.asarray(dones, dtype=np.float32))


def _batched_forward(policy: nn.Module, params: ParamSets, num_tasks: int) -> Callable:
    """`policy.forward` over all B envs: per-task parameter sets go through one vmap call."""
    if params is None or isinstance(params, dict):
        return functools.partial(call, policy, params)
    if len(params) != num_tasks:
        raise ValueError(f"got {len(params)} parameter sets for {num_tasks} tasks")
    stacked = {name: torch.stack([p[name] for p in params]).detach() for name in params[0]}
    batched = vmap(lambda p, *inputs: functional_call(policy, p, inputs))

    def forward(*inputs: Tensor) -> Any:
        grouped = [x.reshape(num_tasks, -1, *x.shape[1:]) for x in inputs]
        return _merge_task_axis(batched(stacked, *grouped))

    return forward


def _merge_task_axis(output: Any) -> Any:
    """Reshape every tensor of a (nested tuple) output from [tasks, per_task, ...] to [B, ...]."""
    if isinstance(output, tuple):
        return tuple(_merge_task_axis(x) for x in output)
    return output.reshape(-1, *output.shape[2:])


def _action_bounds(space: gym.Space) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Box bounds to clip sampled actions to before the env sees them (log-probs stay raw)."""
    if isinstance(space, gym.spaces.Box):
        return space.low, space.high
    return None, None


def check_batch_memory(
    num_envs: int,
    steps: int,
    observation_space: gym.Space,
    action_space: gym.Space,
    bytes_per_env: int = 0,
    also: str = "horizon",
) -> None:
    """Raise a one-line `ValueError` if `num_envs` envs × `steps` steps of episode buffers (and
    `bytes_per_env` of env state each) would not fit in the memory available now.

    The estimate is a floor: float32 observations, actions and four per-step scalars (reward,
    log-prob, mask, done flags), which the sampler's buffers hold; training adds more on top.
    `also` names the setting besides the batch size that sets `steps`. No check where the
    available memory cannot be read.
    """
    available = available_memory()
    if available is None:
        return
    per_step = _flat_size(observation_space) + _flat_size(action_space) + 4
    needed = num_envs * (steps * per_step * 4 + bytes_per_env)
    if needed > available:
        raise ValueError(
            f"a batch of {num_envs} envs × {steps} steps needs about {_bytes_text(needed)} of "
            f"memory but {_bytes_text(available)} is available: lower the batch size (num_envs = "
            f"tasks × episodes per task, e.g. an agent's meta_batch_size × episodes_per_task) or "
            f"{also}"
        )


def available_memory() -> int | None:
    """Bytes this process can still allocate: /proc/meminfo's MemAvailable (free pages where it is
    missing), capped by a cgroup v2 memory limit; None where none of these can be read."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None
    try:
        with (
            open("/sys/fs/cgroup/memory.max") as limit,
            open("/sys/fs/cgroup/memory.current") as current,
        ):
            maximum = limit.read().strip()
            if maximum != "max":
                available = min(available, max(int(maximum) - int(current.read()), 0))
    except (OSError, ValueError):
        pass
    return available


def _flat_size(space: gym.Space) -> int:
    """Numbers per step of a space: 1 for Discrete (its int64 actions count as 2 float32 slots)."""
    if isinstance(space, gym.spaces.Discrete):
        return 2
    return math.prod(space.shape) if space.shape else 1


def _bytes_text(count: int) -> str:
    """`count` bytes in GiB (MiB below 1 GiB), for messages."""
    if count < 2**30:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**30:.1f} GiB"


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch on `count` intra-op threads inside the block, its previous count restored after
    (None: unchanged)."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _env_factory(env: str | Callable[[], gym.Env], kwargs: dict[str, Any]) -> Callable:
    """A picklable zero-argument env constructor for an id (metarl short names allowed)."""
    if callable(env):
        if kwargs:
            raise ValueError("env_kwargs go with an env id, not with an env factory")
        return env
    env_id = resolve_env_id(env) if env.startswith("metarl/") or env in _SHORT_NAMES else env
    return functools.partial(gym.make, env_id, **kwargs)


_SHORT_NAMES = {entry.short_name for entry in ENVS}
