"""A ring buffer of whole trials (VariBAD's VAE buffer): the most recent `capacity` trials, each
padded to the longest trial the sampler can run, drawn from uniformly as `Episodes`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import Tensor

from metarl.sampling.episodes import Episodes

FIELDS = ("observations", "actions", "rewards", "dones", "mask")
"""What a trial keeps: the ELBO needs states, actions, rewards, episode ends and real steps."""


class TrialBuffer:
    """`capacity` trials of up to `steps` steps, time-major like `Episodes` (`[steps, capacity]`),
    the oldest overwritten first; on the CPU."""

    def __init__(
        self, capacity: int, steps: int, observation_space: gym.Space, action_space: gym.Space
    ) -> None:
        """Zeroed storage for the spaces' observations and actions."""
        discrete = isinstance(action_space, gym.spaces.Discrete)
        self.capacity, self.steps = capacity, steps
        self.data: dict[str, Tensor] = {
            "observations": torch.zeros(steps, capacity, *observation_space.shape),
            "actions": torch.zeros(
                steps,
                capacity,
                *(() if discrete else action_space.shape),
                dtype=torch.int64 if discrete else torch.float32,
            ),
            "rewards": torch.zeros(steps, capacity),
            "dones": torch.zeros(steps, capacity, dtype=torch.bool),
            "mask": torch.zeros(steps, capacity),
        }
        self.next = 0  # the slot the next trial goes to
        self.size = 0  # trials held

    def add(self, episodes: Episodes) -> None:
        """Every column of `episodes` (a trial each), padded to `steps`."""
        count, length = episodes.mask.shape[1], episodes.mask.shape[0]
        slots = (self.next + torch.arange(count)) % self.capacity
        for name in FIELDS:
            value = getattr(episodes, name).cpu()
            self.data[name][:, slots] = 0
            self.data[name][:length, slots] = value.to(self.data[name].dtype)
        self.next = int((self.next + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def sample(self, count: int, generator: torch.Generator) -> Episodes:
        """`count` trials drawn uniformly with replacement, as `Episodes` (no log-probs or
        tasks), trimmed to the longest of them."""
        if not self.size:
            raise ValueError("the trial buffer is empty: add trials before sampling")
        slots = torch.randint(self.size, (count,), generator=generator)
        picked = {name: self.data[name][:, slots] for name in FIELDS}
        length = int(picked["mask"].sum(0).max())
        picked = {name: value[:length] for name, value in picked.items()}
        return Episodes(
            **picked,
            log_probs=torch.zeros(length, count),
            terminated=torch.zeros(length, count, dtype=torch.bool),
            task_index=torch.arange(count),
            tasks=[],
        )

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the storage and the ring's position."""
        return {
            "data": {name: value[:, : self.size].clone() for name, value in self.data.items()},
            "next": self.next,
            "size": self.size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.next, self.size = state["next"], state["size"]
        for name, value in state["data"].items():
            self.data[name].zero_()
            self.data[name][:, : self.size] = value
