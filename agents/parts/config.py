"""The settings every agent has, declared once: each agent's config dataclass extends this one
with its own fields (docs/architecture.md §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import torch

from metarl.agents.parts.checks import (
    check_choice,
    check_float,
    check_int,
    check_optional_int,
    check_seed,
    check_sizes,
    config_error,
)
from metarl.backend.device import resolve_device
from metarl.sampling.ray_sampler import RaySampler, import_ray
from metarl.sampling.sampler import VectorSampler
from metarl.sampling.tasks import task_source

SAMPLERS = ("local", "ray")
"""The values of the `sampler` key."""

EXECUTION_KEYS = ("sampler", "ray_address", "ray_workers")
"""Config keys that choose where a run's envs step, never what the run computes (the Ray
sampler's episodes are the local one's): a run resumes under other values of them, and a
reproduction's reference may have run under any."""


def check_execution(values: dict[str, Any]) -> dict[str, Any]:
    """`values` if every key is one of `EXECUTION_KEYS` (the values themselves are checked
    where the config is built), else a one-line `ValueError`."""
    other = [key for key in values if key not in EXECUTION_KEYS]
    if other:
        raise ValueError(
            f"only {', '.join(EXECUTION_KEYS)} change for one session, not {', '.join(other)}"
        )
    return values


@dataclass
class AgentConfig:
    """The fields the trainer, the sampler and every agent share."""

    iterations: int = 500
    """Training iterations the trainer runs, >= 1."""
    seed: int = 0
    """Seeds everything the agent draws: initial weights, tasks, env resets, action noise and
    minibatches, each from the agent's own generators. An integer in [0, 2**32)."""
    horizon: int | None = None
    """Steps per episode, >= 1; None uses the env's registered `max_episode_steps`."""
    discount: float = 0.99
    """γ of the returns (over a whole trial for trial agents), in (0, 1]."""
    num_workers: int = 2
    """Cores for the sampler, >= 0: C threads for metarl's MuJoCo envs, worker processes for
    other Gymnasium envs (0 steps those in this process)."""
    sampler: str = "local"
    """Where the envs step: 'local' (in this process and its threads, `VectorSampler`) or 'ray'
    (the batch's columns split over Ray actors, `RaySampler`, with the very episodes of
    'local'; needs `pip install -e ".[ray]"`)."""
    ray_address: str | None = None
    """With sampler 'ray': the cluster to join, its head's 'HOST:PORT' or 'auto' (the cluster
    `ray start` began on this machine); None starts a local Ray instance."""
    ray_workers: int = 2
    """With sampler 'ray': the Ray actors the batch is split over, >= 1, each stepping its slice
    on `num_workers` threads (and asking Ray for as many CPUs)."""
    device: str = "auto"
    """Where the networks, buffers and updates live: 'auto' (CUDA where torch finds a GPU,
    else the CPU), 'cpu', 'cuda' or 'cuda:N' (an absent GPU is an error, not a fall-back).
    Sampling runs on the CPU whatever the device, with the parameters copied once per
    collection; random draws are the CPU's, so a seed gives the same run on any device up to
    float rounding."""

    def __post_init__(self) -> None:
        """Check the shared fields (each agent's config checks its own after calling this)."""
        check_int("iterations", self.iterations)
        check_seed("seed", self.seed)
        check_optional_int("horizon", self.horizon, none_means="the env's registered horizon")
        check_float("discount", self.discount, 0, 1, low_open=True)
        check_int("num_workers", self.num_workers, 0)
        check_choice("sampler", self.sampler, SAMPLERS)
        if self.ray_address is not None and not isinstance(self.ray_address, str):
            raise config_error("ray_address", "be 'HOST:PORT', 'auto' or null", self.ray_address)
        check_int("ray_workers", self.ray_workers)
        if self.sampler == "ray":
            import_ray()  # without the extra: one line naming the install, before any work
        resolve_device(self.device)  # a bad or absent device fails here, in one line

    @property
    def torch_device(self) -> torch.device:
        """The torch device `device` names (`auto` resolved on this machine)."""
        return resolve_device(self.device)

    def make_sampler(
        self, env: str, num_envs: int, env_kwargs: dict[str, Any] | None = None
    ) -> VectorSampler | RaySampler:
        """A sampler of `num_envs` envs of `env` (`env_kwargs` go to `gymnasium.make`) with these
        settings' horizon, seed and workers, local or on Ray (`sampler`): every agent's sampler
        is made here."""
        common = {"horizon": self.horizon, "seed": self.seed, "num_workers": self.num_workers}
        if self.sampler == "ray":
            ray = {"ray_workers": self.ray_workers, "ray_address": self.ray_address}
            return RaySampler(env, num_envs, env_kwargs=env_kwargs, **common, **ray)
        return VectorSampler(env, num_envs, env_kwargs=env_kwargs, **common)


@dataclass
class TaskBatchConfig(AgentConfig):
    """The fields of an agent whose iteration is a batch of tasks, a few episodes each, on an
    MLP policy: the gradient-based meta-learners and the multi-task baselines."""

    meta_batch_size: int = 40
    """Tasks per iteration, >= 1."""
    episodes_per_task: int = 20
    """Episodes per task (before and after each inner step, for the meta-learners), >= 1."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Hidden layers of the tanh MLP policy: widths >= 1 (empty: a linear policy)."""
    gae_lambda: float = 1.0
    """GAE λ, in [0, 1]; 1.0 is the papers' Monte-Carlo return minus baseline."""

    def __post_init__(self) -> None:
        """Check the shared fields, then the task batch's."""
        AgentConfig.__post_init__(self)
        for name in ("meta_batch_size", "episodes_per_task"):
            check_int(name, getattr(self, name))
        check_sizes("hidden_sizes", self.hidden_sizes)
        check_float("gae_lambda", self.gae_lambda, 0, 1)


class ClosesOnExit:
    """Use as a context manager of anything with a `close` (an agent, a loaded run): leaving
    the block closes it."""

    def close(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """The object itself; leaving the block closes it."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close, whether or not the block raised."""
        self.close()


class OwnsSampler(ClosesOnExit):
    """`close`, and use as a context manager, for an agent whose `sampler` holds threads or
    worker processes that must be released."""

    sampler: VectorSampler | RaySampler

    def open_task_source(self, env: str, env_kwargs: dict[str, Any], seed: int) -> None:
        """`self.task_env`, the task source of the sampler's env seeded by `seed`; a bad env
        (not a metarl task env) closes the sampler before its one-line `ValueError` goes up."""
        try:
            self.task_env = task_source(self.sampler.env_id or env, env_kwargs, seed)
        except ValueError:
            self.close()
            raise

    def close(self) -> None:
        """Release the sampler's threads or worker processes."""
        self.sampler.close()
