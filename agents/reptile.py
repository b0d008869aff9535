"""Reptile for RL (Nichol, Achiam and Schulman 2018, "On First-Order Meta-Learning Algorithms",
Algorithm 2, batched version).

One meta-iteration: the shared gradient-based inner loop (`metarl.agents.parts.inner_loop`)
draws a batch of n tasks and takes `num_inner_steps` = k policy-gradient steps on each from θ,
θ_i = U^k_τi(θ), with fresh episodes before every step (the same VPG steps as MAML's inner loop,
all tasks at once); then θ ← θ + ε_t · (1/n) Σ_i (θ_i − θ). Nothing is differentiated through
the inner steps: Reptile is first-order by construction. With k = 1 the update is joint training
(SGD on the tasks' mean pre-update loss); the meta-learning comes from k >= 2, whose later
gradients depend on the earlier steps (the paper's §5 analysis).

The outer step size ε_t is annealed linearly, as in the paper's experiments: ε_t =
`meta_step_size` · (1 − t / iterations) at iteration t = 0, 1, …, so the last update uses
`meta_step_size` / iterations (with `anneal_meta_step_size`; otherwise constant).

Deviations from the paper, which is supervised: the inner optimizer is the shared inner loop's
plain policy-gradient step (step size `inner_lr`) rather than Adam, so that Reptile and the MAML
family adapt at test time with the same update and `metarl compare` sets them side by side on
the same axis; and the episodes after the k-th step are sampled, for the progress rows'
post-update return, only when `post_episodes` is set (1/(k+1) of an iteration's env steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metarl.agents.maml import vpg_inner_loss
from metarl.agents.parts.checks import check_bool, check_float, config_error
from metarl.agents.parts.inner_loop import (
    GradientInnerLoop,
    InnerLoopAgent,
    InnerLoopConfig,
    expand_tasks,
)


@dataclass
class ReptileConfig(InnerLoopConfig):
    """Reptile settings: the shared inner loop's (k = `num_inner_steps` VPG steps of step size
    `inner_lr` per task) and the outer step size's schedule."""

    num_inner_steps: int = 3
    """k, inner policy-gradient steps per task, >= 1 (k = 1 is joint training; the paper's
    analysis needs k >= 2)."""
    meta_step_size: float = 1.0
    """ε_0, the outer step size toward the tasks' mean adapted parameters, finite and > 0
    (1.0: θ moves to the mean θ_i, the paper's initial value)."""
    anneal_meta_step_size: bool = True
    """Anneal ε linearly from `meta_step_size` toward 0 over `iterations`, as the paper does
    (False: constant). Resuming with more iterations stretches the rest of the schedule."""
    post_episodes: bool = True
    """Sample episodes with the adapted parameters after the k-th step, for the progress
    rows' `post_return` (and `post_success`); the update does not use them."""

    def __post_init__(self) -> None:
        """Check the inner loop's fields and the outer step's; Meta-SGD's learned step sizes
        have no Reptile counterpart and are an error."""
        InnerLoopConfig.__post_init__(self)
        check_float("meta_step_size", self.meta_step_size, 0, low_open=True)
        check_bool("anneal_meta_step_size", self.anneal_meta_step_size)
        check_bool("post_episodes", self.post_episodes)
        if self.learn_inner_lr:
            raise config_error(
                "learn_inner_lr", "be false for Reptile (no meta-gradient learns α)", True
            )


class Reptile(InnerLoopAgent):
    """Reptile on a metarl task env (see the module docstring): the inner loop with the VPG
    objective, and the interpolation θ ← θ + ε_t · mean(θ_i − θ) as the outer step."""

    def __init__(
        self, env: str, config: ReptileConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """Build the inner loop (sampler, tasks, policy) for `env`."""
        self.config = cfg = config or ReptileConfig()
        self.inner_loop = GradientInnerLoop(env, cfg, vpg_inner_loss, env_kwargs=env_kwargs)
        self.iteration = 0
        """Meta-iterations done, the annealing schedule's t (checkpointed)."""

    def meta_step_size(self, iteration: int) -> float:
        """ε_t at meta-iteration t (0-based): linearly annealed, or constant."""
        cfg = self.config
        if not cfg.anneal_meta_step_size:
            return cfg.meta_step_size
        return cfg.meta_step_size * max(0.0, 1.0 - iteration / cfg.iterations)

    def train_step(self) -> dict[str, float]:
        """One meta-iteration; metrics: the pre-update return (and post-update, with
        `post_episodes`), env steps, ε_t, and the size of the step ‖θ_new − θ‖₂."""
        cfg = self.config
        loop = self.inner_loop
        tasks = loop.task_env.sample_tasks(cfg.meta_batch_size)
        _, stages, adapted = loop.sample_adaptation(
            tasks, cfg.num_inner_steps, sample_final=cfg.post_episodes
        )
        epsilon = self.meta_step_size(self.iteration)
        theta = {name: p.detach() for name, p in loop.meta_parameters().items()}
        start = expand_tasks(theta, len(tasks))
        new = {
            name: p + epsilon * (adapted[name] - start[name]).mean(0) for name, p in theta.items()
        }
        step = torch.sqrt(sum(((new[n] - theta[n]) ** 2).sum() for n in theta))
        loop.load_meta_parameters(new)
        self.iteration += 1

        metrics = {
            "pre_return": stages[0].episode_returns().mean().item(),
            "env_steps": float(sum(e.num_env_steps for e in stages)),
            "meta_step_size": epsilon,
            "step_norm": step.item(),
        }
        if cfg.post_episodes:
            metrics["post_return"] = stages[-1].episode_returns().mean().item()
        pre, post = stages[0].episode_successes(), stages[-1].episode_successes()
        if pre is not None:
            metrics["pre_success"] = pre.mean().item()
            if cfg.post_episodes and post is not None:
                metrics["post_success"] = post.mean().item()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """The inner loop's state (policy, task and sampler RNGs) and the iteration count."""
        return {**self.inner_loop.state_dict(), "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.inner_loop.load_state_dict(state)
        self.iteration = int(state["iteration"])
