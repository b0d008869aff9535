"""Sampler throughput: metarl's `VectorSampler` against raw MuJoCo and Gymnasium's vector envs.

The workload is MAML's batch (docs/architecture.md §5): tasks × episodes per task episodes of
`horizon` steps, a Gaussian MLP, one parameter set per task. Each method reports env steps per
second:

- `metarl`: one `VectorSampler.sample` of the whole batch (2 physics threads);
- `mujoco-raw-1thread`: `mj_step` alone on one thread, no policy, no Python env: the physics
  ceiling of one core (two cores can at best double it);
- `gymnasium-sync` / `gymnasium-async`: `SyncVectorEnv` / `AsyncVectorEnv` of `gymnasium.make`
  envs, with the same policy doing one batched forward per vector step;
- `envpool`: envpool's C++ batch of the same robot (`HalfCheetah-v5`, `Ant-v5`: its own envs,
  v5 physics with its own rewards and no tasks) on 2 threads, the same policy doing one batched
  forward per step. Optional (`pip install envpool`, or the `envpool` extra); without it the
  method is skipped with a one-line note.

Every method of an env is measured in one run: on a shared, noisy machine only ratios taken in
one run compare.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import NamedTuple

import gymnasium as gym
import mujoco
import numpy as np
import torch
from torch import nn

from metarl.backend.allocator import keep_freed_memory
from metarl.envs import resolve_env_id
from metarl.envs.ant import AntTaskEnv
from metarl.envs.base import Task
from metarl.envs.half_cheetah import HalfCheetahTaskEnv
from metarl.envs.mujoco_task import MujocoTaskEnv
from metarl.policies import make_policy, parameters
from metarl.sampling.sampler import VectorSampler, torch_threads

DEFAULT_ENVS = ("metarl/HalfCheetahVel-v0", "metarl/AntDir-v0")

ENVPOOL_MISSING = "envpool: not installed, skipped (pip install envpool)"
"""The note that stands in for the `envpool` method where envpool is not installed."""

_ENVPOOL_IDS = ((HalfCheetahTaskEnv, "HalfCheetah-v5"), (AntTaskEnv, "Ant-v5"))
"""envpool's env of the robot each metarl MuJoCo env family runs (v5 physics)."""


@dataclass(frozen=True)
class Workload:
    """One sampler batch (tasks × episodes × horizon steps) and how each method runs it."""

    env_id: str
    num_tasks: int = 40
    episodes_per_task: int = 20
    horizon: int = 200
    """Steps per episode (the env's registered horizon for MAML's batch)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers of the Gaussian MLP policy."""
    async_envs: int = field(default_factory=lambda: 2 * (os.cpu_count() or 1))
    """`AsyncVectorEnv` size, one process each: twice the core count, since one process per
    episode would be hundreds of processes on a few cores. `SyncVectorEnv` gets one env per
    episode, as `metarl` (measured faster than one env per task: the forward batches more envs)."""

    @property
    def num_envs(self) -> int:
        """Envs the sampler steps together: one per episode."""
        return self.num_tasks * self.episodes_per_task

    @property
    def env_steps(self) -> int:
        """Env steps of the batch when no episode ends early."""
        return self.num_envs * self.horizon

    def describe(self) -> str:
        """`"40 tasks × 20 episodes × 200 steps, Gaussian MLP 64×64"`."""
        hidden = "×".join(map(str, self.hidden_sizes))
        return (
            f"{self.num_tasks} tasks × {self.episodes_per_task} episodes × {self.horizon} steps, "
            f"Gaussian MLP {hidden}"
        )


def full_workload(env: str) -> Workload:
    """MAML's batch (docs/architecture.md §5): 40 tasks × 20 episodes × 200 steps,
    a 64×64 policy."""
    return Workload(_mujoco_env_id(env))


def quick_workload(env: str) -> Workload:
    """A reduced batch, 10 tasks × 4 episodes × 100 steps, for a run of well under a minute."""
    return Workload(_mujoco_env_id(env), num_tasks=10, episodes_per_task=4, horizon=100)


class Timing(NamedTuple):
    """Env steps per second, and how many env steps were timed."""

    env_steps_per_s: float
    env_steps: int


