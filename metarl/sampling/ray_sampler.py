"""`RaySampler`: `VectorSampler`'s batch split over Ray actors, the same episodes whatever
their number (docs/architecture.md §3, "Scale-out").

The driver keeps what decides the episodes, the random state of env resets and action noise,
and does what `VectorSampler.sample` does with it: it draws the whole batch's reset seeds and
sends every actor its slice of the columns with the generator's state at the start of the
batch. Each actor owns a `VectorSampler` of its slice's envs (the fast path the env allows:
MuJoCo threads, the numpy toy batch, or Gymnasium workers) and runs
`VectorSampler.sample_columns`: its envs step only its columns, while the policy runs on the
whole batch's shape and the noise is drawn for the whole batch, so each column sees exactly the
actions the local sampler gives it. The driver joins the slices in column order and takes the
generator's state from the slice that ran the most steps, which is the local sampler's after
the same batch. The policy and its parameter sets go to Ray's object store once per call.

Faults: an actor that dies mid-batch is replaced and its slice sampled again from the same
request, so the batch is the one an uninterrupted call returns. A cluster that cannot be
reached is a one-line error within seconds. Without the extra (`pip install -e ".[ray]"`)
`RaySampler` is a one-line error naming the install.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from metarl.envs.base import Task
from metarl.sampling.episodes import Episodes
from metarl.sampling.sampler import (
    ColumnRequest,
    ColumnSample,
    ParamSets,
    SeededSampler,
    VectorSampler,
    _HostCopies,
    check_count,
    check_request,
    torch_threads,
)

INSTALL = 'pip install -e ".[ray]"'
"""The install command that the one-line error without Ray names."""

CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a cluster's address to answer before giving up with a one-line error."""

MAX_RETRIES = 3
"""Times a slice is sampled again on a fresh actor after its actor died, before the call
fails."""


def import_ray() -> Any:
    """The `ray` module, or a one-line `ValueError` naming the install."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ValueError(f"--sampler ray needs Ray: {INSTALL}") from None


def connect(address: str | None = None, workers: int = 1, cpus_per_worker: int = 1) -> Any:
    """The `ray` module, connected: to the running Ray this process already joined, to the
    cluster at `address` ('HOST:PORT' of its head, or 'auto' for the one `ray start` began
    on this machine), or, with no address, to a fresh local instance with logical CPUs for
    `workers` actors of `cpus_per_worker` each (at least this machine's cores: actors beyond
    the cores share them). A HOST:PORT that does not answer within `CONNECT_TIMEOUT_S` is a
    one-line `ValueError`, never a hang."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address and address != "auto":
        _check_reachable(address)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "ERROR",
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            cpus = max(os.cpu_count() or 1, workers * cpus_per_worker)
            ray.init(num_cpus=cpus, **options)
    except (ConnectionError, RuntimeError) as error:
        where = address or "a local Ray instance"
        raise ValueError(f"cannot start Ray at {where}: {_first_line(error)}") from None
    return ray


def _check_reachable(address: str) -> None:
    """A one-line `ValueError` unless something listens at `address` ('HOST:PORT')."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address must be HOST:PORT (or 'auto'), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise ValueError(
            f"no Ray cluster answers at {address} ({error.strerror or error}); start one with "
            "`ray start --head` there, or leave --ray-address out for a local instance"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SliceWorker:
    """What a Ray actor runs: a `VectorSampler` of one slice's envs (`sample_columns`)."""

    def __init__(
        self,
        env: str | Callable[[], gym.Env],
        num_envs: int,
        env_kwargs: dict[str, Any] | None,
        horizon: int,
        num_workers: int,
    ) -> None:
        """The slice's envs: at most `num_envs` columns per call."""
        self.sampler = VectorSampler(
            env, num_envs, env_kwargs=env_kwargs, horizon=horizon, num_workers=num_workers
        )

    def sample_columns(
        self,
        shared: tuple[nn.Module, ParamSets],
        tasks: list[Task | None],
        episodes_per_task: int,
        request: ColumnRequest,
    ) -> ColumnSample:
        """`VectorSampler.sample_columns` of the policy and parameter sets in `shared`."""
        policy, params = shared
        return self.sampler.sample_columns(policy, tasks, episodes_per_task, params, request)

    def pid(self) -> int:
        """The actor's process id (the fault tests kill it)."""
        return os.getpid()

    def close(self) -> None:
        """Release the slice's physics threads or worker processes."""
        self.sampler.close()


