"""The iteration the multi-task baselines share (the MAML paper's "pretrained" and "oracle",
Finn et al. 2017, §5.3): episodes of a batch of tasks pooled into one TRPO step of a policy
that is never adapted during training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from metarl.agents.parts.trust_region import trust_region_update
from metarl.backend.advantages import fitted_advantages
from metarl.backend.progress import Progress
from metarl.policies import DistParams, Params
from metarl.sampling.episodes import Episodes


def pooled_trpo_step(
    policy: nn.Module,
    episodes: Episodes,
    dist_params: Callable[[Params | None], DistParams],
    config: Any,
    *,
    per_task_baselines: bool,
    progress: Progress,
) -> dict[str, float]:
    """One TRPO step of `policy` on the surrogate of every episode of the batch (sampled with
    it), `dist_params(params)` its distribution parameters over the batch; `config` is a
    `TaskBatchConfig` and a `TrustRegionConfig` (discount, λ, the step). The advantages use
    one linear baseline for the whole batch, or with `per_task_baselines` one per task (for a
    learner that may know the task). Metrics: mean episode `return` (and `success`), env
    steps, and the TRPO step's."""
    groups = len(episodes.tasks) if per_task_baselines else 1
    advantages = fitted_advantages(
        episodes.observations,
        episodes.rewards,
        episodes.dones,
        episodes.mask,
        config.discount,
        config.gae_lambda,
        groups=groups,
    )
    metrics = {
        "return": episodes.episode_returns().mean().item(),
        "env_steps": float(episodes.num_env_steps),
    }
    successes = episodes.episode_successes()
    if successes is not None:
        metrics["success"] = successes.mean().item()
    step = trust_region_update(
        policy,
        dist_params,
        episodes.actions,
        episodes.log_probs,
        advantages,
        episodes.mask,
        config,
        progress=progress,
    )
    return {**metrics, **step}