@dataclass
class Record:
    """One method's throughput on one env: what `--json` prints."""

    env: str
    method: str
    env_steps_per_s: float
    env_steps: int
    """Env steps timed."""
    num_envs: int
    """Envs stepped together."""
    peak_rss_mib: float | None = None
    """Peak resident memory of the fresh process that ran `metarl` (other methods: None)."""


def metarl_steps_per_s(workload: Workload) -> Timing:
    """Time one `VectorSampler.sample` of the whole batch, construction excluded.

    One parameter set per task, as MAML's adapted policies are sampled. Ant episodes can end
    early (the torso leaves its healthy height range), so the steps are the batch's real ones.
    """
    with VectorSampler(
        workload.env_id, workload.num_envs, horizon=workload.horizon, seed=0, num_workers=2
    ) as sampler:
        policy = _policy(sampler.observation_space, sampler.action_space, workload)
        params = [parameters(policy) for _ in range(workload.num_tasks)]
        tasks = _tasks(workload)
        start = time.perf_counter()
        episodes = sampler.sample(policy, tasks, workload.episodes_per_task, params=params)
        elapsed = time.perf_counter() - start
    return Timing(episodes.num_env_steps / elapsed, episodes.num_env_steps)


def raw_mujoco_steps_per_s(workload: Workload) -> Timing:
    """`mj_step` alone on one `MjData` and one thread: `frame_skip` physics steps per env step.

    Controls are drawn beforehand; `mj_rnePostConstraint` runs only where the env reads contact
    forces (Ant), as the env does; the state is reset every `horizon` steps.
    """
    env = gym.make(workload.env_id).unwrapped
    model, data = env.model, mujoco.MjData(env.model)
    low, high = model.actuator_ctrlrange.T
    controls = np.random.default_rng(0).uniform(low, high, size=(workload.env_steps, model.nu))
    contact, frame_skip = bool(env.data_fields), env.frame_skip
    start = time.perf_counter()
    for i, control in enumerate(controls, start=1):
        data.ctrl[:] = control
        mujoco.mj_step(model, data, nstep=frame_skip)
        if contact:
            mujoco.mj_rnePostConstraint(model, data)
        if i % workload.horizon == 0:
            mujoco.mj_resetData(model, data)
    elapsed = time.perf_counter() - start
    env.close()
    return Timing(workload.env_steps / elapsed, workload.env_steps)


