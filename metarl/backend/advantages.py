"""Returns, generalized advantage estimates and advantage normalization on time-major batches.

Shapes follow the `Episodes` contract (docs/architecture.md §3): `[T, B]`, time first.
`dones[t, b]` is True where an episode ends at step t (termination or truncation); a column may
hold several episodes back to back, and steps after its last episode are padding that callers
mask out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metarl.backend.baselines import LinearFeatureBaseline


def discounted_returns(rewards: Tensor, dones: Tensor, discount: float) -> Tensor:
    """Reward-to-go within each episode, `[T, B]` from rewards `[T, B]` and dones `[T, B]`.

    Every episode end counts as terminal (nothing is bootstrapped past a done, truncation
    included): the MAML / ProMP convention. Padding with zero reward gets a zero return.
    """
    continues = (~dones).to(rewards.dtype)
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + discount * continues[t] * running
        returns[t] = running
    return returns


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, discount: float, gae_lambda: float
) -> Tensor:
    """Generalized advantage estimates `[T, B]` (Schulman et al. 2016) from `[T, B]` inputs.

    `values[t]` estimates the state at step t; the value after an episode end is 0 (every end is
    terminal, as in `discounted_returns`). λ=1 gives returns − values, λ=0 the one-step TD error.
    """
    continues = (~dones).to(rewards.dtype)
    next_values = torch.cat([values[1:], torch.zeros_like(values[:1])]) * continues
    deltas = rewards + discount * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + discount * gae_lambda * continues[t] * running
        advantages[t] = running
    return advantages


def normalize(x: Tensor, mask: Tensor, eps: float = 1e-8, groups: int = 1) -> Tensor:
    """Standardize `x` `[T, B]` with the mean and (population) std of its valid entries only;
    with `groups` > 1, each of that many equal, contiguous groups of columns on its own.

    Padding must not shift the statistics of the real steps; it stays 0 in the result.
    """
    valid = mask.bool().reshape(x.shape[0], groups, -1)
    grouped = torch.where(valid, x.reshape(valid.shape), 0.0)
    count = valid.sum(dim=(0, 2), keepdim=True)
    mean = grouped.sum(dim=(0, 2), keepdim=True) / count
    deviation = torch.where(valid, grouped - mean, 0.0)
    std = ((deviation**2).sum(dim=(0, 2), keepdim=True) / count).sqrt()
    return torch.where(valid, deviation / (std + eps), 0.0).reshape(x.shape)


def fitted_advantages(
    observations: Tensor,
    rewards: Tensor,
    dones: Tensor,
    mask: Tensor,
    discount: float,
    gae_lambda: float,
    groups: int = 1,
) -> Tensor:
    """Normalized GAE `[T, B]` on a linear feature baseline fitted to this batch's discounted
    returns: the advantages of every update on the linear baseline (TRPO, MAML's tasks, RL²'s
    trials). The baseline is refitted for every batch, so it is no state an agent keeps.
    groups: the columns form this many equal, contiguous groups (MAML's tasks), each with a
    baseline and a normalization of its own, all computed at once."""
    returns = discounted_returns(rewards, dones, discount)
    baseline = LinearFeatureBaseline(groups=groups)
    baseline.fit(observations, returns, mask, dones)
    values = baseline.predict(observations, mask, dones)
    return normalize(gae(rewards, values, dones, discount, gae_lambda), mask, groups=groups)
