"""MAML-TRPO (Finn et al. 2017, "Model-Agnostic Meta-Learning", §3.2 and §5.3) and its variants.

One meta-iteration: draw a batch of tasks; for each, sample pre-update episodes with θ and take
`num_inner_steps` VPG steps θ'_i = θ − α∇L_i(θ) (fresh episodes before every further step);
sample post-update episodes with θ'_i; then one TRPO step on θ for the post-update surrogate
with the KL measured between the old and new *adapted* policies. The meta-gradient goes through
the inner update exactly (second order) unless `first_order` is set (FO-MAML).

Variants, as config switches on the same algorithm:
- Meta-SGD (Li et al. 2017): `learn_inner_lr` meta-learns one inner step size per parameter.
- E-MAML (Stadie et al. 2018): `exploration_weight` > 0 adds the term that credits the
  pre-update episodes with the post-update return they led to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from metarl.agents.parts.config import AgentConfig
from metarl.agents.parts.seeding import InitRNG
from metarl.agents.parts.trust_region import TrustRegionConfig
from metarl.backend.advantages import fitted_advantages
from metarl.backend.losses import masked_mean, mean_kl, surrogate_loss, vpg_loss
from metarl.backend.optim import leaves, trpo_step
from metarl.envs.base import Task
from metarl.envs.checks import check_nonnegative, check_positive_int
from metarl.policies import Params, call, make_policy, parameters
from metarl.sampling.episodes import Episodes
from metarl.sampling.sampler import VectorSampler
from metarl.sampling.tasks import task_source

LR_PREFIX = "inner_lr."


@dataclass
class InnerLoopConfig(AgentConfig):
    """Settings of the gradient-based inner loop that MAML and ProMP share (docs/architecture.md §5)."""

    meta_batch_size: int = 40
    """Tasks per meta-iteration."""
    episodes_per_task: int = 20
    """Episodes per task, before and after each inner step."""
    hidden_sizes: Sequence[int] = (64, 64)
    """Hidden layers of the tanh MLP policy."""
    gae_lambda: float = 1.0
    """GAE λ, inner and outer; 1.0 is the papers' Monte-Carlo return minus baseline."""
    inner_lr: float = 0.1
    """α of the inner policy-gradient step (the initial value when `learn_inner_lr`)."""
    num_inner_steps: int = 1
    """Inner steps per task."""
    first_order: bool = False
    """FO-MAML: treat the inner gradient as a constant in the meta-gradient."""
    learn_inner_lr: bool = False
    """Meta-SGD: meta-learn a per-parameter inner step size, starting at `inner_lr`."""

    def __post_init__(self):
        AgentConfig.__post_init__(self)
        for name in ("meta_batch_size", "episodes_per_task", "num_inner_steps"):
            check_positive_int(name, getattr(self, name))
        check_nonnegative("inner_lr", self.inner_lr)


@dataclass
class MAMLConfig(InnerLoopConfig, TrustRegionConfig):
    """MAML-TRPO settings; defaults are pytorch-maml-rl's and the paper's (docs/architecture.md §5). The
    trust-region fields are those of the outer TRPO step."""

    exploration_weight: float = 0.0
    """E-MAML: weight of the term crediting pre-update episodes with the post-update return."""
    fisher_tasks: int | None = None
    """Tasks (a random subset of the batch) whose KL curvature the conjugate gradient uses;
    None uses all. The line search always checks the KL of every task."""

    def __post_init__(self):
        InnerLoopConfig.__post_init__(self)
        TrustRegionConfig.__post_init__(self)
        check_nonnegative("exploration_weight", self.exploration_weight)


