"""Action distributions of the policies: distribution parameters (plain tensors) in,
`torch.distributions` objects, samples from the caller's generator, and modes out.

Keeping the parameters tensor-only (a tensor, or a tuple of tensors) is what lets a policy's
forward run under `torch.func.vmap` over per-task parameter sets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal

DistParams = Tensor | tuple[Tensor, ...]
"""A policy's distribution parameters: logits, or `(mean, log_std)`."""


def map_dist_params(fn: Callable[[Tensor], Tensor], dist_params: DistParams) -> DistParams:
    """`fn` applied to each tensor of `dist_params` (a tensor or a tuple of them)."""
    if isinstance(dist_params, tuple):
        return tuple(fn(x) for x in dist_params)
    return fn(dist_params)


class DiagGaussian:
    """Gaussian actions with diagonal covariance; parameters are `(mean, log_std)` of [..., A]."""

    def distribution(self, dist_params: tuple[Tensor, Tensor]) -> Distribution:
        """`Normal(mean, exp(log_std))` with the last axis [A] as the event, unvalidated."""
        mean, log_std = dist_params
        # No argument validation: it costs time per call and cannot run under vmap.
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1, validate_args=False)

    def sample(self, dist_params: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        """Actions [..., A]: `mean + exp(log_std) * noise`, the noise drawn from `generator`."""
        mean, log_std = dist_params
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + log_std.exp() * noise

    def mode(self, dist_params: tuple[Tensor, Tensor]) -> Tensor:
        """The mean [..., A]."""
        return dist_params[0]

    def fisher_product(
        self, dist_params: tuple[Tensor, Tensor], tangent: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """M·tangent, M the Hessian of KL(p ‖ q) in q's (mean, log_std) at q = p: the Fisher
        information of the Gaussian in those coordinates, diagonal, 1/σ² for the mean and 2 for
        the log-std of each action dimension (TRPO's Gauss-Newton Fisher-vector product)."""
        _, log_std = dist_params
        d_mean, d_log_std = tangent
        return d_mean * torch.exp(-2.0 * log_std), 2.0 * d_log_std


class CategoricalActions:
    """Discrete actions; the parameters are logits [..., n]."""

    def distribution(self, logits: Tensor) -> Distribution:
        """`Categorical` over the last axis of `logits`, unvalidated."""
        return Categorical(logits=logits, validate_args=False)

    def sample(self, logits: Tensor, generator: torch.Generator) -> Tensor:
        """Action indices [...] (int64) drawn from `generator`."""
        probs = torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])

    def mode(self, logits: Tensor) -> Tensor:
        """The most probable action indices [...]."""
        return logits.argmax(dim=-1)

    def fisher_product(self, logits: Tensor, tangent: Tensor) -> Tensor:
        """M·tangent, M = diag(p) − ppᵀ the Hessian of KL(p ‖ q) in q's logits at q = p (the
        softmax's Fisher information; TRPO's Gauss-Newton Fisher-vector product)."""
        probs = torch.softmax(logits, dim=-1)
        return probs * (tangent - (probs * tangent).sum(-1, keepdim=True))
