"""The gradient-based inner loop that MAML-TRPO (and its variants) and ProMP share; each agent adds
only its own outer loop (docs/architecture.md §5).

One meta-iteration's inner part, for a batch of n tasks: sample pre-update episodes with θ; give
each task advantages on a linear baseline fitted to its episodes alone (`TaskStack`); take
`num_inner_steps` steps θ'_i = θ − α ⊙ ∇L_i(θ), all tasks at once by `torch.func.vmap` (fresh
episodes with the adapted parameters before every further step); sample post-update episodes
with θ'_i. The outer loop then differentiates a loss of the post-update episodes through `adapt`.

What varies between the agents is passed in or switched by the config:
- the inner objective L_i: the policy-gradient loss of MAML (Finn et al. 2017, "Model-Agnostic
  Meta-Learning", §3.2) or ProMP's low-variance curvature objective (Rothfuss et al. 2019),
  given the log-probs of the policy that sampled the episodes (ProMP's importance weights);
- α: the configured constant, or one meta-learned step size per parameter (Meta-SGD, Li et al.
  2017), α = exp(log α), which the outer loop optimizes with θ as the `LOG_LR_PREFIX` entries of
  `meta_parameters`: any outer step keeps every α positive;
- `first_order` (FO-MAML) holds the inner gradient constant in the meta-gradient.

Only the outer loop's differentiated closures build the inner step's second-order graph
(`create_graph`); the sampling path, and the values an outer loop only evaluates (a line
search), take the same inner gradient without it, to the same values.

`GradientInnerLoop` is the component an agent holds (as `inner_loop`); `sample_meta_batch` gives
the outer loop a `MetaBatch`; `InnerLoopAgent` is what an agent offers through the component
alone (its policy, `adaptation_returns`, `close`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

from metarl.agents.parts.checks import (
    check_bool,
    check_float,
    check_int,
    config_error,
)
from metarl.agents.parts.config import TaskBatchConfig
from metarl.agents.parts.seeding import InitRNG
from metarl.backend.adaptation import gradient_step, repeat_for_tasks
from metarl.backend.advantages import fitted_advantages
from metarl.backend.losses import kl_metric, mean_kl
from metarl.backend.optim import MatVec, gauss_newton_operator, leaves
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task
from metarl.policies import DistParams, Params, call, make_policy, parameters
from metarl.sampling.episodes import EpisodeOutcomes, Episodes
from metarl.sampling.tasks import task_source

LOG_LR_PREFIX = "log_inner_lr."
"""Names of Meta-SGD's log step sizes among the meta-parameters: `log_inner_lr.` + the
parameter's name."""

CHUNK_BYTES = 16 << 20
"""The largest activation (bytes) that `GradientInnerLoop.dist_params` lets one chunk of tasks
allocate: half of glibc's largest mmap threshold (32 MiB), below which freed blocks are reused."""

InnerLoss = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""An inner objective `(log_probs, sampling_log_probs, advantages, mask) -> loss` of one task's
episodes [T, E]: log_probs under the parameters being adapted, sampling_log_probs under the
policy that sampled the episodes (`TaskStack.log_probs`, constants)."""


@dataclass
class InnerLoopConfig(TaskBatchConfig):
    """Settings of the gradient-based inner loop that MAML, ProMP and Reptile share
    (docs/architecture.md §5); `gae_lambda` is the inner and the outer loop's."""

    inner_lr: float = 0.1
    """α of the inner policy-gradient step, finite and >= 0 (0: no adaptation); with
    `learn_inner_lr` the initial value, then > 0."""
    num_inner_steps: int = 1
    """Inner steps per task, >= 1."""
    first_order: bool = False
    """FO-MAML: treat the inner gradient as a constant in the meta-gradient."""
    learn_inner_lr: bool = False
    """Meta-SGD: meta-learn a per-parameter inner step size α = exp(log α), starting at
    `inner_lr`."""

    def __post_init__(self) -> None:
        """Check the task batch's fields, then the inner loop's."""
        TaskBatchConfig.__post_init__(self)
        check_int("num_inner_steps", self.num_inner_steps)
        check_bool("first_order", self.first_order)
        check_bool("learn_inner_lr", self.learn_inner_lr)
        check_float("inner_lr", self.inner_lr, 0)
        if self.learn_inner_lr and self.inner_lr == 0:
            requirement = "be > 0 with learn_inner_lr (Meta-SGD meta-learns its log)"
            raise config_error("inner_lr", requirement, self.inner_lr)


