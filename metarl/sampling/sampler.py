"""`VectorSampler`: (policy parameters, tasks) → `Episodes`, as fast as the physics allows.

B = tasks × episodes_per_task envs step together. Each step runs ONE policy forward for all B
envs, with per-task parameter sets stacked, then steps the physics of all B envs: in C threads
for metarl's MuJoCo envs (`MujocoBatchEnv`), as numpy arrays in this process for metarl's
Navigation2D, Bandit and TabularMDP (`ToyBatchEnv`), in worker processes for any other Gymnasium
env (`GymBatchEnv`). docs/architecture.md §3.

The forward is `torch.func.vmap` over the policy's `functional_call`, except for Gaussian MLPs
(MAML's policies), which run the same kernels without vmap and the log-density without
distribution objects (`_GaussianMLPActor`): a few µs per env step less, which is most of a
Navigation2D step (issue 13). Where a core is left beside the MuJoCo threads, the batch is
stepped in two halves so that one half's policy overlaps the other half's physics. Both give the
episodes of the plain loop bit for bit (tests/sampling/test_fast_actor.py).
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Self

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from metarl.envs import ENVS, resolve_env_id
from metarl.envs.base import Task
from metarl.envs.mujoco_task import MujocoTaskEnv
from metarl.policies import DiagGaussian, GaussianMLPPolicy, Params, call, parameters
from metarl.sampling.episodes import Episodes
from metarl.sampling.gym_batch_env import GymBatchEnv
from metarl.sampling.mujoco_batch_env import MujocoBatchEnv
from metarl.sampling.toy_batch_env import StepResult, ToyBatchEnv

ParamSets = Params | Sequence[Params] | None


class SeededSampler:
    """What every sampler shares: the random state of env resets (`_rng`, numpy) and action
    noise (`_generator`, torch), seeded alike and checkpointed in one layout, so that a run
    resumes on either sampler; and use as a context manager that closes it."""

    _rng: np.random.Generator
    _generator: torch.Generator

    def _seed(self, seed: int) -> None:
        """Seed both streams with `seed`."""
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)

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
        """Release what the sampler holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """The sampler itself, closed when the `with` block ends."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the sampler; an exception from the block propagates."""
        self.close()


