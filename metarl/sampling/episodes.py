"""`Episodes`: a batch of rollouts as time-major tensors, the sampler's output
(docs/architecture.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from metarl.envs.base import Task


@dataclass
class Episodes:
    """B columns of up to T steps. Column b ran `tasks[task_index[b]]`; columns of one task are
    contiguous. A column holds one episode, or the several episodes of an RL² trial back to back.

    Steps past a column's end are padding (mask 0, every other field 0).
    """

    observations: Tensor  # [T, B, obs_dim] float32, the observation each action was taken on
    actions: Tensor  # [T, B, action_dim] float32, or [T, B] int64 for discrete actions
    rewards: Tensor  # [T, B] float32
    log_probs: Tensor  # [T, B] log-probability of each action under the sampling policy
    dones: Tensor  # [T, B] bool, an episode ended at this step (termination or horizon)
    terminated: Tensor  # [T, B] bool, it ended by termination (Ant falling), not the horizon
    mask: Tensor  # [T, B] float32, 1 on real steps, 0 on padding
    task_index: Tensor  # [B] int64
    tasks: list[Task]
    successes: Tensor | None = None  # [T, B] bool, info["success"] of each step (Meta-World),
    # None for envs that report no success

    @property
    def num_env_steps(self) -> int:
        """Real (unpadded) env steps in the batch."""
        return int(self.mask.sum().item())

    @property
    def columns_per_task(self) -> int:
        """Columns per task: episodes for the MAML family, whole trials (of the sampler's
        `episodes_per_trial` episodes each) for RL²."""
        return self.task_index.shape[0] // len(self.tasks)

    def episode_returns(self) -> Tensor:
        """Undiscounted return of every episode, column by column in time order [num_episodes]."""
        return self._per_episode(self.rewards.double(), torch.Tensor.index_add_)

    def episode_successes(self) -> Tensor | None:
        """Whether every episode succeeded, 1.0 or 0.0 in `episode_returns`' order: an episode
        succeeds if `info["success"]` was set at any of its steps (Meta-World's definition).
        None where the env reports no success."""
        if self.successes is None:
            return None
        return self._per_episode(self.successes.double(), _index_max_)

    def _per_episode(self, values: Tensor, reduce: Any) -> Tensor:
        """`reduce(out, 0, episode_id, values)` over the real steps of every episode, column by
        column in time order [num_episodes] float64."""
        episode_id = torch.cumsum(self.dones.T.flatten().long(), 0) - self.dones.T.flatten().long()
        valid = self.mask.T.flatten().bool()
        count = int(self.dones.sum().item())
        out = torch.zeros(count or 1, dtype=torch.float64, device=self.rewards.device)
        reduce(out, 0, episode_id[valid], values.T.flatten()[valid])
        return out[:count]

    @classmethod
    def concat_columns(cls, parts: list[Episodes], tasks: list[Task]) -> Episodes:
        """One batch of the columns of `parts` side by side, in order, each part's time axis
        padded with zeros to the longest (a column's steps past its end are padding anyway):
        the batch that the parts' slices of columns make together. `tasks` is the whole
        batch's (the parts' `task_index` number into it)."""
        steps = max(part.mask.shape[0] for part in parts)

        def joined(name: str) -> Tensor:
            tensors = []
            for part in parts:
                value = getattr(part, name)
                if value is None:  # successes that this part's env steps never reported
                    value = torch.zeros_like(part.dones)
                pad = steps - value.shape[0]
                if pad:
                    value = torch.cat([value, value.new_zeros(pad, *value.shape[1:])])
                tensors.append(value)
            return torch.cat(tensors, dim=1)

        names = ("observations", "actions", "rewards", "log_probs", "dones", "terminated", "mask")
        reported = any(part.successes is not None for part in parts)
        return cls(
            **{name: joined(name) for name in names},
            task_index=torch.cat([part.task_index for part in parts]),
            tasks=list(tasks),
            successes=joined("successes") if reported else None,
        )

    def to(self, device: torch.device) -> Episodes:
        """The batch with its tensors on `device` (the update's; the sampler's are the CPU's),
        itself where they are there already."""
        if self.mask.device == device:
            return self
        moved = {
            name: value.to(device) if isinstance(value, Tensor) else value  # None stays None
            for name, value in vars(self).items()
        }
        return Episodes(**moved)

    def previous_step_inputs(self) -> tuple[Tensor, Tensor, Tensor]:
        """(previous action, reward, done) for every step, the RL² policy inputs; zeros at t = 0.

        The previous step is within the same column, so across episodes of one trial the first
        step of an episode sees the last action, reward and done = 1 of the episode before.
        """
        prev_actions = torch.zeros_like(self.actions)
        prev_actions[1:] = self.actions[:-1]
        prev_rewards = torch.zeros_like(self.rewards)
        prev_rewards[1:] = self.rewards[:-1]
        prev_dones = torch.zeros_like(self.rewards)
        prev_dones[1:] = self.dones[:-1].float()
        return prev_actions, prev_rewards, prev_dones


def _index_max_(out: Tensor, dim: int, index: Tensor, values: Tensor) -> Tensor:
    """`out[index[i]] = max(out[index[i]], values[i])` in place (`index_add_`'s signature)."""
    return out.index_reduce_(dim, index, values, "amax")


class EpisodeOutcomes(NamedTuple):
    """What an evaluation measures of episodes, in one shape (e.g. [adapt steps + 1, tasks] or
    [episodes, tasks]): their mean returns, and their success rates where the env reports
    success (Meta-World), else None."""

    returns: Tensor
    successes: Tensor | None
