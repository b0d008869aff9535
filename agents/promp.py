"""ProMP (Rothfuss et al. 2019, "ProMP: Proximal Meta-Policy Search").

The inner step uses the low-variance curvature (LVC) objective, whose gradient is VPG's at the
sampling policy but whose Hessian drops the high-variance term; the outer update takes several
Adam steps on a PPO-style clipped surrogate of the adapted policies, penalized by the KL between
the old and new pre-update policies of every inner step (a soft trust region on the inner loop).
The inner loop, task batching and evaluation are MAML's (`metarl.agents.maml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from metarl.agents.maml import MAML, InnerLoopConfig, TaskStack, expand_tasks
from metarl.backend.losses import clipped_surrogate_loss, lvc_loss, mean_kl
from metarl.envs.checks import check_nonnegative, check_positive_int
from metarl.policies import Params


@dataclass
class ProMPConfig(InnerLoopConfig):
    """ProMP settings; defaults are the paper's and its official code's (docs/architecture.md §5)."""

    clip: float = 0.3
    """ε of the outer clipped surrogate."""
    outer_steps: int = 5
    """Adam steps on the outer objective per meta-iteration."""
    outer_lr: float = 1e-3
    """Adam step size of the outer loop."""
    inner_kl_coeff: float = 5e-4
    """η: weight of the KL penalty between old and new pre-update policies."""

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("outer_steps", self.outer_steps)
        for name in ("clip", "outer_lr", "inner_kl_coeff"):
            check_nonnegative(name, getattr(self, name))


class ProMP(MAML):
    """ProMP on a metarl task env: MAML's inner loop with the LVC objective, a clipped outer
    objective optimized by Adam."""

    inner_loss = staticmethod(lvc_loss)

    def __init__(
        self, env: str, config: ProMPConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        super().__init__(env, config or ProMPConfig(), env_kwargs=env_kwargs)
        for lr in self.inner_lrs.values():
            lr.requires_grad_(self.config.learn_inner_lr)
        self.optimizer = torch.optim.Adam(
            list(self.meta_parameters().values()), lr=self.config.outer_lr
        )

    def train_step(self) -> dict[str, float]:
        """One meta-iteration; metrics: pre/post-update returns, env steps, outer loss, KL."""
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        inner, stages, _ = self.sample_adaptation(tasks, cfg.num_inner_steps)
        post = TaskStack.of(stages[-1], cfg.discount, cfg.gae_lambda)
        meta_params = self.meta_parameters()
        with torch.no_grad():  # copies: Adam updates the parameters these were computed from
            old_pre = [
                _copy(
                    self._dist_params(self._stage_params(meta_params, inner, k), stack.observations)
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
            "pre_return": stages[0].episode_returns().mean().item(),
            "post_return": stages[-1].episode_returns().mean().item(),
            "env_steps": float(sum(e.num_env_steps for e in stages)),
            "loss_before": losses[0],
            "loss_after": loss_after.item(),
            "inner_kl": inner_kl.item(),
        }

    def _stage_params(self, meta_params: Params, inner: list[TaskStack], k: int) -> Params:
        """The per-task parameters that sampled inner stage k: θ for k = 0, else θ after k steps."""
        if k == 0:
            return expand_tasks(meta_params, inner[0].observations.shape[0])
        return self.adapt(meta_params, inner[:k])

    def _outer_objective(
        self, meta_params: Params, inner: list[TaskStack], post: TaskStack, old_pre: list[Any]
    ) -> tuple[Tensor, Tensor]:
        """Clipped surrogate of the adapted policies + η · mean inner KL; returns both parts."""
        cfg = self.config
        adapted = self.adapt(meta_params, inner)
        log_probs = self.log_probs(adapted, post.observations, post.actions)
        clipped = vmap(clipped_surrogate_loss, in_dims=(0, 0, 0, 0, None))(
            log_probs, post.log_probs, post.advantages, post.mask, cfg.clip
        )
        dist = self.policy.action_dist.distribution
        kls = [
            vmap(lambda old, new, mask: mean_kl(dist(old), dist(new), mask))(
                old,
                self._dist_params(self._stage_params(meta_params, inner, k), stack.observations),
                stack.mask,
            ).mean()
            for k, (old, stack) in enumerate(zip(old_pre, inner, strict=True))
        ]
        inner_kl = torch.stack(kls).mean()
        return clipped.mean() + cfg.inner_kl_coeff * inner_kl, inner_kl

    def state_dict(self) -> dict[str, Any]:
        """MAML's state and the outer Adam optimizer's."""
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])


def _copy(dist_params: Any) -> Any:
    """A copy of distribution parameters (a tensor or a tuple of them) owning its memory."""
    if isinstance(dist_params, tuple):
        return tuple(x.clone() for x in dist_params)
    return dist_params.clone()