class VectorSampler(SeededSampler):
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
        num_envs = check_count("num_envs", num_envs)
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
        self._seed(seed)
        self._host_copies = _HostCopies()

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
            distribution's mode instead of sampling. A policy (or parameter sets) on another
            device than the CPU is copied to the host once per call and run there; the
            episodes are CPU tensors either way.
        """
        tasks_or_none = check_request(
            self, tasks, episodes_per_task, params, episodes_per_trial=episodes_per_trial
        )
        with torch.no_grad(), torch_threads(self.torch_threads):
            policy, params = self._host_copies.of(policy, params)
            return self._collect(
                policy, params, tasks_or_none, episodes_per_task, episodes_per_trial, deterministic
            ).episodes

    def sample_columns(
        self,
        policy: nn.Module,
        tasks: list[Task | None],
        episodes_per_task: int,
        params: ParamSets,
        request: ColumnRequest,
    ) -> ColumnSample:
        """The columns `request.columns` of the batch that `sample` would collect for these
        arguments from the random state `request.generator_state` and reset seeds
        `request.seeds`, bit for bit: what one slice of a distributed sampler
        (`metarl.sampling.ray_sampler`) runs. This sampler's envs step only those columns
        (it needs as many envs as there are columns); the policy runs on the whole batch's
        shape, the other rows zeros, because a matrix product's rows can round differently
        in a product of fewer rows, and the action noise is drawn for the whole batch as
        `sample` draws it. The arguments are trusted (the caller checked them)."""
        self._generator.set_state(request.generator_state)
        with torch.no_grad(), torch_threads(self.torch_threads):
            policy, params = self._host_copies.of(policy, params)
            return self._collect(
                policy,
                params,
                tasks,
                episodes_per_task,
                request.episodes_per_trial,
                request.deterministic,
                request.columns,
                request.seeds,
            )

    def close(self) -> None:
        """Release the physics threads or worker processes (the in-process path has none)."""
        self.batch_env.close()

    def _collect(
        self,
        policy: nn.Module,
        params: ParamSets,
        tasks: list[Task | None],
        episodes_per_task: int,
        episodes_per_trial: int,
        deterministic: bool,
        columns: slice | None = None,
        seeds: list[int] | None = None,
    ) -> ColumnSample:
        """Step the batch until every column has run its episodes (or `max_steps` steps).

        The columns are stepped in row groups (`_row_groups`): one group, the whole batch, except
        where the physics runs in C threads beside a spare core and the policy batches by task,
        when two halves alternate so that one half's physics overlaps the other half's policy
        forward and bookkeeping (issue 13). Either way every column sees the same actions and
        outcomes: the policy's rows are computed alike in a group or in the whole batch
        (per-task `bmm`s of the same shapes) and the action noise is drawn for the whole batch
        once per step.

        `columns` (default: all) are the columns this call steps, env `i` of the batch env
        running column `columns.start + i`, with the reset `seeds` of those columns (default:
        drawn for the whole batch here); the other columns stay inactive, their observations
        zeros (`sample_columns`).
        """
        num_tasks = len(tasks)
        batch = num_tasks * episodes_per_task
        max_steps = self.horizon * episodes_per_trial
        column_task = np.repeat(np.arange(num_tasks), episodes_per_task)
        owned = slice(0, batch) if columns is None else columns
        offset = owned.start  # env i of the batch env runs column offset + i
        owned_ids = np.arange(owned.start, owned.stop)
        if seeds is None:
            seeds = self._rng.integers(2**31, size=batch).tolist()
        owned_tasks = [tasks[i] for i in column_task[owned]]
        first = self.batch_env.reset(owned_ids - offset, owned_tasks, seeds).astype(np.float32)
        if len(owned_ids) == batch:
            obs = first
        else:
            obs = np.zeros((batch, *first.shape[1:]), dtype=np.float32)
            obs[owned] = first

        buffers = _Buffers(max_steps, len(owned_ids), obs.shape[1:], self.action_space, offset)
        actor = _make_actor(
            policy,
            params,
            num_tasks,
            torch.from_numpy(obs),
            self.action_space,
            self._generator,
            deterministic,
        )
        groups = _row_groups(self.batch_env, actor, num_tasks, episodes_per_task)
        active = np.zeros(batch, dtype=bool)
        active[owned] = True
        all_ids = np.arange(batch)
        episodes_done = np.zeros(batch, dtype=np.int64)
        episode_steps = np.zeros(batch, dtype=np.int64)
        low, high = _action_bounds(self.action_space)
        group_steps = [0] * len(groups)
        pending: list[_Pending | None] = [None] * len(groups)

        def finish(g: int, step: _Pending) -> None:
            """Record the outcome of group `g`'s step and end or restart its finished episodes."""
            ids = step.ids
            next_obs, rewards, terminated, truncated, *success = step.outcome()
            episode_steps[ids] += 1
            dones = terminated | truncated | (episode_steps[ids] >= self.horizon)
            buffers.record_outcome(group_steps[g], ids, step.full, rewards, dones, terminated)
            if success and success[0] is not None:  # the generic path's info["success"]
                buffers.record_success(group_steps[g], ids, success[0])
            actor.remember(ids, step.actions, rewards, dones)
            obs[ids] = next_obs
            if dones.any():
                episodes_done[ids] += dones
                ended = ids[dones]
                active[ended[episodes_done[ended] >= episodes_per_trial]] = False
                restart = ended[episodes_done[ended] < episodes_per_trial]
                if len(restart):
                    obs[restart] = self.batch_env.reset(
                        restart - offset, [None] * len(restart), [None] * len(restart)
                    )
                    episode_steps[restart] = 0
            group_steps[g] += 1

        while True:
            stepped = False
            for g, rows in enumerate(groups):
                if pending[g] is not None:
                    finish(g, pending[g])
                    pending[g] = None
                t = group_steps[g]
                in_group = active[rows]
                if t >= max_steps or not in_group.any():
                    continue
                full = bool(in_group.all())
                ids = all_ids[rows] if full else np.flatnonzero(in_group) + rows.start
                obs_rows = torch.from_numpy(obs[rows])
                actions, log_probs = actor.act(obs_rows, rows, t)
                buffers.record_action(t, rows, ids, full, obs_rows, actions, log_probs)
                env_actions = actions.numpy() if full else actions.numpy()[ids - rows.start]
                if low is not None:
                    env_actions = np.clip(env_actions, low, high)
                env_ids = ids - offset if offset else ids
                outcome = _submit(self.batch_env, env_ids, env_actions, overlap=len(groups) > 1)
                pending[g] = _Pending(ids, full, actions, outcome)
                stepped = True
            if not stepped:
                break
        steps = max(group_steps)
        episodes = buffers.episodes(steps, torch.from_numpy(column_task[owned]), list(tasks))
        return ColumnSample(episodes, steps, self._generator.get_state())


