"""Single-task PPO (Schulman et al. 2017) with a learned MLP value function: a non-meta
baseline. GAE, advantage normalization and the clipped surrogate come from the shared backend
(docs/architecture.md §3), which RL²-PPO (`agents/rl2.py`) also uses on whole trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from metarl.agents.parts.checks import check_float, check_int
from metarl.agents.parts.single_task import SingleTaskConfig, SingleTaskTrainer
from metarl.backend.advantages import gae, normalize
from metarl.backend.device import adam
from metarl.backend.losses import clipped_surrogate_loss, mean_kl
from metarl.backend.minibatches import minibatches
from metarl.policies import mlp
from metarl.sampling.episodes import Episodes


@dataclass
class PPOConfig(SingleTaskConfig):
    """PPO settings: the usual ones of Schulman et al. 2017, with a batch sized for Pendulum-v1."""

    episodes_per_task: int = 8
    """Episodes per iteration (8 × 200 Pendulum steps), >= 1."""
    gae_lambda: float = 0.95
    """GAE λ, in [0, 1]: bias (0) versus variance (1) of the advantages."""
    clip: float = 0.2
    """ε of the clipped surrogate, finite and > 0: the ratio π/π_old is kept within
    [1 − ε, 1 + ε]."""
    learning_rate: float = 3e-4
    """Adam step size, for the policy and the value function; finite and > 0."""
    epochs: int = 10
    """Passes over each iteration's batch, >= 1."""
    minibatch_size: int = 200
    """Steps per gradient step, >= 1; each epoch shuffles the batch's valid steps into
    minibatches (one, when the batch has fewer steps)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus in the policy loss, finite and >= 0."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip, applied to the policy and to the value function separately; finite
    and > 0."""

    def __post_init__(self) -> None:
        """Check the single-task fields, then PPO's."""
        super().__post_init__()
        check_float("gae_lambda", self.gae_lambda, 0, 1)
        for name in ("clip", "learning_rate", "max_grad_norm"):
            check_float(name, getattr(self, name), 0, low_open=True)
        for name in ("epochs", "minibatch_size"):
            check_int(name, getattr(self, name))
        check_float("entropy_coef", self.entropy_coef, 0)


class ValueFunction(nn.Module):
    """Tanh MLP state value V(s, t), time-aware and in return-std units. Both matter: on
    Pendulum, PPO went −1160 → −150 in 80 iterations with both, only to −850..−1000 with one.

    Time-aware (Pardo et al. 2018, "Time Limits in RL"): the backend's GAE treats a horizon end
    as terminal, so the value depends on the steps left; the net sees t / horizon.
    Scaled (Andrychowicz et al. 2021, value normalization): the net predicts returns divided by
    a running std of the returns, so Adam need not grow its output to the hundreds.
    """

    def __init__(self, obs_dim: int, hidden_sizes: Sequence[int], horizon: int) -> None:
        """A tanh MLP on (observation, t / `horizon`); the return std starts at 0."""
        super().__init__()
        self.net = mlp([obs_dim + 1, *hidden_sizes, 1])
        self.horizon = horizon
        self.register_buffer("return_std", torch.zeros(()))  # 0 until the first batch: V = 0

    def forward(self, observations: Tensor, steps: Tensor) -> Tensor:
        """V `[...]` for observations `[..., obs_dim]` at episode steps `[...]`."""
        inputs = torch.cat([observations, (steps / self.horizon).unsqueeze(-1)], dim=-1)
        return self.net(inputs).squeeze(-1) * self.return_std

    def loss(self, observations: Tensor, steps: Tensor, returns: Tensor) -> Tensor:
        """Mean squared error to `returns`, in return-std units."""
        return ((self(observations, steps) - returns) ** 2).mean() / self.return_std**2

    def update_scale(self, returns: Tensor, momentum: float = 0.9) -> None:
        """Move the return std towards that of `returns` (the first batch sets it)."""
        std = returns.std(correction=0).clamp_min(1e-6)
        if self.return_std > 0:
            std = momentum * self.return_std + (1 - momentum) * std
        self.return_std.copy_(std)


