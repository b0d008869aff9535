"""Single-task TRPO (Schulman et al. 2015): the non-meta baseline, and MAML's outer loop without
the inner one. Built entirely from the shared backend (docs/architecture.md §3): returns, GAE and
the linear baseline from `advantages` / `baselines`, surrogate and KL from `losses`, the step from
`optim`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metarl.agents.parts.checks import check_float
from metarl.agents.parts.single_task import SingleTaskConfig, SingleTaskTrainer
from metarl.agents.parts.trust_region import TrustRegionConfig, trust_region_update
from metarl.backend.advantages import fitted_advantages
from metarl.policies import call
from metarl.sampling.episodes import Episodes


@dataclass
class TRPOConfig(SingleTaskConfig, TrustRegionConfig):
    """TRPO settings; the defaults are MAML-TRPO's outer loop (docs/architecture.md §5)."""

    gae_lambda: float = 1.0
    """GAE λ, in [0, 1]; 1.0 gives Monte-Carlo returns minus the baseline."""

    def __post_init__(self) -> None:
        """Check the single-task fields, the trust region's and `gae_lambda`."""
        SingleTaskConfig.__post_init__(self)
        TrustRegionConfig.__post_init__(self)
        check_float("gae_lambda", self.gae_lambda, 0, 1)


class TRPO(SingleTaskTrainer):
    """TRPO on one task: `train_step()` samples a batch and takes one trust-region step.

    env: a Gymnasium id (metarl ids by short name too); env_kwargs go to `gymnasium.make`.
    """

    def __init__(
        self,
        env: str,
        config: TRPOConfig | None = None,
        *,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """`config` defaults to `TRPOConfig()`; the rest is `SingleTaskTrainer`'s."""
        self.config = config or TRPOConfig()
        super().__init__(env, self.config, env_kwargs)

    def update(self, episodes: Episodes) -> dict[str, float]:
        """One TRPO step on `episodes`, sampled with the current policy (`trust_region_update`'s
        metrics)."""
        cfg, obs, mask = self.config, episodes.observations, episodes.mask
        advantages = fitted_advantages(
            obs, episodes.rewards, episodes.dones, mask, cfg.discount, cfg.gae_lambda
        )
        return trust_region_update(
            self.policy,
            lambda params: call(self.policy, params, obs),
            episodes.actions,
            episodes.log_probs,
            advantages,
            mask,
            cfg,
            progress=self.progress,
        )
