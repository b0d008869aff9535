"""MAML-TRPO (Finn et al. 2017, "Model-Agnostic Meta-Learning", §3.2 and §5.3) and its variants.

One meta-iteration: the shared gradient-based inner loop (`metarl.agents.parts.inner_loop`)
draws a batch of tasks, samples pre-update episodes with θ, takes `num_inner_steps` VPG steps
θ'_i = θ − α∇L_i(θ) and samples post-update episodes with θ'_i; then one TRPO step on θ for the
post-update surrogate, with the KL measured between the old and new *adapted* policies. The
meta-gradient goes through the inner update exactly (second order) unless `first_order` is set
(FO-MAML). This module is that outer loop (docs/architecture.md §5).

Variants, as config switches on the same algorithm:
- Meta-SGD (Li et al. 2017): `learn_inner_lr` meta-learns one inner step size per parameter
  (as its log, so that it stays positive).
- E-MAML (Stadie et al. 2018): `exploration_weight` > 0 adds the term that credits the
  pre-update episodes with the post-update return they led to.

The TRPO step differentiates the loss once and the KL's curvature once, through the inner
steps; its line search only evaluates them, on the same closures without the inner step's
second-order graph (`create_graph=False`: the same values). A non-finite term of the loss is a
`FloatingPointError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from metarl.agents.parts.checks import check_float, check_optional_int
from metarl.agents.parts.inner_loop import (
    GradientInnerLoop,
    InnerLoopAgent,
    InnerLoopConfig,
    TaskStack,
    policy_parameters,
)
from metarl.agents.parts.trust_region import TrustRegionConfig
from metarl.backend.losses import masked_mean, surrogate_loss, vpg_loss
from metarl.backend.optim import check_finite, flat, leaves, trust_region_step
from metarl.policies import DistParams, Params, call
from metarl.policies.distributions import map_dist_params
from metarl.sampling.episodes import Episodes


@dataclass
class MAMLConfig(InnerLoopConfig, TrustRegionConfig):
    """MAML-TRPO settings; defaults are pytorch-maml-rl's and the paper's
    (docs/architecture.md §5). The trust-region fields are those of the outer TRPO step."""

    exploration_weight: float = 0.0
    """E-MAML: weight of the term crediting pre-update episodes with the post-update return,
    finite and >= 0 (0: plain MAML; > 0 needs `meta_batch_size` >= 2)."""
    fisher_tasks: int | None = None
    """Tasks (a random subset of the batch) whose KL curvature the conjugate gradient uses, in
    [1, meta_batch_size]; None uses all. The line search always checks the KL of every task."""

    def __post_init__(self) -> None:
        """Check the inner loop's fields, the trust region's, `fisher_tasks` and E-MAML's weight
        (whose credit, standardized across the batch's tasks, needs two tasks or more)."""
        InnerLoopConfig.__post_init__(self)
        TrustRegionConfig.__post_init__(self)
        check_optional_int(
            "fisher_tasks",
            self.fisher_tasks,
            1,
            self.meta_batch_size,
            none_means="all tasks",
            high_name="meta_batch_size",
        )
        check_float("exploration_weight", self.exploration_weight, 0)
        if self.exploration_weight > 0 and self.meta_batch_size < 2:
            raise ValueError(
                f"config key 'exploration_weight' > 0 (E-MAML) needs meta_batch_size >= 2, got "
                f"meta_batch_size={self.meta_batch_size}: its credit is the post-update return "
                "standardized across the batch's tasks"
            )


def vpg_inner_loss(
    log_probs: Tensor, sampling_log_probs: Tensor, advantages: Tensor, mask: Tensor
) -> Tensor:
    """MAML's inner objective, `vpg_loss` (the sampling log-probs are not used)."""
    return vpg_loss(log_probs, advantages, mask)


class MAML(InnerLoopAgent):
    """MAML-TRPO and its variants on a metarl task env (see the module docstring): the inner loop
    with the VPG objective, and a TRPO outer loop."""

    def __init__(
        self, env: str, config: MAMLConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """Build the inner loop (sampler, tasks, policy) for `env` and the Fisher-subset RNG."""
        self.config = cfg = config or MAMLConfig()
        self.inner_loop = GradientInnerLoop(env, cfg, vpg_inner_loss, env_kwargs=env_kwargs)
        self._task_generator = torch.Generator().manual_seed(cfg.seed)  # Fisher subsets

    def train_step(self) -> dict[str, float]:
        """One meta-iteration; metrics: pre/post-update returns, env steps, TRPO step info.

        The inner steps' second-order graph is built once, from θ to the adapted policies'
        distribution parameters on the post-update states, and serves both the meta-gradient
        and every Fisher-vector product of the conjugate gradient (the Gauss-Newton form of the
        KL's Hessian, `GradientInnerLoop.kl_fisher`). The line search's candidates take the
        inner step without that graph, once per candidate for its loss and KL together."""
        cfg = self.config
        loop = self.inner_loop
        batch = loop.sample_meta_batch()
        inner, post = batch.inner, batch.post
        # The trust region's anchor: the adapted policies that sampled the post-update episodes.
        old_dist_params = loop.dist_params(batch.adapted, post.observations)
        credit = self._exploration_credit(batch.stages[-1]) if cfg.exploration_weight else None

        at = leaves(loop.meta_parameters())
        dist_params = loop.dist_params(loop.adapt(at, inner), post.observations)
        terms = self.post_terms(at, dist_params, inner, post, credit)
        loss = sum(check_finite(value, name) for name, value in terms.items())
        if cfg.fisher_tasks and cfg.fisher_tasks < len(batch.tasks):
            subset = torch.randperm(len(batch.tasks), generator=self._task_generator)
            subset = subset[: cfg.fisher_tasks].to(loop.device)
            sub_inner, sub_post = [s.select(subset) for s in inner], post.select(subset)
            sub_old = map_dist_params(lambda x: x[subset], old_dist_params)
            sub_dist_params = loop.dist_params(loop.adapt(at, sub_inner), sub_post.observations)
            fisher = loop.kl_fisher(at, sub_dist_params, sub_post, sub_old, cfg.cg_damping)
        else:
            fisher = loop.kl_fisher(at, dist_params, post, old_dist_params, cfg.cg_damping)

        candidate = _Candidate(loop, inner, post)  # the line search's, first-order

        def loss_value_fn(meta_params: Params) -> Tensor:
            terms = self.post_terms(meta_params, candidate(meta_params), inner, post, credit)
            return sum(terms.values())

        def kl_value_fn(meta_params: Params) -> Tensor:
            return loop.dist_kl(old_dist_params, candidate(meta_params), post)

        # The graph is kept: the Fisher products go through it again.
        grads = torch.autograd.grad(loss, list(at.values()), retain_graph=True)
        kwargs = cfg.trpo_kwargs()
        del kwargs["cg_damping"]  # in `fisher`
        new_params, info = trust_region_step(
            loss.item(),
            flat(grads),
            at,
            fisher,
            loss_value_fn,
            kl_value_fn,
            **kwargs,
            progress=self.progress,
        )
        loop.load_meta_parameters(new_params)
        return {**batch.metrics(), **{name: float(value) for name, value in info.items()}}

    def outer_terms(
        self,
        meta_params: Params,
        inner: Sequence[TaskStack],
        post: TaskStack,
        credit: Tensor | None = None,
        *,
        create_graph: bool = True,
    ) -> dict[str, Tensor]:
        """The terms of `outer_loss` by name: "surrogate loss", and "E-MAML exploration term"
        (weighted) when `credit` is given."""
        adapted = self.inner_loop.adapt(meta_params, inner, create_graph=create_graph)
        dist_params = self.inner_loop.dist_params(adapted, post.observations)
        return self.post_terms(meta_params, dist_params, inner, post, credit)

    def post_terms(
        self,
        meta_params: Params,
        dist_params: DistParams,
        inner: Sequence[TaskStack],
        post: TaskStack,
        credit: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """`outer_terms` from the adapted policies' distribution parameters on the post-update
        states (computed from `meta_params` through the inner steps)."""
        dist = self.policy.action_dist.distribution(dist_params)
        log_probs = dist.log_prob(post.actions)
        losses = vmap(surrogate_loss)(log_probs, post.log_probs, post.advantages, post.mask)
        terms = {"surrogate loss": losses.mean()}
        if credit is not None:
            terms["E-MAML exploration term"] = self.config.exploration_weight * (
                self._exploration_loss(meta_params, inner[0], credit)
            )
        return terms

    def outer_loss(
        self,
        meta_params: Params,
        inner: Sequence[TaskStack],
        post: TaskStack,
        credit: Tensor | None = None,
        *,
        create_graph: bool = True,
    ) -> Tensor:
        """The meta-objective to minimize: the mean over tasks of the TRPO surrogate of the
        adapted policy on its post-update episodes (plus E-MAML's term when `credit` is given).
        create_graph=False: the same value, without the inner step's second-order graph."""
        terms = self.outer_terms(meta_params, inner, post, credit, create_graph=create_graph)
        return sum(terms.values())

    def outer_kl(
        self,
        meta_params: Params,
        inner: Sequence[TaskStack],
        post: TaskStack,
        old_dist_params: DistParams,
        *,
        create_graph: bool = True,
    ) -> Tensor:
        """Mean over tasks of KL(old adapted ‖ adapted under meta_params) on post-update states
        (create_graph=False: the same value, without the second-order graph)."""
        adapted = self.inner_loop.adapt(meta_params, inner, create_graph=create_graph)
        return self.inner_loop.kl(old_dist_params, adapted, post)

    # ----- E-MAML -----------------------------------------------------------------------------

    @staticmethod
    def _exploration_credit(post_episodes: Episodes) -> Tensor:
        """E-MAML's reward for a task's pre-update episodes: the post-update mean return of the
        task, standardized across the batch's tasks (the mean is the baseline) [tasks]."""
        returns = post_episodes.episode_returns().reshape(len(post_episodes.tasks), -1).mean(1)
        return (returns - returns.mean()) / (returns.std() + 1e-8)

    def _exploration_loss(self, meta_params: Params, pre: TaskStack, credit: Tensor) -> Tensor:
        """−credit · ratio of the pre-update likelihood (Stadie et al. 2018, eq. 5): its gradient
        at the sampling θ is −credit_i · ∇ log π_θ of task i's pre-update steps."""
        dist_params = call(self.policy, policy_parameters(meta_params), pre.observations)
        log_probs = self.policy.action_dist.distribution(dist_params).log_prob(pre.actions)
        ratio = torch.exp(log_probs - pre.log_probs.detach())
        return -masked_mean(ratio * credit.to(ratio.device, ratio.dtype)[:, None, None], pre.mask)

    # ----- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The inner loop's state (policy, step sizes, task and sampler RNGs) and the Fisher
        subsets' RNG."""
        return {**self.inner_loop.state_dict(), "fisher_rng": self._task_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.inner_loop.load_state_dict(state)
        self._task_generator.set_state(state["fisher_rng"])


class _Candidate:
    """A line-search candidate's adapted policies on the post-update states, first-order (the
    same values as the second-order graph's), computed once for its loss and its KL: the line
    search passes both closures the very same leaves."""

    def __init__(
        self, loop: GradientInnerLoop, inner: Sequence[TaskStack], post: TaskStack
    ) -> None:
        """Evaluate candidates of `loop`'s meta-parameters on these episodes."""
        self._loop, self._inner, self._post = loop, inner, post
        self._at: Params | None = None
        self._dist_params: DistParams | None = None

    def __call__(self, meta_params: Params) -> DistParams:
        """The distribution parameters under `meta_params`' adapted policies (cached)."""
        if meta_params is not self._at:
            adapted = self._loop.adapt(meta_params, self._inner, create_graph=False)
            self._dist_params = self._loop.dist_params(adapted, self._post.observations)
            self._at = meta_params
        return self._dist_params
