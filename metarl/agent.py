"""What the trainer, the run folder and `metarl evaluate` need from an agent (DESIGN §3, §7).

Agents are built as `AgentClass(env, config, env_kwargs=...)` with one config dataclass each;
`metarl.agents.registry` maps CLI names to them.
"""

from __future__ import annotations

from typing import Any, Protocol


class Agent(Protocol):
    """One meta-RL (or single-task) learner that owns its policy, sampler and task RNG."""

    config: Any
    """The agent's config dataclass."""

    def train_step(self) -> dict[str, float]:
        """One training iteration. Metrics include `env_steps` (this iteration's) and the
        returns the agent reports (`pre_return`/`post_return` for adapting agents)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly: networks, optimizers, RNGs."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def close(self) -> None:
        """Release the sampler's threads or processes."""
