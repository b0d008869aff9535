"""Sinusoid regression (Finn et al. 2017, §5.1), the few-shot benchmark MAML was shown on: each
task is a sine y = A·sin(x − φ) of amplitude A ~ U[0.1, 5.0] and phase φ ~ U[0, π], seen at
inputs x ~ U[−5, 5]. A learner sees K points of one curve and must predict the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from metarl.fewshot.data.base import FewShotBatch, Split
from metarl.fewshot.data.checks import check_interval, check_sample


class Sinusoid:
    """Sine-wave regression tasks; every draw is vectorized over tasks and comes from the
    caller's generator. Both splits are the same distribution: held-out tasks differ from
    training ones by the generator they are drawn from (as in Finn et al. 2017)."""

    kind: Literal["regression"] = "regression"
    """Regression: the learners take the MSE loss."""
    input_shape: tuple[int, ...] = (1,)
    """One input, x."""
    output_size: int = 1
    """One output, y."""

    def __init__(
        self,
        *,
        amplitude_range: Sequence[float] = (0.1, 5.0),
        phase_range: Sequence[float] = (0.0, math.pi),
        x_range: Sequence[float] = (-5.0, 5.0),
    ) -> None:
        """The distribution with A ~ U[amplitude_range], φ ~ U[phase_range], x ~ U[x_range]
        (each a pair low < high of finite numbers; a bad one is a one-line `ValueError`)."""
        self.amplitude_range = check_interval("amplitude_range", amplitude_range)
        """Support (low, high) of the amplitude A."""
        self.phase_range = check_interval("phase_range", phase_range)
        """Support (low, high) of the phase φ."""
        self.x_range = check_interval("x_range", x_range)
        """Support (low, high) of the inputs x."""

    def sample(
        self, num_tasks: int, shots: int, queries: int, generator: torch.Generator, split: Split
    ) -> FewShotBatch:
        """`num_tasks` tasks of `shots` support and `queries` query points each (the
        `TaskDistribution` contract); `sample_with_params` without the parameters."""
        return self.sample_with_params(num_tasks, shots, queries, generator, split)[0]

    def sample_with_params(
        self, num_tasks: int, shots: int, queries: int, generator: torch.Generator, split: Split
    ) -> tuple[FewShotBatch, Tensor, Tensor]:
        """`(batch, amplitudes [n], phases [n])`: the batch `sample` gives, with each task's A
        and φ, so that a plot can draw the true curve (`targets`) under a learner's fit."""
        num_tasks, shots, queries, _ = check_sample(num_tasks, shots, queries, generator, split)
        amplitudes = _uniform(self.amplitude_range, (num_tasks,), generator)
        phases = _uniform(self.phase_range, (num_tasks,), generator)
        x = _uniform(self.x_range, (num_tasks, shots + queries, 1), generator)
        y = self.targets(x, amplitudes, phases)
        parts = (t.contiguous() for t in (x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:]))
        batch = FewShotBatch(*parts)
        return batch, amplitudes, phases

    @staticmethod
    def targets(x: Tensor, amplitudes: Tensor, phases: Tensor) -> Tensor:
        """y = A·sin(x − φ) `[n, m, 1]` of inputs `x` `[n, m, 1]` for the tasks of `amplitudes`
        and `phases` `[n]`."""
        return amplitudes[:, None, None] * torch.sin(x - phases[:, None, None])


def _uniform(
    bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator
) -> Tensor:
    """float32 draws of U[low, high) of `shape` from `generator` (on the generator's device)."""
    low, high = bounds
    draws = torch.rand(shape, generator=generator, device=generator.device)
    return low + (high - low) * draws
