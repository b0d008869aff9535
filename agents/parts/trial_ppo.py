"""PPO over whole trials: the outer update of RL²-PPO and VariBAD.

Minibatches are whole trials (columns), since a recurrent or belief-conditioned policy needs a
trial's earlier steps to act at its later ones; the clipped surrogate, KL and entropy come from
the shared backend. The agent says how to get its action distribution on a set of columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from metarl.agents.parts.checks import check_float, check_int
from metarl.backend.losses import clipped_surrogate_loss, masked_mean, mean_kl
from metarl.backend.minibatches import minibatches
from metarl.sampling.episodes import Episodes


@dataclass
class TrialPPOConfig:
    """The PPO fields of an agent whose PPO minibatches are whole trials."""

    clip: float = 0.2
    """ε of the clipped surrogate, finite and > 0."""
    learning_rate: float = 3e-4
    """Adam step size, finite and > 0."""
    epochs: int = 10
    """Passes over each iteration's trials, >= 1."""
    minibatch_trials: int = 25
    """Trials per gradient step, >= 1 (one minibatch of all when above `meta_batch_size`)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus, finite and >= 0."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip, finite and > 0."""

    def __post_init__(self) -> None:
        """Check PPO's fields."""
        for name in ("epochs", "minibatch_trials"):
            check_int(name, getattr(self, name))
        for name in ("clip", "learning_rate", "max_grad_norm"):
            check_float(name, getattr(self, name), 0, low_open=True)
        check_float("entropy_coef", self.entropy_coef, 0)


Columns = Callable[[Tensor | slice], Distribution]
"""The policy's action distribution `[T, b]` on the trials (columns) at an index."""


def trial_ppo_update(
    distribution: Columns,
    episodes: Episodes,
    advantages: Tensor,
    cfg: TrialPPOConfig,
    optimizer: torch.optim.Optimizer,
    parameters: Iterable[nn.Parameter],
    generator: torch.Generator,
) -> dict[str, float]:
    """Epochs of clipped-surrogate Adam steps over minibatches of whole trials. Metrics:
    `loss_before` / `loss_after` on all trials, `kl` from the sampling policy, `entropy`."""
    mask = episodes.mask
    parameters = list(parameters)

    def loss(index: Tensor | slice) -> tuple[Tensor, Tensor]:
        dist, column_mask = distribution(index), mask[:, index]
        surrogate = clipped_surrogate_loss(
            dist.log_prob(episodes.actions[:, index]),
            episodes.log_probs[:, index],
            advantages[:, index],
            column_mask,
            cfg.clip,
        )
        return surrogate, masked_mean(dist.entropy(), column_mask)

    with torch.no_grad():
        old_dist = distribution(slice(None))
        loss_before = loss(slice(None))[0]
    for index in minibatches(
        mask.shape[1], cfg.minibatch_trials, cfg.epochs, generator, mask.device
    ):
        surrogate, entropy = loss(index)
        optimizer.zero_grad()
        (surrogate - cfg.entropy_coef * entropy).backward()
        nn.utils.clip_grad_norm_(parameters, cfg.max_grad_norm)
        optimizer.step()
    with torch.no_grad():
        loss_after, entropy = loss(slice(None))
        kl = mean_kl(old_dist, distribution(slice(None)), mask)
    return {
        "loss_before": loss_before.item(),
        "loss_after": loss_after.item(),
        "kl": kl.item(),
        "entropy": entropy.item(),
    }
