"""PEARL's networks and losses (Rakelly et al. 2019): the context encoder with its product of
Gaussian factors, the z-conditioned tanh-Gaussian actor, twin Q-functions, and the SAC losses as
plain functions with documented shapes.

Shapes: M tasks of the meta-batch, N transitions per task, L latent size, A action size. Actions
inside these modules are in the unit box [-1, 1]^A; `TanhGaussian` scales them to the env's box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from metarl.policies import mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SAC's clamp on the actor's log-std
MIN_VARIANCE = 1e-7  # floor of a Gaussian factor's variance before the product (as the paper)


# ----- the posterior over z --------------------------------------------------------------------


def product_of_gaussians(
    means: Tensor, variances: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Normalized product of N Gaussian factors N(μ_n, σ²_n) per task (PEARL §4.1, eq. 4 context).

    means, variances: [..., N, L]; mask: [..., N] (1 keeps a factor, 0 drops padding).
    Returns the product's mean Σ(μ_n/σ²_n)·σ² and variance σ² = 1/Σ(1/σ²_n), each [..., L].
    A task with no factors gets precision 0: infinite variance, so callers use the prior then.
    """
    precisions = 1.0 / variances.clamp(min=MIN_VARIANCE)
    if mask is not None:
        precisions = precisions * mask[..., None]
    total = precisions.sum(-2)
    variance = 1.0 / total
    return (precisions * means).sum(-2) * variance, variance