@dataclass
class TaskStack:
    """Episodes of n tasks on a leading task axis, [n, T, E, ...], with the advantages the VPG
    and surrogate losses need. Every per-task computation runs once for all tasks, by vmap."""

    observations: Tensor  # [n, T, E, obs_dim]
    actions: Tensor  # [n, T, E, ...]
    log_probs: Tensor  # [n, T, E] under the policy that sampled them
    mask: Tensor  # [n, T, E]
    advantages: Tensor  # [n, T, E] GAE on a per-task linear baseline, normalized per task

    @classmethod
    def of(cls, episodes: Episodes, discount: float, gae_lambda: float) -> TaskStack:
        """Stack `episodes` by task; each task's advantages use a baseline fitted to it alone."""
        per_task = episodes.columns_per_task
        advantages = torch.zeros_like(episodes.rewards)
        for i in range(len(episodes.tasks)):
            cols = slice(i * per_task, (i + 1) * per_task)
            obs, dones, mask = (
                episodes.observations[:, cols],
                episodes.dones[:, cols],
                episodes.mask[:, cols],
            )
            advantages[:, cols] = fitted_advantages(
                obs,
                episodes.rewards[:, cols],
                dones,
                mask,
                discount,
                gae_lambda,
            )

        def stack(x: Tensor) -> Tensor:
            return x.reshape(x.shape[0], -1, per_task, *x.shape[2:]).transpose(0, 1)

        return cls(
            stack(episodes.observations),
            stack(episodes.actions),
            stack(episodes.log_probs),
            stack(episodes.mask),
            stack(advantages),
        )

    def select(self, tasks: Tensor) -> TaskStack:
        """The stack of the given task indices."""
        return TaskStack(*(x[tasks] for x in astuple_shallow(self)))