@dataclass
class TaskStack:
    """Episodes of n tasks on a leading task axis, [n, T, E, ...], with the advantages the inner
    and outer losses need. Every per-task computation runs once for all tasks, by vmap."""

    observations: Tensor  # [n, T, E, obs_dim]
    actions: Tensor  # [n, T, E, ...]
    log_probs: Tensor  # [n, T, E] under the policy that sampled them
    mask: Tensor  # [n, T, E]
    advantages: Tensor  # [n, T, E] GAE on a per-task linear baseline, normalized per task

    @classmethod
    def of(cls, episodes: Episodes, discount: float, gae_lambda: float) -> TaskStack:
        """Stack `episodes` by task; each task's advantages use a baseline fitted to it alone."""
        per_task = episodes.columns_per_task
        advantages = fitted_advantages(
            episodes.observations,
            episodes.rewards,
            episodes.dones,
            episodes.mask,
            discount,
            gae_lambda,
            groups=len(episodes.tasks),
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

    @property
    def num_tasks(self) -> int:
        """n, the length of the task axis."""
        return self.observations.shape[0]

    def select(self, tasks: Tensor) -> TaskStack:
        """The stack of the given task indices."""
        return TaskStack(*(x[tasks] for x in astuple_shallow(self)))

    def to(self, device: torch.device) -> TaskStack:
        """The stack on `device` (itself where it is there already)."""
        return TaskStack(*(x.to(device) for x in astuple_shallow(self)))


@dataclass
class MetaBatch:
    """The inner loop run on one meta-iteration's tasks: what the outer loop optimizes on."""

    tasks: list[Task]
    inner: list[TaskStack]
    """The episodes each inner step adapted on: pre-update first, one stack per step."""
    stages: list[Episodes]
    """The episodes of every stage: pre-update first, post-update last."""
    adapted: Params
    """The stacked adapted parameters [n, ...] that sampled the post-update episodes."""
    post: TaskStack
    """The post-update episodes, the outer loss's."""

    def metrics(self) -> dict[str, float]:
        """Mean pre- and post-update episode return (and success rate, where the env reports
        success), and the env steps of every stage."""
        metrics = {
            "pre_return": self.stages[0].episode_returns().mean().item(),
            "post_return": self.stages[-1].episode_returns().mean().item(),
            "env_steps": float(sum(e.num_env_steps for e in self.stages)),
        }
        pre, post = self.stages[0].episode_successes(), self.stages[-1].episode_successes()
        if pre is not None and post is not None:
            metrics |= {"pre_success": pre.mean().item(), "post_success": post.mean().item()}
        return metrics


class GradientInnerLoop:
    """The policy, the sampler, the task source and Meta-SGD's step sizes of a gradient-step
    meta-learner, and its inner loop with the objective `inner_loss` (see the module docstring).

    Adapted parameters are stacked per task ([n, ...] for each name), so the inner steps and the
    outer losses and KLs of all tasks are single vmapped computations.
    """

    def __init__(
        self,
        env: str,
        config: InnerLoopConfig,
        inner_loss: InnerLoss,
        *,
        env_kwargs: dict | None = None,
    ) -> None:
        """Build the sampler (one env per episode of the meta-batch), the seeded task source and
        the policy, whose initial weights come from the stream of `config.seed`."""
        self.config = cfg = config
        self.inner_loss = inner_loss
        env_kwargs = env_kwargs or {}  # the env's own settings (a paper's velocity range, say)
        self.sampler = cfg.make_sampler(
            env, cfg.meta_batch_size * cfg.episodes_per_task, env_kwargs
        )
        self.task_env = task_source(self.sampler.env_id, env_kwargs, cfg.seed)
        self.device = cfg.torch_device
        with InitRNG(cfg.seed):  # initialized on the CPU: the same weights on every device
            self.policy = make_policy(
                self.sampler.observation_space, self.sampler.action_space, cfg.hidden_sizes
            )
        self.policy.to(self.device)
        self.progress: Progress = SILENT  # the trainer's nested bar, when it trains the agent
        # Meta-SGD's log α per parameter name (read only when `learn_inner_lr`).
        self.log_step_sizes = {
            name: torch.full_like(p, cfg.inner_lr).log()
            for name, p in self.policy.named_parameters()
        }
        self._forward = vmap(lambda p, obs: call(self.policy, p, obs))
        # The widest activation per step: a layer's output (the observation at least).
        self._widest = max(
            [self.sampler.observation_space.shape[0]]
            + [p.shape[0] for p in self.policy.parameters() if p.dim() == 2]
        )

    # ----- parameters -------------------------------------------------------------------------

    def meta_parameters(self) -> Params:
        """What the outer loop optimizes: the policy's parameters (and Meta-SGD's log step
        sizes)."""
        params = parameters(self.policy)
        if self.config.learn_inner_lr:
            params.update({LOG_LR_PREFIX + name: lr for name, lr in self.log_step_sizes.items()})
        return params

    def step_size(self, meta_params: Params, name: str) -> Tensor | float:
        """α for the parameter `name`: learned, exp(log α) (Meta-SGD), or the configured
        constant."""
        if self.config.learn_inner_lr:
            return meta_params[LOG_LR_PREFIX + name].exp()
        return self.config.inner_lr

    @property
    def step_sizes(self) -> Params:
        """Meta-SGD's current α per parameter name, exp(log α) (detached copies)."""
        return {name: lr.detach().exp() for name, lr in self.log_step_sizes.items()}

    def load_meta_parameters(self, params: Params) -> None:
        """Copy outer-loop parameters (as from `meta_parameters`) into the policy and step sizes."""
        with torch.no_grad():
            for name, param in self.policy.named_parameters():
                param.copy_(params[name])
            if self.config.learn_inner_lr:
                for name, lr in self.log_step_sizes.items():
                    lr.copy_(params[LOG_LR_PREFIX + name])

    # ----- the policy under per-task parameters -----------------------------------------------

    def dist_params(self, stacked: Params, observations: Tensor) -> DistParams:
        """The policy's distribution parameters on `observations` [n, T, E, obs_dim] under
        per-task parameters `stacked` ([n, ...] each).

        The tasks go through the network in chunks whose widest activation stays under
        `CHUNK_BYTES`: glibc's malloc serves larger blocks with a fresh mmap each time (page
        faults on every first write), and a meta-batch's activations are allocated hundreds of
        times per iteration, through the inner steps and every Fisher-vector product. MAML's
        HalfCheetah batch (40 tasks × 4000 steps × 64 units, 41 MiB a layer) runs as 16 + 16 + 8
        tasks; the values are the same."""
        num_tasks = observations.shape[0]
        steps = observations[0].numel() // observations.shape[-1]
        chunk = max(1, CHUNK_BYTES // (steps * self._widest * observations.element_size()))
        if chunk >= num_tasks:
            return self._forward(stacked, observations)
        pieces = [
            self._forward(
                {name: p[start : start + chunk] for name, p in stacked.items()},
                observations[start : start + chunk],
            )
            for start in range(0, num_tasks, chunk)
        ]
        if isinstance(pieces[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*pieces, strict=True))
        return torch.cat(pieces)

    def log_probs(self, stacked: Params, observations: Tensor, actions: Tensor) -> Tensor:
        """log π(a|s) [n, T, E] under per-task parameters `stacked` ([n, ...] each)."""
        dist = self.policy.action_dist.distribution(self.dist_params(stacked, observations))
        return dist.log_prob(actions)

    def kl(self, old_dist_params: DistParams, stacked: Params, stack: TaskStack) -> Tensor:
        """Mean over tasks of KL(old ‖ the policy under `stacked`) on the states of `stack`,
        `old_dist_params` being the old policies' distribution parameters there."""
        return self.dist_kl(old_dist_params, self.dist_params(stacked, stack.observations), stack)

    def dist_kl(
        self, old_dist_params: DistParams, new_dist_params: DistParams, stack: TaskStack
    ) -> Tensor:
        """`kl` from the new policies' distribution parameters on the states of `stack`."""
        dist = self.policy.action_dist.distribution
        kls = vmap(lambda old, new, mask: mean_kl(dist(old), dist(new), mask))(
            old_dist_params, new_dist_params, stack.mask
        )
        return kls.mean()

    def kl_fisher(
        self,
        at: Params,
        new_dist_params: DistParams,
        stack: TaskStack,
        old_dist_params: DistParams,
        damping: float = 0.0,
    ) -> MatVec:
        """F·v (+ damping·v), F the Hessian in `at` of `kl(old_dist_params, ·, stack)` at the
        anchor, as the Gauss-Newton product JᵀMJ (`gauss_newton_operator`): J the Jacobian of
        `new_dist_params` (computed from the leaves `at` through the inner steps, graph kept)
        and M the action distribution's closed-form Fisher at the old policies, weighted as
        `kl` averages: 1/n per task, 1/(its valid steps) per step. Equals `hessian_operator` of
        the KL (tested to 1e-6 relative) at a fraction of the cost."""
        mask = stack.mask.to(stack.observations.dtype)
        weights = mask / (mask.sum(dim=(1, 2), keepdim=True) * stack.num_tasks)  # [n, T, E]
        metric = kl_metric(self.policy.action_dist.fisher_product, old_dist_params, weights)
        outputs = new_dist_params if isinstance(new_dist_params, tuple) else (new_dist_params,)
        return gauss_newton_operator(outputs, at, metric, damping)

    # ----- adaptation -------------------------------------------------------------------------

    def inner_step(
        self, meta_params: Params, stacked: Params, stack: TaskStack, *, create_graph: bool = True
    ) -> Params:
        """θ'_i = θ_i − α ⊙ ∇ L_inner,i(θ_i) for every task i at once, differentiable w.r.t.
        meta_params; with `first_order` (FO-MAML), or without `create_graph` (when only the
        values are needed, or only the first-order dependence), the gradient is a constant."""
        log_probs = self.log_probs(stacked, stack.observations, stack.actions)
        losses = vmap(self.inner_loss)(log_probs, stack.log_probs, stack.advantages, stack.mask)
        return gradient_step(
            stacked,
            losses,
            lambda name: self.step_size(meta_params, name),
            create_graph=create_graph and not self.config.first_order,
        )

    def adapt_stages(
        self, meta_params: Params, stacks: Sequence[TaskStack], *, create_graph: bool = True
    ) -> list[Params]:
        """Each task's parameters before and after each inner step on `stacks` in turn:
        len(stacks) + 1 entries, [n, ...] each, θ first (ProMP's inner KLs need every stage)."""
        stages = [expand_tasks(meta_params, stacks[0].num_tasks)]
        for stack in stacks:
            stages.append(
                self.inner_step(meta_params, stages[-1], stack, create_graph=create_graph)
            )
        return stages

    def adapt(
        self, meta_params: Params, stacks: Sequence[TaskStack], *, create_graph: bool = True
    ) -> Params:
        """Each task's parameters after one inner step on each of `stacks` in turn, [n, ...].
        create_graph=False gives the same values without the second-order graph."""
        return self.adapt_stages(meta_params, stacks, create_graph=create_graph)[-1]

    def sample_adaptation(
        self,
        tasks: Sequence[Task],
        num_steps: int,
        deterministic: bool = False,
        *,
        sample_final: bool = True,
    ) -> tuple[list[TaskStack], list[Episodes], Params | None]:
        """Run the inner loop on `tasks`: episodes with θ, then after each of `num_steps` inner
        steps. Returns the inner stacks, the Episodes of every stage (num_steps + 1) and the
        stacked adapted parameters after the last step (None when num_steps is 0).
        `sample_final=False` (Reptile, which needs only the adapted parameters) skips the
        episodes after the last step: num_steps stages (num_steps >= 1)."""
        cfg = self.config
        meta_params = _detach(self.meta_parameters())
        inner: list[TaskStack] = []
        stacked: Params | None = None
        stages = []
        num_stages = num_steps + 1 if sample_final else num_steps
        self.progress.phase("sampling", num_stages)
        for step in range(num_stages):
            # The adapted parameters go to the CPU's sampler in one copy per tensor.
            per_task = None if stacked is None else _unstack(_on_cpu(stacked))
            episodes = self.sampler.sample(
                self.policy, tasks, cfg.episodes_per_task, per_task, deterministic=deterministic
            )
            stages.append(episodes)
            self.progress.advance()
            if step < num_steps:
                stack = TaskStack.of(episodes, cfg.discount, cfg.gae_lambda)
                inner.append(stack.to(self.device))
                # One more inner step from the last stage's values: the inner gradient, at the
                # values `adapt` would compute, without a second-order graph.
                start = expand_tasks(meta_params, len(tasks)) if stacked is None else stacked
                stacked = _detach(
                    self.inner_step(meta_params, leaves(start), inner[-1], create_graph=False)
                )
        return inner, stages, stacked

    def sample_meta_batch(self) -> MetaBatch:
        """Draw `meta_batch_size` tasks and run `num_inner_steps` inner steps on each."""
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        inner, stages, adapted = self.sample_adaptation(tasks, cfg.num_inner_steps)
        post = TaskStack.of(stages[-1], cfg.discount, cfg.gae_lambda).to(self.device)
        return MetaBatch(tasks, inner, stages, adapted, post)

    def adaptation_outcomes(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> EpisodeOutcomes:
        """Mean episode return (and success rate) of each task after 0, 1, …, num_steps inner
        steps [K+1, tasks]: any number of tasks, adapted `meta_batch_size` at a time (what the
        sampler holds)."""
        batch = self.config.meta_batch_size
        returns, successes = [], []
        for start in range(0, len(tasks), batch):
            chunk = tasks[start : start + batch]
            _, stages, _ = self.sample_adaptation(chunk, num_steps, deterministic)
            returns.append(torch.stack([per_task(e.episode_returns(), len(chunk)) for e in stages]))
            if all(e.successes is not None for e in stages):
                successes.append(
                    torch.stack([per_task(e.episode_successes(), len(chunk)) for e in stages])
                )
        success = torch.cat(successes, dim=1) if len(successes) == len(returns) else None
        return EpisodeOutcomes(torch.cat(returns, dim=1), success)

    def adaptation_returns(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> Tensor:
        """Mean episode return of each task after 0, 1, …, num_steps inner steps [K+1, tasks]."""
        return self.adaptation_outcomes(tasks, num_steps, deterministic).returns

    # ----- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Policy, inner log step sizes, and the task and sampler RNG states."""
        return {
            "policy": self.policy.state_dict(),
            "log_inner_lrs": self.log_step_sizes,
            "task_rng": self.task_env.np_random.bit_generator.state,
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (other keys of `state` are the agent's). A
        checkpoint from before the log parameterization holds α itself, under "inner_lrs":
        its log is taken, and an α ≤ 0 there (the unconstrained Meta-SGD could learn one) is a
        `ValueError`."""
        self.policy.load_state_dict(state["policy"])
        if "log_inner_lrs" in state:
            log_lrs = state["log_inner_lrs"]
        else:
            lrs = {name: torch.as_tensor(lr) for name, lr in state["inner_lrs"].items()}
            bad = [name for name, lr in lrs.items() if not bool((lr > 0).all())]
            if self.config.learn_inner_lr and bad:
                raise ValueError(
                    f"the checkpoint's Meta-SGD step sizes for {bad} are not all positive, which "
                    "the log-parameterized step sizes cannot represent"
                )
            log_lrs = {name: lr.log() for name, lr in lrs.items()}
        with torch.no_grad():
            for name, lr in self.log_step_sizes.items():
                lr.copy_(log_lrs[name])
        self.task_env.np_random.bit_generator.state = state["task_rng"]
        self.sampler.load_state_dict(state["sampler"])

    def close(self) -> None:
        """Release the sampler."""
        self.sampler.close()


class InnerLoopAgent:
    """The part of an agent built on a `GradientInnerLoop` that is the inner loop's alone: its
    policy, `adaptation_returns` for `metarl evaluate`, and `close` (docs/architecture.md §3).
    Each agent sets `inner_loop` and adds its own outer loop, config and checkpoint state."""

    inner_loop: GradientInnerLoop

    @property
    def policy(self) -> nn.Module:
        """The pre-update policy θ."""
        return self.inner_loop.policy

    @property
    def progress(self) -> Progress:
        """Where the iteration's phases are reported (the inner loop's sampling, the outer
        loop's own); the trainer sets a nested progress bar."""
        return self.inner_loop.progress

    @progress.setter
    def progress(self, progress: Progress) -> None:
        self.inner_loop.progress = progress

    def adaptation_returns(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> Tensor:
        """Mean episode return of each task after 0, 1, …, num_steps inner steps [K+1, tasks]."""
        return self.inner_loop.adaptation_returns(tasks, num_steps, deterministic)

    def adaptation_outcomes(
        self, tasks: Sequence[Task], num_steps: int, deterministic: bool = False
    ) -> EpisodeOutcomes:
        """`adaptation_returns` with the success rates beside them (`EpisodeOutcomes`)."""
        return self.inner_loop.adaptation_outcomes(tasks, num_steps, deterministic)

    def close(self) -> None:
        """Release the sampler."""
        self.inner_loop.close()


def policy_parameters(meta_params: Params) -> Params:
    """The policy's part of `meta_params`: without Meta-SGD's log step sizes."""
    return {name: p for name, p in meta_params.items() if not name.startswith(LOG_LR_PREFIX)}


def expand_tasks(meta_params: Params, num_tasks: int) -> Params:
    """The policy part of `meta_params` repeated for `num_tasks` tasks, [n, ...] (views)."""
    return repeat_for_tasks(policy_parameters(meta_params), num_tasks)


def astuple_shallow(stack: TaskStack) -> tuple[Tensor, ...]:
    """The stack's tensors in field order (dataclasses.astuple would deep-copy them)."""
    return tuple(getattr(stack, f.name) for f in fields(stack))


def _on_cpu(params: Params) -> Params:
    """Stacked parameters copied to the host whole, before `_unstack` (one copy per tensor
    rather than one per task; the identity on the CPU)."""
    return {name: p.cpu() for name, p in params.items()}


def _detach(params: Params) -> Params:
    return {name: p.detach() for name, p in params.items()}


def _unstack(stacked: Params) -> list[Params]:
    """Per-task parameter dicts from stacked [n, ...] tensors (the sampler's form)."""
    num_tasks = next(iter(stacked.values())).shape[0]
    return [{name: p[i] for name, p in stacked.items()} for i in range(num_tasks)]


def per_task(values: Tensor, num_tasks: int) -> Tensor:
    """The mean over each task's episodes of per-episode `values` (task-major) [num_tasks]."""
    return values.reshape(num_tasks, -1).mean(1)