class ContextEncoder(nn.Module):
    """ψ(c_n) → (μ_n, σ²_n): one Gaussian factor per context transition (s, a, r[, s']),
    then their product q(z|c) (PEARL §4.1, the permutation-invariant encoder)."""

    def __init__(self, context_dim: int, latent_size: int, hidden_sizes: Sequence[int]) -> None:
        """ψ: a ReLU MLP from `context_dim` to μ and pre-softplus σ², `latent_size` each."""
        super().__init__()
        self.latent_size = latent_size
        self.net = mlp([context_dim, *hidden_sizes, 2 * latent_size], activation=nn.ReLU)

    def forward(self, context: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance [..., L] from context [..., N, context_dim] (mask [..., N]).
        Empty context (N = 0 or all masked) gives the prior N(0, I)."""
        if context.shape[-2] == 0:
            shape = (*context.shape[:-2], self.latent_size)
            zeros = torch.zeros(shape, device=context.device)
            return zeros, torch.ones_like(zeros)
        mean, raw = self.net(context).chunk(2, dim=-1)
        mean, variance = product_of_gaussians(mean, F.softplus(raw), mask)
        if mask is not None:  # tasks without any context fall back to the prior
            empty = (mask.sum(-1) == 0)[..., None]
            mean = torch.where(empty, torch.zeros_like(mean), mean)
            variance = torch.where(empty, torch.ones_like(variance), variance)
        return mean, variance


def kl_to_standard_normal(mean: Tensor, variance: Tensor) -> Tensor:
    """KL(N(mean, diag variance) ‖ N(0, I)) per task: [..., L] → [...]."""
    return 0.5 * (variance + mean**2 - 1.0 - variance.log()).sum(-1)


# ----- actor and critics -----------------------------------------------------------------------


class TanhGaussian:
    """Actions a = scale·tanh(u), u ~ N(mean, std): the SAC policy's squashed Gaussian, in the
    `action_dist` interface of `metarl.policies` (parameters `(mean, log_std)` of u, [..., A]).

    `scale` maps the unit box onto a symmetric env box (Navigation2D's ±0.1)."""

    def __init__(self, scale: Tensor) -> None:
        """`scale` [A]: the env box's half-widths."""
        self.scale = scale

    def distribution(self, dist_params: tuple[Tensor, Tensor]) -> Distribution:
        """The squashed, scaled distribution; it offers only `log_prob`."""
        return _ScaledTanhNormal(*dist_params, self.scale)

    def sample(self, dist_params: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        """scale·tanh(u), u drawn with `generator`."""
        mean, log_std = dist_params
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return self.scale * torch.tanh(mean + log_std.exp() * noise)

    def mode(self, dist_params: tuple[Tensor, Tensor]) -> Tensor:
        """scale·tanh(mean): the deterministic action of evaluation."""
        return self.scale * torch.tanh(dist_params[0])


class _ScaledTanhNormal(Distribution):
    """Just enough of a distribution for the sampler's stored log-probabilities."""

    arg_constraints: dict = {}

    def __init__(self, mean: Tensor, log_std: Tensor, scale: Tensor) -> None:
        super().__init__(mean.shape[:-1], validate_args=False)
        self.base = Independent(Normal(mean, log_std.exp(), validate_args=False), 1)
        self.scale = scale

    def log_prob(self, value: Tensor) -> Tensor:
        unit = (value / self.scale).clamp(-1 + 1e-6, 1 - 1e-6)
        pre_tanh = torch.atanh(unit)
        return (
            self.base.log_prob(pre_tanh)
            - tanh_log_det(pre_tanh).sum(-1)
            - torch.log(self.scale).sum(-1)
        )


def tanh_log_det(pre_tanh: Tensor) -> Tensor:
    """log(1 − tanh(u)²), computed stably as 2(log 2 − u − softplus(−2u)); elementwise."""
    return 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))


class LatentPolicy(nn.Module):
    """π(a|s, z): a ReLU MLP on (s, z) giving the mean and log-std of a tanh-squashed Gaussian.

    `z` is a buffer so that the sampler's per-task parameter dicts (`{"z": z_i}`) condition each
    task's rollouts on its own z within one vmapped forward.
    """

    recurrent = False

    def __init__(
        self, obs_dim: int, latent_size: int, action_scale: Tensor, hidden_sizes: Sequence[int]
    ) -> None:
        """A ReLU MLP (s, z) → (mean, log_std) [A], A = len(`action_scale`); the z buffer
        starts at 0."""
        super().__init__()
        self.register_buffer("z", torch.zeros(latent_size))
        self.net = mlp([obs_dim + latent_size, *hidden_sizes, 2 * action_scale.shape[0]], nn.ReLU)
        self.action_dist = TanhGaussian(action_scale)

    def forward(self, obs: Tensor, z: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(mean, log_std) of u, [..., A], for obs [..., obs_dim] and z [..., L] (default: the
        buffer, broadcast)."""
        z = self.z.expand(*obs.shape[:-1], -1) if z is None else z
        mean, log_std = self.net(torch.cat([obs, z], -1)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def rsample(
        self, obs: Tensor, z: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Reparameterized unit-box action [..., A], its log-prob [...] (with the tanh
        correction), and the pre-squash mean and log-std [..., A] (for their regularizers)."""
        mean, log_std = self(obs, z)
        noise = torch.randn(mean.shape, generator=generator).to(mean.device)  # the CPU's draw
        pre_tanh = mean + log_std.exp() * noise
        log_prob = Normal(mean, log_std.exp()).log_prob(pre_tanh) - tanh_log_det(pre_tanh)
        return torch.tanh(pre_tanh), log_prob.sum(-1), mean, log_std


class TwinQ(nn.Module):
    """Two independent Q(s, a, z) ReLU MLPs (clipped double-Q, Fujimoto et al. 2018)."""

    def __init__(
        self, obs_dim: int, action_dim: int, latent_size: int, hidden: Sequence[int]
    ) -> None:
        """Two ReLU MLPs with `hidden` layers from (s, a, z) to a scalar."""
        super().__init__()
        sizes = [obs_dim + action_dim + latent_size, *hidden, 1]
        self.q1, self.q2 = mlp(sizes, nn.ReLU), mlp(sizes, nn.ReLU)

    def forward(self, obs: Tensor, action: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Both Q-values [...] for obs [..., obs_dim], unit-box action [..., A], z [..., L]."""
        x = torch.cat([obs, action, z], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


# ----- SAC losses -----------------------------------------------------------------------------


def soft_q_target(
    rewards: Tensor,
    terminated: Tensor,
    next_q1: Tensor,
    next_q2: Tensor,
    next_log_prob: Tensor,
    discount: float,
    alpha: Tensor | float,
) -> Tensor:
    """y = r + γ(1 − done)(min(Q̄₁, Q̄₂)(s', a') − α log π(a'|s')), a' ~ π(·|s'); all [...]
    (rewards already scaled). No gradient flows through it."""
    soft_value = torch.min(next_q1, next_q2) - alpha * next_log_prob
    return (rewards + discount * (1.0 - terminated.float()) * soft_value).detach()


def critic_loss(q1: Tensor, q2: Tensor, target: Tensor) -> Tensor:
    """Mean squared TD error of both critics against one target, all [...] → scalar."""
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def actor_loss(log_prob: Tensor, q1: Tensor, q2: Tensor, alpha: Tensor | float) -> Tensor:
    """E[α log π(ã|s) − min(Q₁, Q₂)(s, ã)], ã ~ π reparameterized; all [...] → scalar."""
    return (alpha * log_prob - torch.min(q1, q2)).mean()


def alpha_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """Automatic entropy tuning (Haarnoja et al. 2018b): −log α · E[log π + H̄]; log_prob [...]."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """θ̄ ← (1 − τ)θ̄ + τθ for every parameter."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.lerp_(s, tau)
