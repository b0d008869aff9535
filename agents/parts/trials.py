"""What trial agents (RL², VariBAD) share about whole trials: where a trial ends, and one
trial's per-episode outcomes on each of many tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from metarl.envs.base import Task
from metarl.sampling.episodes import EpisodeOutcomes, Episodes


def trial_ends(mask: Tensor) -> Tensor:
    """`[T, B]` bool, True at the last real step of each column: the only 'done' a trial
    agent's returns and baseline see, since a trial is one episode of the meta-MDP."""
    lengths = mask.sum(0).long()
    ends = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    ends[lengths - 1, torch.arange(mask.shape[1], device=mask.device)] = True
    return ends


def trial_outcomes(
    sample_trials: Callable[[Sequence[Task], int], Episodes],
    tasks: Sequence[Task],
    episodes: int,
    batch_size: int,
) -> EpisodeOutcomes:
    """The return of each episode of one trial per task `[episodes, len(tasks)]` and, where the
    env reports success, each episode's success (1 or 0) in the same shape; trials sampled
    `batch_size` tasks at a time (the sampler's envs)."""
    batches = [
        sample_trials(tasks[i : i + batch_size], episodes) for i in range(0, len(tasks), batch_size)
    ]

    def per_episode(values: list[Tensor]) -> Tensor:
        return torch.cat(values).reshape(len(tasks), episodes).T.float()

    returns = per_episode([batch.episode_returns() for batch in batches])
    successes = [batch.episode_successes() for batch in batches]
    success = None if any(s is None for s in successes) else per_episode(successes)
    return EpisodeOutcomes(returns, success)


def trial_metrics(
    episodes: Episodes, episodes_per_trial: int
) -> tuple[dict[str, float], dict[str, float]]:
    """A batch of trials' progress metrics: `trial_return` (total reward per trial), mean
    episode `return`, `first_episode_return` and `last_episode_return` (their gap is the
    adaptation) and `env_steps`; and, where the env reports success (Meta-World), the first and
    last episodes' success rates (empty otherwise)."""
    returns = episodes.episode_returns().reshape(-1, episodes_per_trial)
    head = {
        "trial_return": returns.sum(1).mean().item(),
        "return": returns.mean().item(),
        "first_episode_return": returns[:, 0].mean().item(),
        "last_episode_return": returns[:, -1].mean().item(),
        "env_steps": float(episodes.num_env_steps),
    }
    successes = episodes.episode_successes()
    if successes is None:
        return head, {}
    successes = successes.reshape(-1, episodes_per_trial)
    return head, {
        "first_episode_success": successes[:, 0].mean().item(),
        "last_episode_success": successes[:, -1].mean().item(),
    }
