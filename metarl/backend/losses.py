"""Policy-gradient losses and the KL between policies, averaged over the valid steps of a batch.

Every input is time-major `[T, B]` with a validity `mask` `[T, B]` (bool or 0/1) that excludes
padding. Advantages and old log-probabilities are constants of the loss: they are detached here,
so callers need not remember to.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, kl_divergence

from metarl.policies.distributions import DistParams


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of `x` `[T, B]` over the entries where `mask` is set; padding never contributes.

    Padding is selected away rather than multiplied by 0, so NaN or inf there cannot leak in.
    """
    return torch.where(mask.bool(), x, 0.0).sum() / mask.sum()


def vpg_loss(log_probs: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """REINFORCE loss −E[log π·A]: its gradient is the vanilla policy gradient (MAML inner step)."""
    return -masked_mean(log_probs * advantages.detach(), mask)


def _ratio(log_probs: Tensor, old_log_probs: Tensor) -> Tensor:
    """Likelihood ratio π(a|s) / π_old(a|s) `[T, B]`, differentiable through `log_probs` only."""
    return torch.exp(log_probs - old_log_probs.detach())


def surrogate_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor
) -> Tensor:
    """TRPO surrogate −E[r·A] with r = π/π_old; at π = π_old its gradient equals `vpg_loss`'s."""
    return -masked_mean(_ratio(log_probs, old_log_probs) * advantages.detach(), mask)


def clipped_surrogate_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor, clip: float = 0.2
) -> Tensor:
    """PPO / ProMP pessimistic surrogate −E[min(r·A, clip(r, 1−ε, 1+ε)·A)] with ε = `clip`.

    The min removes the incentive to push r outside [1−ε, 1+ε] (Schulman et al. 2017).
    """
    ratio = _ratio(log_probs, old_log_probs)
    advantages = advantages.detach()
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip)
    return -masked_mean(torch.minimum(ratio * advantages, clipped * advantages), mask)


def mean_kl(old_dist: Distribution, new_dist: Distribution, mask: Tensor) -> Tensor:
    """Mean KL(old ‖ new) over valid steps, for distributions with batch shape `[T, B]`.

    Gaussian policies use `Independent(Normal(mean, std), 1)` so the action dims are summed;
    `old_dist` should be built from detached parameters (it is the fixed TRPO anchor).
    """
    if isinstance(old_dist, Categorical) and isinstance(new_dist, Categorical):
        # Closed form on normalized logits: torch's version masks zero probabilities with a
        # boolean index, which cannot run under vmap (MAML batches tasks with it).
        kl = (old_dist.probs * (old_dist.logits - new_dist.logits)).sum(-1)
    else:
        kl = kl_divergence(old_dist, new_dist)
    return masked_mean(kl, mask)


def kl_metric(
    fisher_product: Callable[[DistParams, DistParams], DistParams],
    old_dist_params: DistParams,
    weights: Tensor,
) -> Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]:
    """u ↦ M·u, M the Hessian of Σ weights·KL(old ‖ new) in the new distribution parameters at
    new = old: the metric of `optim.gauss_newton_operator` for a (masked) mean KL. `weights`
    has the batch shape (0 on padding, e.g. mask / mask.sum() for `mean_kl`), `fisher_product`
    is the action distribution's, and tangents come as a tuple (one tensor per distribution
    parameter). Padding is selected away, as `masked_mean` does: nothing there leaks in."""
    several = isinstance(old_dist_params, tuple)  # (mean, log_std), or logits alone
    valid = (weights != 0)[..., None]
    weights = weights[..., None]

    def metric(tangents: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        products = fisher_product(old_dist_params, tangents if several else tangents[0])
        products = products if several else (products,)
        return tuple(torch.where(valid, p * weights, 0.0) for p in products)

    return metric