class MAML:
    """MAML-TRPO and its variants on a metarl task env (see the module docstring).

    Adapted parameters are stacked per task ([n, ...] for each name), so the inner steps, the
    outer surrogate and the KL of all tasks are single vmapped computations.
    """

    def __init__(
        self, env: str, config: InnerLoopConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        self.config = cfg = config or MAMLConfig()
        env_kwargs = env_kwargs or {}  # the env's own settings (a paper's velocity range, say)
        self.sampler = VectorSampler(
            env,
            cfg.meta_batch_size * cfg.episodes_per_task,
            env_kwargs=env_kwargs,
            horizon=cfg.horizon,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
        )
        self.task_env = task_source(self.sampler.env_id, env_kwargs, cfg.seed)
        with InitRNG(cfg.seed):
            self.policy = make_policy(
                self.sampler.observation_space, self.sampler.action_space, cfg.hidden_sizes
            )
        self.inner_lrs = {
            name: torch.full_like(p, cfg.inner_lr) for name, p in self.policy.named_parameters()
        }
        self._dist_params = vmap(lambda p, obs: call(self.policy, p, obs))
        self._task_generator = torch.Generator().manual_seed(cfg.seed)  # Fisher subsets

    # ----- the inner loop -------------------------------------------------------------------

    def meta_parameters(self) -> Params:
        """What the outer loop optimizes: the policy's parameters (and Meta-SGD's step sizes)."""
        params = parameters(self.policy)
        if self.config.learn_inner_lr:
            params.update({LR_PREFIX + name: lr for name, lr in self.inner_lrs.items()})
        return params

    def log_probs(self, stacked: Params, observations: Tensor, actions: Tensor) -> Tensor:
        """log π(a|s) [n, T, E] under per-task parameters `stacked` ([n, ...] each)."""
        dist = self.policy.action_dist.distribution(self._dist_params(stacked, observations))
        return dist.log_prob(actions)

    inner_loss = staticmethod(vpg_loss)
    """The inner objective: the policy-gradient loss of Finn et al. (ProMP swaps in LVC)."""

    def inner_step(self, meta_params: Params, stacked: Params, stack: TaskStack) -> Params:
        """θ'_i = θ_i − α ⊙ ∇ L_inner,i(θ_i) for every task i at once, differentiable w.r.t.
        meta_params; with `first_order` the gradient is a constant (FO-MAML)."""
        log_probs = self.log_probs(stacked, stack.observations, stack.actions)
        losses = vmap(self.inner_loss)(log_probs, stack.advantages, stack.mask)
        # Task i's loss depends only on its own slice, so one backward gives every task's gradient.
        grads = torch.autograd.grad(
            losses.sum(), list(stacked.values()), create_graph=not self.config.first_order
        )
        return {
            name: p - self.inner_lr(meta_params, name) * g
            for (name, p), g in zip(stacked.items(), grads, strict=True)
        }

    def inner_lr(self, meta_params: Params, name: str) -> Tensor | float:
        """α for the parameter `name`: learned (Meta-SGD) or the configured constant."""
        if self.config.learn_inner_lr:
            return meta_params[LR_PREFIX + name]
        return self.config.inner_lr

    def adapt(self, meta_params: Params, stacks: Sequence[TaskStack]) -> Params:
        """Each task's parameters after one inner step on each of `stacks` in turn, [n, ...]."""
        stacked = expand_tasks(meta_params, stacks[0].observations.shape[0])
        for stack in stacks:
            stacked = self.inner_step(meta_params, stacked, stack)
        return stacked

    def sample_adaptation(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> tuple[list[TaskStack], list[Episodes], Params | None]:
        """Run the inner loop on `tasks`: episodes with θ, then after each of `num_steps` inner
        steps. Returns the inner stacks, the Episodes of every stage (num_steps + 1) and the
        stacked adapted parameters the last stage ran (None when num_steps is 0)."""
        cfg = self.config
        meta_params = _detach(self.meta_parameters())
        inner: list[TaskStack] = []
        stacked: Params | None = None
        stages = []
        for step in range(num_steps + 1):
            per_task = None if stacked is None else _unstack(stacked)
            episodes = self.sampler.sample(
                self.policy, tasks, cfg.episodes_per_task, per_task, deterministic=deterministic
            )
            stages.append(episodes)
            if step < num_steps:
                inner.append(TaskStack.of(episodes, cfg.discount, cfg.gae_lambda))
                stacked = _detach(self.adapt(leaves(meta_params), inner))
        return inner, stages, stacked

    # ----- the outer loop -------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One meta-iteration; metrics: pre/post-update returns, env steps, TRPO step info."""
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        inner, stages, sampled = self.sample_adaptation(tasks, cfg.num_inner_steps)
        post = TaskStack.of(stages[-1], cfg.discount, cfg.gae_lambda)
        # The trust region's anchor: the adapted policies that sampled the post-update episodes.
        old_dist_params = self._dist_params(sampled, post.observations)
        credit = self._exploration_credit(stages[-1]) if cfg.exploration_weight else None

        def loss_fn(meta_params: Params) -> Tensor:
            return self.outer_loss(meta_params, inner, post, credit)

        def kl_fn(meta_params: Params) -> Tensor:
            return self.outer_kl(meta_params, inner, post, old_dist_params)

        fisher_kl_fn = None
        if cfg.fisher_tasks and cfg.fisher_tasks < len(tasks):
            subset = torch.randperm(len(tasks), generator=self._task_generator)[: cfg.fisher_tasks]
            sub_inner, sub_post = [s.select(subset) for s in inner], post.select(subset)
            sub_old = _select(old_dist_params, subset)

            def fisher_kl_fn(meta_params: Params) -> Tensor:
                return self.outer_kl(meta_params, sub_inner, sub_post, sub_old)

        new_params, info = trpo_step(
            loss_fn,
            kl_fn,
            self.meta_parameters(),
            **cfg.trpo_kwargs(),
            fisher_kl_fn=fisher_kl_fn,
        )
        self.load_meta_parameters(new_params)
        return {
            "pre_return": stages[0].episode_returns().mean().item(),
            "post_return": stages[-1].episode_returns().mean().item(),
            "env_steps": float(sum(e.num_env_steps for e in stages)),
            **{name: float(value) for name, value in info.items()},
        }

    def outer_loss(
        self,
        meta_params: Params,
        inner: Sequence[TaskStack],
        post: TaskStack,
        credit: Tensor | None = None,
    ) -> Tensor:
        """The meta-objective to minimize: the mean over tasks of the TRPO surrogate of the
        adapted policy on its post-update episodes (plus E-MAML's term when `credit` is given)."""
        adapted = self.adapt(meta_params, inner)
        log_probs = self.log_probs(adapted, post.observations, post.actions)
        losses = vmap(surrogate_loss)(log_probs, post.log_probs, post.advantages, post.mask)
        loss = losses.mean()
        if credit is not None:
            loss = loss + self.config.exploration_weight * self._exploration_loss(
                meta_params, inner[0], credit
            )
        return loss

    def outer_kl(
        self,
        meta_params: Params,
        inner: Sequence[TaskStack],
        post: TaskStack,
        old_dist_params: Any,
    ) -> Tensor:
        """Mean over tasks of KL(old adapted ‖ adapted under meta_params) on post-update states."""
        new_dist_params = self._dist_params(self.adapt(meta_params, inner), post.observations)
        dist = self.policy.action_dist.distribution
        kls = vmap(lambda old, new, mask: mean_kl(dist(old), dist(new), mask))(
            old_dist_params, new_dist_params, post.mask
        )
        return kls.mean()

    @staticmethod
    def _exploration_credit(post_episodes: Episodes) -> Tensor:
        """E-MAML's reward for a task's pre-update episodes: the post-update mean return of the
        task, standardized across the batch's tasks (the mean is the baseline) [tasks]."""
        returns = post_episodes.episode_returns().reshape(len(post_episodes.tasks), -1).mean(1)
        return (returns - returns.mean()) / (returns.std() + 1e-8)

    def _exploration_loss(self, meta_params: Params, pre: TaskStack, credit: Tensor) -> Tensor:
        """−credit · ratio of the pre-update likelihood (Stadie et al. 2018, eq. 5): its gradient
        at the sampling θ is −credit_i · ∇ log π_θ of task i's pre-update steps."""
        params = {n: p for n, p in meta_params.items() if not n.startswith(LR_PREFIX)}
        dist_params = call(self.policy, params, pre.observations)
        log_probs = self.policy.action_dist.distribution(dist_params).log_prob(pre.actions)
        ratio = torch.exp(log_probs - pre.log_probs.detach())
        return -masked_mean(ratio * credit.to(ratio.dtype)[:, None, None], pre.mask)

    def load_meta_parameters(self, params: Params) -> None:
        """Copy outer-loop parameters (as from `meta_parameters`) into the policy and step sizes."""
        with torch.no_grad():
            for name, param in self.policy.named_parameters():
                param.copy_(params[name])
            if self.config.learn_inner_lr:
                for name, lr in self.inner_lrs.items():
                    lr.copy_(params[LR_PREFIX + name])

    # ----- evaluation, checkpoints ------------------------------------------------------------

    def adaptation_returns(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> Tensor:
        """Mean episode return of each task after 0, 1, …, num_steps inner steps [K+1, tasks]."""
        _, stages, _ = self.sample_adaptation(tasks, num_steps, deterministic)
        return torch.stack([e.episode_returns().reshape(len(tasks), -1).mean(1) for e in stages])

    def state_dict(self) -> dict[str, Any]:
        """Policy, inner step sizes, and the task and sampler RNG states."""
        return {
            "policy": self.policy.state_dict(),
            "inner_lrs": self.inner_lrs,
            "task_rng": self.task_env.np_random.bit_generator.state,
            "sampler": self.sampler.state_dict(),
            "fisher_rng": self._task_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.policy.load_state_dict(state["policy"])
        with torch.no_grad():
            for name, lr in self.inner_lrs.items():
                lr.copy_(state["inner_lrs"][name])
        self.task_env.np_random.bit_generator.state = state["task_rng"]
        self.sampler.load_state_dict(state["sampler"])
        self._task_generator.set_state(state["fisher_rng"])

    def close(self) -> None:
        """Release the sampler."""
        self.sampler.close()


def _detach(params: Params) -> Params:
    return {name: p.detach() for name, p in params.items()}


def expand_tasks(meta_params: Params, num_tasks: int) -> Params:
    """The policy part of `meta_params` repeated for `num_tasks` tasks, [n, ...] (views)."""
    return {
        name: p.expand(num_tasks, *p.shape)
        for name, p in meta_params.items()
        if not name.startswith(LR_PREFIX)
    }


def astuple_shallow(stack: TaskStack) -> tuple[Tensor, ...]:
    """The stack's tensors in field order (dataclasses.astuple would deep-copy them)."""
    return tuple(getattr(stack, f.name) for f in fields(stack))


def _select(dist_params: Any, tasks: Tensor) -> Any:
    """Distribution parameters (a tensor or a tuple of them) of the given task indices."""
    if isinstance(dist_params, tuple):
        return tuple(x[tasks] for x in dist_params)
    return dist_params[tasks]


def _unstack(stacked: Params) -> list[Params]:
    """Per-task parameter dicts from stacked [n, ...] tensors (the sampler's form)."""
    num_tasks = next(iter(stacked.values())).shape[0]
    return [{name: p[i] for name, p in stacked.items()} for i in range(num_tasks)]
