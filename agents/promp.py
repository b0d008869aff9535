"""ProMP (Rothfuss et al. 2019, "ProMP: Proximal Meta-Policy Search").

The inner loop is the one MAML uses (`metarl.agents.parts.inner_loop`), with the low-variance
curvature (LVC) objective in place of VPG: its gradient is VPG's at the sampling policy, but its
Hessian drops the high-variance term. As in the official code, the objective's denominator is the
sampling policy π_θo (the episodes' own log-probs), so over the outer Adam steps, at θ ≠ θo, the
inner gradient keeps the pre-update episodes' importance weights π_θ/π_θo (`lvc_inner_loss`).
The outer update, this module, takes several Adam steps on a PPO-style clipped surrogate of the
adapted policies, penalized by η_k times the KL between the old and new policies of each inner
stage k (a soft trust region on the inner loop), in place of MAML's TRPO step
(docs/architecture.md §5). The η_k start at `inner_kl_coeff`; with `adaptive_inner_kl` each is
halved or doubled after every meta-iteration to keep its stage's KL near `target_inner_kl`.

Only the Adam steps' objective builds the inner step's second-order graph; the old stage
policies and the `loss_after` evaluation take the same values without it. A non-finite term of
the outer objective is a `FloatingPointError` naming it, raised before the Adam step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from metarl.agents.parts.checks import check_bool, check_float, check_int, config_error
from metarl.agents.parts.inner_loop import (
    GradientInnerLoop,
    InnerLoopAgent,
    InnerLoopConfig,
    TaskStack,
    expand_tasks,
)
from metarl.backend.device import adam
from metarl.backend.losses import clipped_surrogate_loss, surrogate_loss
from metarl.backend.optim import check_finite, leaves
from metarl.policies import DistParams, Params
from metarl.policies.distributions import map_dist_params


@dataclass
class ProMPConfig(InnerLoopConfig):
    """ProMP settings; defaults are the paper's and its official code's
    (docs/architecture.md §5)."""

    clip: float = 0.3
    """ε of the outer clipped surrogate, finite and > 0."""
    outer_steps: int = 5
    """Adam steps on the outer objective per meta-iteration, >= 1."""
    outer_lr: float = 1e-3
    """Adam step size of the outer loop, finite and > 0."""
    inner_kl_coeff: float = 5e-4
    """η: weight of the KL penalty between old and new policies of each inner stage, finite
    and >= 0 (the initial value of every η_k when `adaptive_inner_kl`, then > 0: halving and
    doubling leave 0 at 0)."""
    adaptive_inner_kl: bool = False
    """Adapt η_k of each inner step k after every meta-iteration, by the paper's rule: halve it
    when the step's inner KL is below `target_inner_kl` / 1.5, double it above
    `target_inner_kl` · 1.5. The official run scripts keep η fixed."""
    target_inner_kl: float = 0.01
    """The inner KL that `adaptive_inner_kl` steers each inner step's η_k towards, finite and
    > 0."""

    def __post_init__(self) -> None:
        """Check the inner loop's fields, then the outer loop's."""
        super().__post_init__()
        check_float("clip", self.clip, 0, low_open=True)
        check_int("outer_steps", self.outer_steps)
        check_float("outer_lr", self.outer_lr, 0, low_open=True)
        check_bool("adaptive_inner_kl", self.adaptive_inner_kl)
        check_float("inner_kl_coeff", self.inner_kl_coeff, 0)
        if self.adaptive_inner_kl and self.inner_kl_coeff == 0:
            requirement = "be > 0 with adaptive_inner_kl (halving and doubling leave 0 at 0)"
            raise config_error("inner_kl_coeff", requirement, self.inner_kl_coeff)
        check_float("target_inner_kl", self.target_inner_kl, 0, low_open=True)


def lvc_inner_loss(
    log_probs: Tensor, sampling_log_probs: Tensor, advantages: Tensor, mask: Tensor
) -> Tensor:
    """ProMP's inner objective as its official code computes it: −mean(π_θ/π_θo · A), π_θo the
    policy that sampled the episodes (`surrogate_loss`). At θ = θo its value, gradient (VPG's)
    and Hessian (LVC's) are those of `lvc_loss`, −mean(π_θ/⊥π_θ · A); at θ ≠ θo (the later
    outer steps) the ratio is the importance weight of θo's episodes, where lvc_loss's is 1."""
    return surrogate_loss(log_probs, sampling_log_probs, advantages, mask)


def adapt_inner_kl_coeffs(coeffs: Tensor, kls: Tensor, target: float) -> Tensor:
    """The paper's rule for the inner-KL coefficients, one per inner step (a new tensor): η_k
    halved where kl_k < target / 1.5, doubled where kl_k > target · 1.5, else kept."""
    kls = kls.to(coeffs.device, coeffs.dtype)
    halved = torch.where(kls < target / 1.5, coeffs / 2, coeffs)
    return torch.where(kls > target * 1.5, coeffs * 2, halved)


class ProMP(InnerLoopAgent):
    """ProMP on a metarl task env: the inner loop with the LVC objective, and a clipped outer
    objective optimized by Adam."""

    def __init__(
        self, env: str, config: ProMPConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """Build the inner loop (sampler, tasks, policy) for `env` and the outer Adam optimizer
        over the meta-parameters."""
        self.config = cfg = config or ProMPConfig()
        self.inner_loop = GradientInnerLoop(env, cfg, lvc_inner_loss, env_kwargs=env_kwargs)
        for log_lr in self.inner_loop.log_step_sizes.values():
            log_lr.requires_grad_(cfg.learn_inner_lr)
        self.optimizer = adam(
            list(self.inner_loop.meta_parameters().values()), cfg.outer_lr, self.inner_loop.device
        )
        # η_k of each inner step k (float64, [num_inner_steps]): agent state, checkpointed.
        self.inner_kl_coeffs = self._initial_inner_kl_coeffs()

    def train_step(self) -> dict[str, float]:
        """One meta-iteration. Metrics: pre/post-update returns, env steps, the outer objective
        before the first and after the last Adam step, and the mean inner KL after them (with
        several inner steps also each step's, `inner_kl_k`, k = 1, 2, …). With
        `adaptive_inner_kl` also the mean η_k after this iteration's adaptation,
        `inner_kl_coeff` (and each, `inner_kl_coeff_k`); fixed, they are the config's η."""
        cfg = self.config
        batch = self.inner_loop.sample_meta_batch()
        inner, post = batch.inner, batch.post
        meta_params = self.inner_loop.meta_parameters()
        old = self._old_stage_dists(meta_params, inner)

        losses = []
        self.progress.phase("outer steps", cfg.outer_steps)
        for _ in range(cfg.outer_steps):
            loss, _, _ = self._outer_objective(meta_params, inner, post, old, check=True)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            self.progress.advance()
        loss_after, _, kls = self._outer_objective(
            meta_params, inner, post, old, create_graph=False
        )
        kls = kls.detach()
        if cfg.adaptive_inner_kl:
            self.inner_kl_coeffs = adapt_inner_kl_coeffs(
                self.inner_kl_coeffs, kls, cfg.target_inner_kl
            )
        metrics = {
            **batch.metrics(),
            "loss_before": losses[0],
            "loss_after": loss_after.item(),
            "inner_kl": kls.mean().item(),
        }
        several = len(inner) > 1
        if several:
            metrics.update({f"inner_kl_{k}": kl.item() for k, kl in enumerate(kls, 1)})
        if cfg.adaptive_inner_kl:
            coeffs = self.inner_kl_coeffs
            metrics["inner_kl_coeff"] = coeffs.mean().item()
            if several:
                metrics.update({f"inner_kl_coeff_{k}": c.item() for k, c in enumerate(coeffs, 1)})
        return metrics

    def _old_stage_dists(self, meta_params: Params, inner: list[TaskStack]) -> list[DistParams]:
        """The distribution parameters, on each inner stage k's states, of the policies that
        sampled it (θ for k = 0, θ after k inner steps after): the anchors of the inner KLs.
        Copies, since Adam updates the parameters they were computed from."""
        at = leaves(meta_params)
        stages = [expand_tasks(at, inner[0].num_tasks)]
        if len(inner) > 1:  # the last inner step's result sampled the post-update episodes
            stages = self.inner_loop.adapt_stages(at, inner[:-1], create_graph=False)
        with torch.no_grad():
            return [
                map_dist_params(
                    torch.clone, self.inner_loop.dist_params(params, stack.observations)
                )
                for params, stack in zip(stages, inner, strict=False)
            ]

    def _outer_objective(
        self,
        meta_params: Params,
        inner: list[TaskStack],
        post: TaskStack,
        old: list[DistParams],
        *,
        create_graph: bool = True,
        check: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The objective, the clipped surrogate of the adapted policies + mean_k(η_k · kl_k),
        with its two parts: the clipped surrogate and the inner KLs [num_inner_steps].
        create_graph=False: the same values, without the inner step's second-order graph;
        check: raise `FloatingPointError` naming a part that is not finite."""
        cfg = self.config
        stages = self.inner_loop.adapt_stages(meta_params, inner, create_graph=create_graph)
        log_probs = self.inner_loop.log_probs(stages[-1], post.observations, post.actions)
        clipped = vmap(clipped_surrogate_loss, in_dims=(0, 0, 0, 0, None))(
            log_probs, post.log_probs, post.advantages, post.mask, cfg.clip
        ).mean()
        kls = torch.stack(
            [
                self.inner_loop.kl(anchor, params, stack)
                for anchor, params, stack in zip(old, stages, inner, strict=False)
            ]
        )
        if check:
            check_finite(clipped, "clipped surrogate loss")
            for k, kl in enumerate(kls, 1):
                check_finite(kl, f"inner KL of inner step {k}")
        penalty = (self.inner_kl_coeffs.to(kls.device, kls.dtype) * kls).mean()
        return clipped + penalty, clipped, kls

    def _initial_inner_kl_coeffs(self) -> Tensor:
        cfg = self.config
        return torch.full((cfg.num_inner_steps,), cfg.inner_kl_coeff, dtype=torch.float64)

    # ----- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The inner loop's state (policy, step sizes, task and sampler RNGs), the outer Adam
        optimizer's and the inner-KL coefficients η_k."""
        return {
            **self.inner_loop.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "inner_kl_coeffs": self.inner_kl_coeffs.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (a checkpoint of the earlier ProMP, a subclass of
        MAML, also holds MAML's `fisher_rng`, which ProMP never used: it is ignored; one from
        before the adaptive coefficients has none: they are the configured η)."""
        self.inner_loop.load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        coeffs = state.get("inner_kl_coeffs")
        self.inner_kl_coeffs = (
            self._initial_inner_kl_coeffs() if coeffs is None else coeffs.clone().double()
        )