class PPO(SingleTaskTrainer):
    """PPO on one task: `train_step()` samples a batch, then runs epochs of minibatch Adam steps.

    env: a Gymnasium id (metarl ids by short name too); env_kwargs go to `gymnasium.make`.
    """

    def __init__(
        self, env: str, config: PPOConfig | None = None, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """`config` defaults to `PPOConfig()`; adds the value function (from the policy's init
        stream), one Adam over both, and the minibatch-shuffling generator."""
        self.config = config or PPOConfig()
        super().__init__(env, self.config, env_kwargs)
        obs_dim = self.sampler.observation_space.shape[0]
        with self.init_rng:
            self.value = ValueFunction(obs_dim, self.config.hidden_sizes, self.sampler.horizon)
        self.value.to(self.device)
        self.optimizer = adam(
            [*self.policy.parameters(), *self.value.parameters()],
            self.config.learning_rate,
            self.device,
        )
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def update(self, episodes: Episodes) -> dict[str, float]:
        """Epochs of clipped-surrogate and value steps on `episodes` (sampled with the policy).

        Metrics: clipped surrogate `loss_before` / `loss_after` on the whole batch, `kl` from the
        sampling policy, `value_loss` (before the update, return-std units) and `entropy`.
        """
        cfg, mask = self.config, episodes.mask
        valid = mask.bool()
        # Each column is one episode from step 0, so the row is the step within the episode.
        steps = torch.arange(mask.shape[0], dtype=torch.float32, device=mask.device)
        steps = steps[:, None].expand_as(mask)

        # Advantages from GAE on the value function; value targets are advantages + values.
        with torch.no_grad():
            values = torch.where(valid, self.value(episodes.observations, steps), 0.0)
        advantages = gae(episodes.rewards, values, episodes.dones, cfg.discount, cfg.gae_lambda)
        returns = advantages + values
        advantages = normalize(advantages, mask)

        # Minibatches are drawn from the valid steps, flattened to [N, ...].
        obs, actions, steps = episodes.observations[valid], episodes.actions[valid], steps[valid]
        old_log_probs, advantages, returns = (
            episodes.log_probs[valid],
            advantages[valid],
            returns[valid],
        )
        self.value.update_scale(returns)
        everywhere = torch.ones_like(advantages)

        def policy_loss(index: Tensor | slice) -> tuple[Tensor, Tensor]:
            """Clipped surrogate and mean entropy on the steps `index` of the batch."""
            dist = self.distribution(None, obs[index])
            loss = clipped_surrogate_loss(
                dist.log_prob(actions[index]),
                old_log_probs[index],
                advantages[index],
                everywhere[index],
                cfg.clip,
            )
            return loss, dist.entropy().mean()

        with torch.no_grad():
            old_dist = self.distribution(None, obs)
            loss_before = policy_loss(slice(None))[0]
            value_loss = self.value.loss(obs, steps, returns)

        for index in minibatches(
            len(obs), cfg.minibatch_size, cfg.epochs, self.generator, obs.device
        ):
            surrogate, entropy = policy_loss(index)
            loss = (
                surrogate
                - cfg.entropy_coef * entropy
                + self.value.loss(obs[index], steps[index], returns[index])
            )
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
            nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
            self.optimizer.step()

        with torch.no_grad():
            loss_after, entropy = policy_loss(slice(None))
            kl = mean_kl(old_dist, self.distribution(None, obs), everywhere)
        return {
            "loss_before": loss_before.item(),
            "loss_after": loss_after.item(),
            "kl": kl.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy.item(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The policy, value function, optimizer and every RNG state."""
        return {
            **super().state_dict(),
            "value": self.value.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "shuffle_rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        super().load_state_dict(state)
        self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["shuffle_rng"])