class ColumnRequest(NamedTuple):
    """Which columns of a batch `VectorSampler.sample_columns` collects, and the random state
    they start from: what a distributed sampler sends each of its slices."""

    columns: slice
    """The batch's columns this slice steps."""
    seeds: list[int]
    """Their reset seeds (drawn for the whole batch by the caller, as `sample` draws them)."""
    generator_state: Tensor
    """The action-noise generator's state at the start of the batch."""
    episodes_per_trial: int = 1
    """As `sample`'s argument."""
    deterministic: bool = False
    """As `sample`'s argument."""


class ColumnSample(NamedTuple):
    """What a collection returns: the episodes of its columns, the steps it ran (the length of
    the episodes' time axis) and the action-noise generator's state after them."""

    episodes: Episodes
    steps: int
    generator_state: Tensor


def check_count(name: str, value: Any) -> int:
    """`value` as an int if it is an integer >= 1 (not a bool), else a one-line `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_request(
    sampler: Any,
    tasks: Sequence[Task] | None,
    episodes_per_task: int,
    params: ParamSets,
    *,
    episodes_per_trial: int = 1,
) -> list[Task | None]:
    """The tasks of a `sample` call as a list ([None]: the env's own task) after checking that
    the batch fits the sampler's `num_envs` and the memory, and that `params` has one set per
    task; a one-line `ValueError` otherwise. Shared by every sampler with `sample`'s
    signature."""
    tasks_or_none: list[Task | None] = [None] if tasks is None else list(tasks)
    num_tasks = len(tasks_or_none)
    batch = num_tasks * episodes_per_task
    if not 1 <= batch <= sampler.num_envs:
        raise ValueError(
            f"{num_tasks} tasks × {episodes_per_task} episodes need {batch} envs; "
            f"this sampler has {sampler.num_envs}"
        )
    if episodes_per_trial > 1:
        check_batch_memory(
            batch,
            sampler.horizon * episodes_per_trial,
            sampler.observation_space,
            sampler.action_space,
            0,
            "episodes_per_trial",
        )
    if params is not None and not isinstance(params, dict) and len(params) != num_tasks:
        raise ValueError(f"got {len(params)} parameter sets for {num_tasks} tasks")
    return tasks_or_none


class _Pending(NamedTuple):
    """A group's step in flight: its envs, whether they are the whole group, the policy's
    actions for the group's rows, and the call that waits for the step's outcome."""

    ids: np.ndarray
    full: bool
    actions: Tensor
    outcome: Callable[[], StepResult]


def _submit(
    batch_env: MujocoBatchEnv | ToyBatchEnv | GymBatchEnv,
    ids: np.ndarray,
    actions: np.ndarray,
    overlap: bool,
) -> Callable[[], StepResult]:
    """Start stepping the envs `ids`; returns the call that waits for (obs, rewards,
    terminated, truncated). Only the MuJoCo batch env steps in the background (`overlap`)."""
    if overlap and isinstance(batch_env, MujocoBatchEnv):
        return batch_env.step_async(ids, actions)
    result = batch_env.step(ids, actions)
    return lambda: result


def _row_groups(
    batch_env: MujocoBatchEnv | ToyBatchEnv | GymBatchEnv,
    actor: _Actor,
    num_tasks: int,
    episodes_per_task: int,
) -> list[slice]:
    """The row ranges stepped in turn: two halves (at a task boundary) where the physics runs in
    C threads that release the GIL, a core is left for this thread (`spare_core`) and the actor
    computes task groups alone; else the whole batch.

    The halves pay only with a spare core: they keep that core busy with one half's policy while
    the physics threads step the other half, but they cost a second policy call and physics call
    per step. Measured on the shared 2-core machine with both cores taken by the physics threads
    (issue 13), one group was the faster: HalfCheetahVel's 40-env batch 10–18k against
    9–16k env-steps/s, its 800-env batch 18.7–19.0k against 16.5–17.5k.
    """
    batch = num_tasks * episodes_per_task
    if (
        isinstance(batch_env, MujocoBatchEnv)
        and actor.splits_by_task
        and num_tasks >= 2
        and spare_core(batch_env.num_threads)
    ):
        middle = num_tasks // 2 * episodes_per_task
        return [slice(0, middle), slice(middle, batch)]
    return [slice(0, batch)]


def spare_core(physics_threads: int) -> bool:
    """Whether this process may run on more cores than the physics threads take."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores > physics_threads


class _Buffers:
    """Preallocated [T, B] tensors that the collection loop fills step by step.

    They are written through numpy views of the same memory: a numpy row assignment costs a
    fraction of a torch index_put, which matters at ~1 µs per env step (issue 13).
    """

    def __init__(
        self, steps: int, batch: int, obs_shape: tuple, action_space: gym.Space, offset: int = 0
    ) -> None:
        """Buffers of `batch` columns, the batch's columns `offset` .. `offset + batch − 1`
        (the `record_*` methods take the batch's column numbers)."""
        self.offset = offset
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
        self._arrays = {
            name: getattr(self, name).numpy()
            for name in ("observations", "actions", "rewards", "log_probs", "dones")
        }
        self._arrays["terminated"] = self.terminated.numpy()
        self._arrays["mask"] = self.mask.numpy()
        self.successes: Tensor | None = None  # made at the first success an env reports

    def record_action(
        self,
        t: int,
        rows: slice,
        ids: np.ndarray,
        full: bool,
        obs: Tensor,
        actions: Tensor,
        log_probs: Tensor,
    ) -> None:
        """Step `t`'s observations, actions and log-probs of the envs `ids` (all of `rows`
        when `full`), from tensors over `rows`."""
        arrays, offset = self._arrays, self.offset
        local = slice(None) if full else ids - rows.start
        if offset:
            where = slice(rows.start - offset, rows.stop - offset) if full else ids - offset
        else:
            where = rows if full else ids
        arrays["observations"][t, where] = obs.numpy()[local]
        arrays["actions"][t, where] = actions.numpy()[local]
        arrays["log_probs"][t, where] = log_probs.numpy()[local]
        arrays["mask"][t, where] = 1.0

    def record_outcome(
        self,
        t: int,
        ids: np.ndarray,
        full: bool,
        rewards: np.ndarray,
        dones: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Step `t`'s rewards (cast to float32) and end flags of the envs `ids`."""
        arrays, offset = self._arrays, self.offset
        where = slice(ids[0] - offset, ids[-1] + 1 - offset) if full else ids - offset
        arrays["rewards"][t, where] = rewards
        arrays["dones"][t, where] = dones
        arrays["terminated"][t, where] = terminated

    def record_success(self, t: int, ids: np.ndarray, success: np.ndarray) -> None:
        """Step `t`'s `info["success"]` of the envs `ids`."""
        if self.successes is None:
            self.successes = torch.zeros_like(self.dones)
        self.successes.numpy()[t, ids - self.offset] = success

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
            successes=None if self.successes is None else self.successes[:steps],
        )


class _Actor:
    """What the collection loop asks of the policy: actions and their log-probs for a range of
    rows at a step, and (for recurrent policies) the outcome of each step."""

    splits_by_task: bool = False
    """Whether `act` computes a range of whole tasks' rows alone, exactly as in the batch."""

    def act(self, obs: Tensor, rows: slice, step: int) -> tuple[Tensor, Tensor]:
        """Actions and log-probs [n, ...] for the observations `obs` [n, obs] of `rows`."""
        raise NotImplementedError

    def remember(
        self, ids: np.ndarray, actions: Tensor, rewards: np.ndarray, dones: np.ndarray
    ) -> None:
        """Take note of the step of the envs `ids` (recurrent policies feed it back)."""


class _PolicyActor(_Actor):
    """Any policy: its batched forward over the whole batch, then its action distribution."""

    def __init__(
        self,
        policy: nn.Module,
        params: ParamSets,
        num_tasks: int,
        batch: int,
        action_space: gym.Space,
        generator: torch.Generator,
        deterministic: bool,
    ) -> None:
        """The forward for `params` (`_batched_forward`), and the recurrent state if any."""
        self.policy, self.generator, self.deterministic = policy, generator, deterministic
        self.forward = _batched_forward(policy, params, num_tasks)
        self.recurrent = _RecurrentState(policy, batch, action_space) if policy.recurrent else None

    def act(self, obs: Tensor, rows: slice, step: int) -> tuple[Tensor, Tensor]:
        """The whole batch (`rows` spans it): sample or take the mode, and its log-probs."""
        if self.recurrent is None:
            dist_params = self.forward(obs)
        else:
            dist_params = self.recurrent.step(self.forward, obs)
        dist = self.policy.action_dist
        if self.deterministic:
            actions = dist.mode(dist_params)
        else:
            actions = dist.sample(dist_params, self.generator)
        return actions, dist.distribution(dist_params).log_prob(actions)

    def remember(
        self, ids: np.ndarray, actions: Tensor, rewards: np.ndarray, dones: np.ndarray
    ) -> None:
        """Feed the step back to a recurrent policy."""
        if self.recurrent is not None:
            self.recurrent.remember(ids, actions, rewards, dones)


class _GaussianMLPActor(_Actor):
    """`GaussianMLPPolicy` without vmap, functional_call or distribution objects per step.

    The MLP runs as the very kernels that `vmap(functional_call(...))` dispatches for it (per
    task: `bmm` with the transposed weight, bias added, then the activation; shared parameters:
    `F.linear`), and the log-density is `Normal.log_prob`'s expression with its
    observation-independent parts (σ, log σ, 2σ², from the policy's log-std of the whole batch)
    computed once per batch: bit for bit the episodes of `_PolicyActor`, at a fraction of the
    Python per step (issue 13; tests/sampling/test_fast_actor.py holds them equal).
    """

    def __init__(
        self,
        policy: nn.Module,
        params: ParamSets,
        num_tasks: int,
        first_obs: Tensor,
        generator: torch.Generator,
        deterministic: bool,
    ) -> None:
        """Take the layers' weights (stacked per task for a list of parameter sets) and the
        distribution's constant parts from one forward of the batch's first observations."""
        self.generator, self.deterministic = generator, deterministic
        self.per_task = isinstance(params, Sequence)
        self.splits_by_task = self.per_task
        self.num_tasks = num_tasks
        self.rows_per_task = first_obs.shape[0] // num_tasks
        own = parameters(policy)
        if self.per_task:
            values = {name: torch.stack([p[name] for p in params]).detach() for name in own}
        else:
            values = {name: t.detach() for name, t in {**own, **(params or {})}.items()}
        self.layers: list[tuple[Tensor, Tensor] | Callable[[Tensor], Tensor]] = []
        for index, layer in enumerate(policy.mean):
            if isinstance(layer, nn.Linear):
                weight, bias = values[f"mean.{index}.weight"], values[f"mean.{index}.bias"]
                if self.per_task:  # as vmap batches F.linear: bmm(x, Wᵀ), then + b
                    self.layers.append((weight.transpose(1, 2), bias[:, None]))
                else:
                    self.layers.append((weight, bias))
            else:  # elementwise: in place on the layer's fresh output, the same kernel
                self.layers.append(torch.tanh_ if isinstance(layer, nn.Tanh) else torch.relu_)
        # The log-std [B, A] as `forward` returns it: per task, vmap's copy of each task's row
        # over its columns; shared, the parameter expanded. Then Normal(mean, exp(log_std))'s
        # parts that do not depend on the observation, as `log_prob` computes them.
        batch, log_std = first_obs.shape[0], values["log_std"]
        if self.per_task:
            per_task = log_std[:, None].expand(num_tasks, self.rows_per_task, -1)
            log_std = per_task.reshape(batch, -1)
        else:
            log_std = log_std.expand(batch, -1)
        scale = log_std.exp()
        # numpy views: on arrays of a few hundred numbers a numpy operation costs a fraction
        # of a torch one, and elementwise float32 arithmetic rounds alike in both.
        self.scale, self.two_var = scale.numpy(), (2 * scale**2).numpy()
        self.log_scale = scale.log().numpy()
        self._noise_step, self._noise, self._dtype = -1, self.scale, scale.dtype
        self._row_parts: dict[tuple[int, int], _RowParts] = {}

    @staticmethod
    def supports(policy: nn.Module, params: ParamSets) -> bool:
        """Whether `policy` is exactly a `GaussianMLPPolicy` of linear layers and elementwise
        activations, and every parameter set names all of its parameters."""
        if type(policy) is not GaussianMLPPolicy or type(policy.action_dist) is not DiagGaussian:
            return False
        if not all(isinstance(layer, nn.Linear | nn.Tanh | nn.ReLU) for layer in policy.mean):
            return False
        names = set(parameters(policy))
        if isinstance(params, Sequence):
            return all(set(p) == names for p in params)
        return True

    def act(self, obs: Tensor, rows: slice, step: int) -> tuple[Tensor, Tensor]:
        """The mean on `rows` (whole tasks), a sample of the step's noise, the log-densities.

        `DiagGaussian.sample`'s `mean + σ·noise` and `Normal.log_prob`'s
        `-((a − mean)²) / (2σ²) − log σ − log √(2π)` in numpy, operation for operation in the
        same order; only the sum over the action's entries stays torch's (its order of
        additions is its own).
        """
        parts = self._parts(rows)
        mean = self._mean(obs, parts.layers)
        mean_np = mean.numpy()
        if self.deterministic:
            actions, actions_np = mean, mean_np
        else:
            actions_np = mean_np + parts.scale * self._step_noise(step)[rows]
            actions = torch.from_numpy(actions_np)
        log_density = -np.square(actions_np - mean_np) / parts.two_var - parts.log_scale
        return actions, torch.from_numpy(log_density - _LOG_SQRT_2PI).sum(-1)

    def _parts(self, rows: slice) -> _RowParts:
        """The layers and constants of `rows`, sliced once per batch (a torch slice costs
        microseconds, several per step)."""
        key = (rows.start, rows.stop)
        if key not in self._row_parts:
            layers = self.layers
            if self.per_task:
                first, last = rows.start // self.rows_per_task, rows.stop // self.rows_per_task
                layers = [
                    (layer[0][first:last], layer[1][first:last])
                    if isinstance(layer, tuple)
                    else layer
                    for layer in layers
                ]
            self._row_parts[key] = _RowParts(
                layers, self.scale[rows], self.two_var[rows], self.log_scale[rows]
            )
        return self._row_parts[key]

    def _mean(self, obs: Tensor, layers: list) -> Tensor:
        """The MLP's output [n, A] for the observations [n, obs] of whole tasks."""
        if self.per_task:
            x = obs.reshape(-1, self.rows_per_task, obs.shape[1])
            for layer in layers:
                if isinstance(layer, tuple):
                    x = torch.bmm(x, layer[0]).add_(layer[1])
                else:
                    x = layer(x)
            return x.reshape(obs.shape[0], -1)
        x = obs
        for layer in layers:
            x = torch.nn.functional.linear(x, *layer) if isinstance(layer, tuple) else layer(x)
        return x

    def _step_noise(self, step: int) -> np.ndarray:
        """The standard normal noise [B, A] of `step`, drawn for the whole batch the first time
        any group asks for it, as `DiagGaussian.sample` draws it."""
        if step != self._noise_step:
            shape, dtype = self.scale.shape, self._dtype
            self._noise = torch.randn(shape, generator=self.generator, dtype=dtype).numpy()
            self._noise_step = step
        return self._noise


class _RowParts(NamedTuple):
    """What `_GaussianMLPActor.act` takes for one range of rows: the layers (per-task weights
    sliced to its tasks) and the distribution's constants (numpy)."""

    layers: list
    scale: np.ndarray
    two_var: np.ndarray
    log_scale: np.ndarray


_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
"""The constant `Normal.log_prob` subtracts, computed as it computes it."""


def _make_actor(
    policy: nn.Module,
    params: ParamSets,
    num_tasks: int,
    first_obs: Tensor,
    action_space: gym.Space,
    generator: torch.Generator,
    deterministic: bool,
) -> _Actor:
    """The fast actor for Gaussian MLPs, the policy's own forward and distribution otherwise."""
    if _GaussianMLPActor.supports(policy, params):
        return _GaussianMLPActor(policy, params, num_tasks, first_obs, generator, deterministic)
    batch = first_obs.shape[0]
    return _PolicyActor(policy, params, num_tasks, batch, action_space, generator, deterministic)


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


class _HostCopies:
    """CPU copies of policies that live on another device (a GPU), one per policy, refreshed
    from it on every use: the sampler steps envs on the CPU, and one copy of the parameters per
    collection is what a GPU-trained agent pays for it (docs of `metarl.backend.device`)."""

    def __init__(self) -> None:
        self._copies: dict[int, tuple[nn.Module, nn.Module]] = {}

    def of(self, policy: nn.Module, params: ParamSets) -> tuple[nn.Module, ParamSets]:
        """`policy` and `params` themselves where they are on the CPU, else their host copies."""
        tensors = [*policy.parameters(), *policy.buffers()]
        if isinstance(params, dict):
            tensors += list(params.values())
        elif params is not None:
            tensors += [value for task in params for value in task.values()]
        if all(tensor.device.type == "cpu" for tensor in tensors):
            return policy, params
        entry = self._copies.get(id(policy))  # the policy is kept: its id stays its own
        if entry is None:
            host = _host_module(policy)
            self._copies[id(policy)] = (policy, host)
        else:
            host = entry[1]
            host.load_state_dict(policy.state_dict())  # copies device → host in place
        if isinstance(params, dict):
            params = {name: value.cpu() for name, value in params.items()}
        elif params is not None:
            params = [{name: value.cpu() for name, value in task.items()} for task in params]
        return host, params


def _host_module(module: nn.Module) -> nn.Module:
    """A CPU copy of `module` (its parameters, buffers and any tensor attributes, such as an
    action distribution's scale), made without copying the device tensors twice."""
    memo: dict[int, Any] = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        host = tensor.detach().cpu()
        is_parameter = isinstance(tensor, nn.Parameter)
        memo[id(tensor)] = nn.Parameter(host, tensor.requires_grad) if is_parameter else host
    return copy.deepcopy(module, memo)


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
