"""The settings every agent has, declared once: each agent's config dataclass extends this one
with its own fields (docs/architecture.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from metarl.envs.checks import check_positive_int


@dataclass
class AgentConfig:
    """The fields the trainer, the sampler and every agent share."""

    iterations: int = 500
    """Training iterations the trainer runs."""
    seed: int = 0
    """Seeds everything the agent draws: initial weights, tasks, env resets, action noise and
    minibatches, each from the agent's own generators."""
    horizon: int | None = None
    """Steps per episode; None uses the env's registered `max_episode_steps`."""
    discount: float = 0.99
    """γ of the returns (over a whole trial for trial agents)."""
    num_workers: int = 2
    """Cores for the sampler: C threads for metarl's MuJoCo envs, worker processes for other
    Gymnasium envs (0 steps those in this process)."""

    def __post_init__(self) -> None:
        """Check the shared fields (each agent's config checks its own after calling this)."""
        check_positive_int("iterations", self.iterations)
        if not 0 <= self.discount <= 1:
            raise ValueError(f"discount must lie in [0, 1], got {self.discount}")