def gymnasium_steps_per_s(workload: Workload, asynchronous: bool) -> Timing:
    """A Gymnasium vector env, stepped until the batch's env steps are done.

    One batched policy forward per vector step (the policy's own parameters, torch on one
    thread). Autoreset is SAME_STEP, so every env of every vector step is a real env step; under
    Gymnasium's default NEXT_STEP the step after an episode's end would only reset. Env i runs
    task `i * num_tasks // num_envs` (with one env per episode, the tasks `metarl` gives them).
    The initial reset is timed, as `VectorSampler.sample` resets its envs too.
    """
    num_envs = workload.async_envs if asynchronous else workload.num_envs
    # "module:id" makes spawned workers import metarl, which registers the env id.
    make_env = functools.partial(
        gym.make, f"metarl:{workload.env_id}", max_episode_steps=workload.horizon
    )
    if asynchronous:
        envs = gym.vector.AsyncVectorEnv(
            [make_env] * num_envs,
            context="spawn",  # no fork: this process may run torch and MuJoCo threads
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
    else:
        envs = gym.vector.SyncVectorEnv(
            [make_env] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
    tasks = _tasks(workload)
    envs.set_attr("task", [tasks[i * workload.num_tasks // num_envs] for i in range(num_envs)])
    policy = _policy(envs.single_observation_space, envs.single_action_space, workload)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    generator = torch.Generator().manual_seed(0)
    steps = 0
    with torch.no_grad(), torch_threads(1):
        start = time.perf_counter()
        obs, _ = envs.reset(seed=0)
        while steps < workload.env_steps:
            dist_params = policy(torch.from_numpy(obs).float())
            actions = policy.action_dist.sample(dist_params, generator).numpy()
            obs, *_ = envs.step(np.clip(actions, low, high))
            steps += num_envs
        elapsed = time.perf_counter() - start
    envs.close()
    return Timing(steps / elapsed, steps)


def envpool_steps_per_s(workload: Workload, envpool_id: str) -> Timing:
    """envpool's batch of `envpool_id` (one env per episode, 2 threads), stepped until the
    batch's env steps are done, with one batched policy forward per step as
    `gymnasium_steps_per_s` does.

    envpool resets an env on the step after its episode ends (Gymnasium's NEXT_STEP), so such a
    step is not counted as an env step; the initial reset is timed.
    """
    import envpool

    envs = envpool.make_gymnasium(
        envpool_id,
        num_envs=workload.num_envs,
        num_threads=2,
        seed=0,
        max_episode_steps=workload.horizon,
    )
    policy = _policy(envs.observation_space, envs.action_space, workload)
    low, high = envs.action_space.low, envs.action_space.high
    generator = torch.Generator().manual_seed(0)
    steps = 0
    resetting = np.zeros(workload.num_envs, dtype=bool)
    with torch.no_grad(), torch_threads(1):
        start = time.perf_counter()
        obs, _ = envs.reset()
        while steps < workload.env_steps:
            dist_params = policy(torch.from_numpy(obs).float())
            actions = policy.action_dist.sample(dist_params, generator).numpy()
            obs, _, terminated, truncated, _ = envs.step(np.clip(actions, low, high))
            steps += int(np.count_nonzero(~resetting))
            resetting = terminated | truncated
        elapsed = time.perf_counter() - start
    envs.close()
    return Timing(steps / elapsed, steps)


def envpool_id(env_id: str) -> str | None:
    """envpool's id of the robot that the metarl MuJoCo env `env_id` runs; None for none."""
    env = gym.make(env_id)
    family = type(env.unwrapped)
    env.close()
    return next((name for base, name in _ENVPOOL_IDS if issubclass(family, base)), None)


def envpool_installed() -> bool:
    """Whether `import envpool` would find it (without importing it)."""
    return importlib.util.find_spec("envpool") is not None


def toy_workload() -> Workload:
    """MAML's Navigation2D batch (docs/architecture.md §5): 20 tasks × 20 episodes × 100 steps."""
    return Workload("metarl/Navigation2D-v0", num_tasks=20, episodes_per_task=20, horizon=100)


def toy_steps_per_s(workload: Workload, repeats: int = 5) -> list[Timing]:
    """`metarl_steps_per_s`'s measurement on an in-process env (Navigation2D, Bandit,
    TabularMDP), `repeats` batches of one sampler in a row: the first includes torch's warm-up,
    and a batch of ~40k steps lasts tens of milliseconds, so one alone is mostly noise."""
    with VectorSampler(workload.env_id, workload.num_envs, horizon=workload.horizon) as sampler:
        policy = _policy(sampler.observation_space, sampler.action_space, workload)
        params = [parameters(policy) for _ in range(workload.num_tasks)]
        tasks = _tasks(workload)
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            episodes = sampler.sample(policy, tasks, workload.episodes_per_task, params=params)
            elapsed = time.perf_counter() - start
            timings.append(Timing(episodes.num_env_steps / elapsed, episodes.num_env_steps))
    return timings


def run_env(workload: Workload, log: Callable[[str], None] | None = None) -> list[Record]:
    """Measure every method on one workload, one after the other; one record each.

    `metarl` runs in a fresh process, which also gives its peak resident memory. log: called with
    the method's name before each measurement (progress of a run of minutes), and with
    `ENVPOOL_MISSING` where envpool is not installed (its record is then left out).
    """
    log = log or (lambda _: None)
    log(f"{workload.env_id}: metarl")
    timing, peak_rss = _metarl_in_fresh_process(workload)
    records = [
        Record(
            workload.env_id, "metarl", *timing, num_envs=workload.num_envs, peak_rss_mib=peak_rss
        )
    ]
    others = [
        ("mujoco-raw-1thread", 1, functools.partial(raw_mujoco_steps_per_s, workload)),
        (
            "gymnasium-sync",
            workload.num_envs,
            functools.partial(gymnasium_steps_per_s, workload, asynchronous=False),
        ),
        (
            "gymnasium-async",
            workload.async_envs,
            functools.partial(gymnasium_steps_per_s, workload, asynchronous=True),
        ),
    ]
    robot = envpool_id(workload.env_id)
    if robot is not None and envpool_installed():
        measure_envpool = functools.partial(envpool_steps_per_s, workload, robot)
        others.append(("envpool", workload.num_envs, measure_envpool))
    elif robot is not None:
        log(ENVPOOL_MISSING)
    for method, num_envs, measure in others:
        log(f"{workload.env_id}: {method}")
        records.append(Record(workload.env_id, method, *measure(), num_envs=num_envs))
    return records


def format_table(workload: Workload, records: Sequence[Record]) -> str:
    """One env's table: env-steps/s of each method and metarl's speed-up over it."""
    metarl = next(r for r in records if r.method == "metarl")
    lines = [
        f"{workload.env_id}: {workload.describe()}",
        f"  {'method':<20} {'envs':>5} {'env steps':>10} {'env-steps/s':>12} {'metarl ÷ it':>12}",
    ]
    for r in records:
        speedup = metarl.env_steps_per_s / r.env_steps_per_s
        lines.append(
            f"  {r.method:<20} {r.num_envs:>5} {r.env_steps:>10,} "
            f"{r.env_steps_per_s:>12,.0f} {speedup:>11.2f}×"
        )
    if metarl.peak_rss_mib is not None:
        lines.append(f"  metarl peak RSS: {metarl.peak_rss_mib:,.0f} MiB")
    return "\n".join(lines)


def sampler_report(
    envs: Sequence[str] = DEFAULT_ENVS,
    quick: bool = False,
    as_json: bool = False,
    log: Callable[[str], None] | None = None,
) -> str:
    """Run every method on each env; the tables, or the JSON list of records.

    What `metarl bench sampler` and `benchmarks/sampler.py` print.
    """
    make_workload = quick_workload if quick else full_workload
    workloads = [make_workload(env) for env in envs]  # a bad env name fails before measuring
    notes: list[str] = []

    def log_and_note(line: str) -> None:
        if line == ENVPOOL_MISSING and line not in notes:
            notes.append(line)
        if log is not None:
            log(line)

    results = [(w, run_env(w, log=log_and_note)) for w in workloads]
    if as_json:
        return json.dumps([asdict(r) for _, records in results for r in records], indent=1)
    header = "Env steps per second, all measured in this run ('metarl ÷ it': metarl's speed-up)."
    tables = [format_table(w, records) for w, records in results]
    return "\n\n".join([header, *tables, *notes])


def _mujoco_env_id(name: str) -> str:
    """The full id of a metarl MuJoCo env (the raw-physics method needs its model)."""
    env_id = resolve_env_id(name)
    env = gym.make(env_id)
    is_mujoco = isinstance(env.unwrapped, MujocoTaskEnv)
    env.close()
    if not is_mujoco:
        raise ValueError(f"the sampler benchmark needs a MuJoCo env, got {env_id}")
    return env_id


def _tasks(workload: Workload) -> list[Task]:
    """The workload's tasks, drawn with seed 0: the same for every method."""
    env = gym.make(workload.env_id)
    env.reset(seed=0)
    tasks = env.unwrapped.sample_tasks(workload.num_tasks)
    env.close()
    return tasks


def _policy(observation_space: gym.Space, action_space: gym.Space, workload: Workload) -> nn.Module:
    """The workload's Gaussian MLP, initialised from seed 0."""
    torch.manual_seed(0)
    return make_policy(observation_space, action_space, workload.hidden_sizes)


def _metarl_in_fresh_process(workload: Workload) -> tuple[Timing, float | None]:
    """`metarl_steps_per_s` in a spawned process, with that process's peak RSS in MiB."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_metarl_with_peak_rss, workload).result()


def _metarl_with_peak_rss(workload: Workload) -> tuple[Timing, float | None]:
    """What the fresh process runs: the measurement, then its own peak RSS.

    It keeps freed memory (`keep_freed_memory`) as `metarl`'s own processes do, the one that
    runs the other methods included; on the sampler its effect was within the noise of the
    shared 2-core machine (issue 13).
    """
    keep_freed_memory()
    return metarl_steps_per_s(workload), _peak_rss_mib()


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory (Linux's VmHWM) in MiB; None without /proc.

    Not `getrusage`'s ru_maxrss: a spawned child keeps its parent's peak across fork and exec.
    """
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except OSError:
        return None
    return int(line.split()[1]) / 1024
