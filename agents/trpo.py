"""Single-task TRPO (Schulman et al. 2015): the non-meta baseline, and MAML's outer loop without
the inner one. Built entirely from the shared backend (DESIGN §3): returns, GAE and the linear
baseline from `advantages` / `baselines`, surrogate and KL from `losses`, the step from `optim`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metarl.advantages import discounted_returns, gae, normalize
from metarl.agents.single_task import SingleTaskConfig, SingleTaskTrainer
from metarl.baselines import LinearFeatureBaseline
from metarl.episodes import Episodes
from metarl.losses import mean_kl, surrogate_loss
from metarl.optim import trpo_step
from metarl.policies import Params, parameters


@dataclass
class TRPOConfig(SingleTaskConfig):
    """TRPO settings; the defaults are MAML-TRPO's outer loop (DESIGN §5)."""

    gae_lambda: float = 1.0
    """GAE λ; 1.0 gives Monte-Carlo returns minus the baseline."""
    max_kl: float = 0.01
    """Trust region: the largest mean KL(old ‖ new) a step may take."""
    cg_iterations: int = 10
    """Conjugate-gradient iterations for the natural-gradient direction F⁻¹g."""
    cg_damping: float = 1e-5
    """Added to the Fisher diagonal, keeping CG well posed."""
    max_backtracks: int = 15
    """Line-search tries before the step is rejected."""
    backtrack_ratio: float = 0.8
    """Step shrink factor between line-search tries."""


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
    ):
        self.config = config or TRPOConfig()
        super().__init__(env, self.config, env_kwargs)
        self.baseline = LinearFeatureBaseline()

    def update(self, episodes: Episodes) -> dict[str, float]:
        """One TRPO step on `episodes`, sampled with the current policy.

        Metrics: surrogate `loss_before` / `loss_after`, `kl` of the step, `step_fraction` of the
        full natural-gradient step taken, `accepted` (1.0 or 0.0).
        """
        cfg, mask = self.config, episodes.mask
        obs, dones = episodes.observations, episodes.dones

        # Advantages: GAE on the linear feature baseline fitted to this batch's returns.
        returns = discounted_returns(episodes.rewards, dones, cfg.discount)
        self.baseline.fit(obs, returns, mask, dones)
        values = self.baseline.predict(obs, mask, dones)
        advantages = gae(episodes.rewards, values, dones, cfg.discount, cfg.gae_lambda)
        advantages = normalize(advantages, mask)

        # The surrogate's old policy is the sampling one: its recorded log-probs, and for the
        # KL its distribution on the batch, detached (the trust region's fixed anchor).
        with torch.no_grad():
            old_dist = self.distribution(None, obs)

        def loss_fn(params: Params) -> torch.Tensor:
            log_probs = self.distribution(params, obs).log_prob(episodes.actions)
            return surrogate_loss(log_probs, episodes.log_probs, advantages, mask)

        def kl_fn(params: Params) -> torch.Tensor:
            return mean_kl(old_dist, self.distribution(params, obs), mask)

        new_params, info = trpo_step(
            loss_fn,
            kl_fn,
            parameters(self.policy),
            max_kl=cfg.max_kl,
            cg_iterations=cfg.cg_iterations,
            cg_damping=cfg.cg_damping,
            max_backtracks=cfg.max_backtracks,
            backtrack_ratio=cfg.backtrack_ratio,
        )
        with torch.no_grad():
            for name, param in self.policy.named_parameters():
                param.copy_(new_params[name])
        return {name: float(value) for name, value in info.items()}
