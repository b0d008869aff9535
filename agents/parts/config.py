"""The settings every agent has, declared once: each agent's config dataclass extends this one
with its own fields (docs/architecture.md §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import torch

from metarl.agents.parts.checks import (
    check_float,
    check_int,
    check_optional_int,
    check_seed,
    check_sizes,
)
from metarl.backend.device import resolve_device
from metarl.sampling.sampler import VectorSampler


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
        resolve_device(self.device)  # a bad or absent device fails here, in one line

    @property
    def torch_device(self) -> torch.device:
        """The torch device `device` names (`auto` resolved on this machine)."""
        return resolve_device(self.device)

    def make_sampler(
        self, env: str, num_envs: int, env_kwargs: dict[str, Any] | None = None
    ) -> VectorSampler:
        """A sampler of `num_envs` envs of `env` (`env_kwargs` go to `gymnasium.make`) with these
        settings' horizon, seed and workers: every agent's sampler is made here."""
        return VectorSampler(
            env,
            num_envs,
            env_kwargs=env_kwargs,
            horizon=self.horizon,
            seed=self.seed,
            num_workers=self.num_workers,
        )


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

    sampler: VectorSampler

    def close(self) -> None:
        """Release the sampler's threads or worker processes."""
        self.sampler.close()
