"""ProMP (Rothfuss et al. 2019, "ProMP: Proximal Meta-Policy Search").

The inner loop is the one MAML uses (`metarl.agents.parts.inner_loop`), with the low-variance
curvature (LVC) objective in place of VPG: its gradient is VPG's at the sampling policy, but its
Hessian drops the high-variance term. The outer update, this module, takes several Adam steps on
a PPO-style clipped surrogate of the adapted policies, penalized by the KL between the old and
new pre-update policies of every inner step (a soft trust region on the inner loop), in place of
MAML's TRPO step (docs/architecture.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from metarl.agents.parts.inner_loop import (
    GradientInnerLoop,
    InnerLoopAgent,
    InnerLoopConfig,
    TaskStack,
    expand_tasks,
)
from metarl.backend.losses import clipped_surrogate_loss, lvc_loss
from metarl.envs.checks import check_nonnegative, check_positive_int
from metarl.policies import DistParams, Params
from metarl.policies.distributions import map_dist_params


@dataclass
class ProMPConfig(InnerLoopConfig):
    """ProMP settings; defaults are the paper's and its official code's
    (docs/architecture.md §5)."""

    clip: float = 0.3
    """ε of the outer clipped surrogate."""
    outer_steps: int = 5
    """Adam steps on the outer objective per meta-iteration."""
    outer_lr: float = 1e-3
    """Adam step size of the outer loop."""
    inner_kl_coeff: float = 5e-4
    """η: weight of the KL penalty between old and new pre-update policies."""

    def __post_init__(self) -> None:
        """Check the inner loop's fields, then the outer loop's."""
        super().__post_init__()
        check_positive_int("outer_steps", self.outer_steps)
        for name in ("clip", "outer_lr", "inner_kl_coeff"):
            check_nonnegative(name, getattr(self, name))


class ProMP(InnerLoopAgent):
    """ProMP on a metarl task env: the inner loop with the LVC objective, and a clipped outer
    objective optimized by Adam."""

    def __init__(
        self, env: str, config: ProMPConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """Build the inner loop (sampler, tasks, policy) for `env` and the outer Adam optimizer
        over the meta-parameters."""
        self.config = cfg = config or ProMPConfig()
        self.inner_loop = GradientInnerLoop(env, cfg, lvc_loss, env_kwargs=env_kwargs)
        for lr in self.inner_loop.step_sizes.values():
            lr.requires_grad_(cfg.learn_inner_lr)
        self.optimizer = torch.optim.Adam(
            list(self.inner_loop.meta_parameters().values()), lr=cfg.outer_lr
        )

    def train_step(self) -> dict[str, float]:
        """One meta-iteration; metrics: pre/post-update returns, env steps, outer loss, KL."""
        cfg = self.config
        batch = self.inner_loop.sample_meta_batch()
        inner, post = batch.inner, batch.post
        meta_params = self.inner_loop.meta_parameters()
        with torch.no_grad():  # copies: Adam updates the parameters these were computed from
            old_pre = [
                map_dist_params(
                    torch.clone,
                    self.inner_loop.dist_params(
                        self._stage_params(meta_params, inner, k), stack.observations
                    ),
                )
                for k, stack in enumerate(inner)
            ]

        losses = []
        for _ in range(cfg.outer_steps):
            loss, inner_kl = self._outer_objective(meta_params, inner, post, old_pre)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        # The inner step differentiates, so this evaluation keeps autograd on.
        loss_after, inner_kl = self._outer_objective(meta_params, inner, post, old_pre)
        return {
            **batch.metrics(),
            "loss_before": losses[0],
            "loss_after": loss_after.item(),
            "inner_kl": inner_kl.item(),
        }

    def _stage_params(self, meta_params: Params, inner: list[TaskStack], k: int) -> Params:
        """The per-task parameters that sampled inner stage k: θ for k = 0, else θ after k steps."""
        if k == 0:
            return expand_tasks(meta_params, inner[0].num_tasks)
        return self.inner_loop.adapt(meta_params, inner[:k])

    def _outer_objective(
        self,
        meta_params: Params,
        inner: list[TaskStack],
        post: TaskStack,
        old_pre: list[DistParams],
    ) -> tuple[Tensor, Tensor]:
        """Clipped surrogate of the adapted policies + η · mean inner KL; returns both parts."""
        cfg = self.config
        adapted = self.inner_loop.adapt(meta_params, inner)
        log_probs = self.inner_loop.log_probs(adapted, post.observations, post.actions)
        clipped = vmap(clipped_surrogate_loss, in_dims=(0, 0, 0, 0, None))(
            log_probs, post.log_probs, post.advantages, post.mask, cfg.clip
        )
        kls = [
            self.inner_loop.kl(old, self._stage_params(meta_params, inner, k), stack)
            for k, (old, stack) in enumerate(zip(old_pre, inner, strict=True))
        ]
        inner_kl = torch.stack(kls).mean()
        return clipped.mean() + cfg.inner_kl_coeff * inner_kl, inner_kl

    # ----- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The inner loop's state (policy, step sizes, task and sampler RNGs) and the outer Adam
        optimizer's."""
        return {**self.inner_loop.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (a checkpoint of the earlier ProMP, a subclass of
        MAML, also holds MAML's `fisher_rng`, which ProMP never used: it is ignored)."""
        self.inner_loop.load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
