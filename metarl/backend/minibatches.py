"""Shuffled minibatch indices for the first-order updates (PPO's, RL²-PPO's, the recurrent value
function's fit): one permutation per epoch from the caller's own generator, so that a seeded
agent draws the same minibatches on every device and after a resume."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def minibatches(
    count: int, size: int, epochs: int, generator: torch.Generator, device: torch.device | str
) -> Iterator[Tensor]:
    """`epochs` passes over the indices 0..count − 1, each a fresh permutation drawn from
    `generator` (on the CPU) and split into minibatches of `size` (the last may be smaller),
    yielded on `device`."""
    for _ in range(epochs):
        yield from torch.randperm(count, generator=generator).to(device).split(size)
