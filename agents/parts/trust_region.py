"""The trust-region update that every TRPO-driven agent uses (single-task TRPO, the MAML family,
RL²-TRPO): its settings, and one TRPO step of a policy on a batch of its own samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from metarl.agents.parts.checks import check_float, check_int
from metarl.backend.losses import mean_kl, surrogate_loss
from metarl.backend.optim import trpo_step
from metarl.backend.progress import SILENT, Progress
from metarl.policies import DistParams, Params, parameters


@dataclass
class TrustRegionConfig:
    """The settings of `optim.trpo_step` (docs/architecture.md §5 defaults), shared by every
    TRPO-driven agent."""

    max_kl: float = 0.01
    """Trust region: the largest mean KL(old ‖ new) a step may take, finite and > 0."""
    cg_iterations: int = 10
    """Conjugate-gradient iterations for the natural-gradient direction F⁻¹g, >= 1."""
    cg_damping: float = 1e-5
    """Added to the Fisher diagonal, keeping CG well posed; finite and >= 0."""
    max_backtracks: int = 15
    """Line-search tries (the full step first) before the step is rejected, >= 1: with 0 no
    step would ever be taken."""
    backtrack_ratio: float = 0.8
    """Step shrink factor between line-search tries, in (0, 1)."""

    def __post_init__(self) -> None:
        """Check the trust region's fields."""
        check_float("max_kl", self.max_kl, 0, low_open=True)
        check_int("cg_iterations", self.cg_iterations)
        check_float("cg_damping", self.cg_damping, 0)
        check_int("max_backtracks", self.max_backtracks)
        check_float("backtrack_ratio", self.backtrack_ratio, 0, 1, low_open=True, high_open=True)

    def trpo_kwargs(self) -> dict[str, Any]:
        """These settings as `trpo_step` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(TrustRegionConfig)}


def trust_region_update(
    policy: nn.Module,
    dist_params: Callable[[Params | None], DistParams],
    actions: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    config: TrustRegionConfig,
    fisher: tuple[Callable[[Params | None], DistParams], Tensor] | None = None,
    *,
    progress: Progress = SILENT,
) -> dict[str, float]:
    """One TRPO step of `policy`, in place, on the surrogate of `actions` `[T, B, ...]` sampled
    with log-probs `old_log_probs` (the current policy's). `dist_params(params)` is the policy's
    distribution parameters over the batch with `params` (None: its own), batch shape `[T, B]`.
    fisher: (dist_params, mask) of a part of the batch whose KL curvature the conjugate
    gradient uses instead of the whole batch's, when that is expensive; the line search still
    checks the whole batch's KL. progress: sees the conjugate gradient's and the line
    search's steps.

    The Fisher-vector products differentiate the KL twice (`hessian_operator`). Its
    Gauss-Newton form, which MAML uses through its inner steps, measured slower here on RL²'s
    GRU unroll (benchmarks/README.md, "Where an iteration's time goes").

    Metrics: surrogate `loss_before` / `loss_after`, `kl` of the step, `step_fraction` of the
    full natural-gradient step taken, `accepted` (1.0 or 0.0).
    """
    action_dist = policy.action_dist
    # The trust region's fixed anchor: the sampling policy's distribution, detached.
    with torch.no_grad():
        old_dist = action_dist.distribution(dist_params(None))

    def loss_fn(params: Params) -> Tensor:
        log_probs = action_dist.distribution(dist_params(params)).log_prob(actions)
        return surrogate_loss(log_probs, old_log_probs, advantages, mask)

    def kl_fn(params: Params) -> Tensor:
        return mean_kl(old_dist, action_dist.distribution(dist_params(params)), mask)

    fisher_kl_fn = None
    if fisher is not None:
        fisher_dist_params, fisher_mask = fisher
        with torch.no_grad():
            old_fisher_dist = action_dist.distribution(fisher_dist_params(None))

        def fisher_kl_fn(params: Params) -> Tensor:
            new_dist = action_dist.distribution(fisher_dist_params(params))
            return mean_kl(old_fisher_dist, new_dist, fisher_mask)

    new_params, info = trpo_step(
        loss_fn,
        kl_fn,
        parameters(policy),
        **config.trpo_kwargs(),
        fisher_kl_fn=fisher_kl_fn,
        progress=progress,
    )
    with torch.no_grad():
        for name, param in policy.named_parameters():
            param.copy_(new_params[name])
    return {name: float(value) for name, value in info.items()}
