"""What the trainer, the run folder and `metarl evaluate` need from an agent
(docs/architecture.md §3, §7).

Agents are built as `AgentClass(env, config, env_kwargs=...)` with one config dataclass each;
`metarl.agents.registry` maps CLI names to them.

`metarl evaluate` measures adaptation in one of two ways, whichever the agent offers:
- gradient-step agents (the MAML family) implement `adaptation_returns(tasks, steps)`;
- trial agents (RL², PEARL and the reference bandit/MDP agents) implement
  `trial_returns(tasks, episodes)`: the return of each episode of one trial per task, where
  what the agent saw in episodes 0..i-1 (hidden state, context, counts) shapes episode i.
Both map onto one x-axis, env steps of adaptation experience.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from torch import Tensor

from metarl.backend.progress import Progress
from metarl.envs.base import Task


class Agent(Protocol):
    """One meta-RL (or single-task) learner that owns its policy, sampler and task RNG."""

    config: Any
    """The agent's config dataclass."""

    progress: Progress
    """Where `train_step` reports its phases (gradient steps, conjugate gradient, line
    search); `SILENT` until the trainer sets its nested bar. Agents without long phases (the
    reference agents) need not read it."""

    def train_step(self) -> dict[str, float]:
        """One training iteration. Metrics include `env_steps` (this iteration's) and the
        returns the agent reports (`pre_return`/`post_return` for adapting agents)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly: networks, optimizers, RNGs."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def close(self) -> None:
        """Release the sampler's threads or processes."""


class TrialAgent(Protocol):
    """An agent that adapts within a trial of consecutive episodes on one task."""

    def trial_returns(self, tasks: Sequence[Task], episodes: int) -> Tensor:
        """Undiscounted return of episode i of the trial on task j, `[episodes, len(tasks)]`.
        Any number of tasks (the agent batches them as it needs); seeded by the agent's own RNGs.
        """

    def close(self) -> None:
        """Release the sampler's threads or processes."""
