"""`Episodes`: a batch of rollouts as time-major tensors, the sampler's output
(docs/architecture.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

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
        episode_id = torch.cumsum(self.dones.T.flatten().long(), 0) - self.dones.T.flatten().long()
        valid = self.mask.T.flatten().bool()
        count = int(self.dones.sum().item())
        sums = torch.zeros(count or 1, dtype=torch.float64, device=self.rewards.device)
        rewards = self.rewards.T.flatten().double()
        sums.index_add_(0, episode_id[valid], rewards[valid])
        return sums[:count]

    def to(self, device: torch.device) -> Episodes:
        """The batch with its tensors on `device` (the update's; the sampler's are the CPU's),
        itself where they are there already."""
        if self.mask.device == device:
            return self
        moved = {
            name: value.to(device) if isinstance(value, Tensor) else value
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