class RaySampler(SeededSampler):
    """`VectorSampler`'s interface, the batch's columns split over `ray_workers` Ray actors.

    env, num_envs, env_kwargs, horizon and seed as `VectorSampler`'s; `num_workers`: the
    physics threads (or Gymnasium worker processes) of each actor, and the CPUs each asks Ray
    for. ray_address: None starts a local Ray instance (or uses the one this process joined),
    'HOST:PORT' or 'auto' joins a cluster. torch_threads: the driver's, while it prepares a
    call (the actors run their policy on one).
    """

    def __init__(
        self,
        env: str | Callable[[], gym.Env],
        num_envs: int,
        *,
        env_kwargs: dict[str, Any] | None = None,
        horizon: int | None = None,
        seed: int = 0,
        num_workers: int = 1,
        ray_workers: int = 2,
        ray_address: str | None = None,
        torch_threads: int | None = 1,
    ) -> None:
        """Check the env and batch here (a `VectorSampler` of one env, which draws nothing),
        connect to Ray, and start the actors, each with envs for its largest slice."""
        ray_workers = check_count("ray_workers", ray_workers)
        with VectorSampler(env, 1, env_kwargs=env_kwargs, horizon=horizon, num_workers=0) as probe:
            self.env_id = probe.env_id
            self.horizon = probe.horizon
            self.observation_space, self.action_space = probe.observation_space, probe.action_space
        self.num_envs = check_count("num_envs", num_envs)
        self.num_actors = min(ray_workers, num_envs)  # no actor without a column
        self.torch_threads = torch_threads
        self._cpus = max(num_workers, 1)
        self._threads = num_workers
        self._env, self._env_kwargs = env, env_kwargs
        self._ray = connect(ray_address, self.num_actors, self._cpus)
        self._check_resources(ray_address)
        self._capacity = -(-num_envs // self.num_actors)
        self._actor_class = self._ray.remote(num_cpus=self._cpus, max_restarts=0)(SliceWorker)
        self.actors = [self._start_actor() for _ in range(self.num_actors)]
        self._ray.get([actor.pid.remote() for actor in self.actors])  # up before the first call
        self._host_copies = _HostCopies()
        self._seed(seed)  # as VectorSampler seeds its own
        self.replaced = 0
        """Actors replaced after a fault, over the sampler's life."""

    def _check_resources(self, address: str | None) -> None:
        """A one-line `ValueError` where the cluster has fewer CPUs than the actors ask for
        (they would wait for them forever)."""
        cpus = self._ray.cluster_resources().get("CPU", 0)
        needed = self.num_actors * self._cpus
        if needed > cpus:
            where = f"the cluster at {address}" if address else "the local Ray instance"
            raise ValueError(
                f"{self.num_actors} Ray actors × {self._cpus} CPUs (num_workers) need {needed} "
                f"CPUs but {where} has {cpus:g}: lower ray_workers or num_workers"
            )

    def _start_actor(self) -> Any:
        return self._actor_class.remote(
            self._env, self._capacity, self._env_kwargs, self.horizon, self._threads
        )

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
        """`VectorSampler.sample`, bit for bit, the columns stepped by the actors."""
        tasks_or_none = check_request(
            self, tasks, episodes_per_task, params, episodes_per_trial=episodes_per_trial
        )
        batch = len(tasks_or_none) * episodes_per_task
        with torch.no_grad(), torch_threads(self.torch_threads):
            policy, params = self._host_copies.of(policy, params)
            seeds = self._rng.integers(2**31, size=batch).tolist()
            start_state = self._generator.get_state()
            shared = self._ray.put((policy, params))
            requests = [
                ColumnRequest(
                    columns,
                    seeds[columns],
                    start_state,
                    episodes_per_trial,
                    deterministic,
                )
                for columns in split_columns(batch, self.num_actors)
            ]
            slices = self._run(shared, tasks_or_none, episodes_per_task, requests)
        longest = max(slices, key=lambda part: part.steps)
        self._generator.set_state(longest.generator_state)
        return Episodes.concat_columns([part.episodes for part in slices], tasks_or_none)

    def _run(
        self,
        shared: Any,
        tasks: list[Task | None],
        episodes_per_task: int,
        requests: list[ColumnRequest],
    ) -> list[ColumnSample]:
        """Each request on its actor; a slice whose actor died runs again on a fresh one."""
        ray = self._ray

        def submit(i: int) -> Any:
            return self.actors[i].sample_columns.remote(
                shared, tasks, episodes_per_task, requests[i]
            )

        pending = {submit(i): i for i in range(len(requests))}
        results: dict[int, ColumnSample] = {}
        retries = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                results[i] = ray.get(ready[0])
            except ray.exceptions.RayActorError as error:
                retries += 1
                if retries > MAX_RETRIES:
                    raise ValueError(
                        f"Ray actors died {retries} times in one batch; the last: "
                        f"{_first_line(error)}"
                    ) from None
                self.actors[i] = self._start_actor()
                self.replaced += 1
                pending[submit(i)] = i
        return [results[i] for i in range(len(requests))]

    def close(self) -> None:
        """Stop the actors (Ray itself stays up for whatever else this process runs on it)."""
        for actor in self.actors:
            try:
                self._ray.kill(actor)
            except Exception:  # an actor already gone has nothing to release
                pass
        self.actors = []


def split_columns(batch: int, parts: int) -> list[slice]:
    """`batch` columns in `min(parts, batch)` contiguous slices whose sizes differ by at most
    one, the larger first."""
    parts = min(parts, batch)
    size, extra = divmod(batch, parts)
    slices, start = [], 0
    for i in range(parts):
        stop = start + size + (i < extra)
        slices.append(slice(start, stop))
        start = stop
    return slices
