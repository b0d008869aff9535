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
