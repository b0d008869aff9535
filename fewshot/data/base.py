"""What every few-shot task distribution offers (issue 19): batches of tasks, each a support set
to adapt on and a query set to be measured on, drawn from a `torch.Generator` the caller owns.

Shapes are task-major: `[n, S, *input_shape]` for the support inputs of n tasks of S examples
each. Classification labels are `int64` in [0, ways), relabelled at random per task so that no
class keeps a fixed output unit (a learner must adapt to know which unit is which); regression
targets are `float32` `[n, S, 1]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

Split = Literal["train", "test"]
"""Which part of the distribution tasks come from: `train` (meta-training) or `test` (held out:
disjoint classes for classification; the same distribution, drawn from another generator, for
regression, as in Finn et al. 2017)."""

SPLITS: tuple[Split, ...] = ("train", "test")


@dataclass(frozen=True)
class FewShotBatch:
    """n tasks' support and query sets."""

    support_x: Tensor
    """Support inputs `[n, S, *input_shape]`, float32."""
    support_y: Tensor
    """Support targets: `[n, S]` int64 labels, or `[n, S, 1]` float32 regression targets."""
    query_x: Tensor
    """Query inputs `[n, Q, *input_shape]`, float32."""
    query_y: Tensor
    """Query targets, as `support_y`."""

    @property
    def num_tasks(self) -> int:
        """n, the leading axis."""
        return self.support_x.shape[0]

    def to(self, device: torch.device) -> FewShotBatch:
        """The batch on `device`."""
        return FewShotBatch(
            *(t.to(device) for t in (self.support_x, self.support_y, self.query_x, self.query_y))
        )

    def select(self, tasks: slice) -> FewShotBatch:
        """The tasks `tasks` of the batch (evaluation runs many tasks in chunks)."""
        return FewShotBatch(
            self.support_x[tasks], self.support_y[tasks], self.query_x[tasks], self.query_y[tasks]
        )


class TaskDistribution(Protocol):
    """A few-shot task distribution: its kind, shapes, and batches of tasks."""

    kind: Literal["regression", "classification"]
    """Regression (MSE loss) or classification (cross-entropy loss, accuracy)."""
    input_shape: tuple[int, ...]
    """Shape of one input: `(1,)` for the sinusoid, `(C, H, W)` for images."""
    output_size: int
    """Outputs of the network: 1 for regression, `ways` for classification."""

    def sample(
        self, num_tasks: int, shots: int, queries: int, generator: torch.Generator, split: Split
    ) -> FewShotBatch:
        """`num_tasks` tasks of `split`, with `shots` support and `queries` query examples per
        class (classification: S = ways × shots) or per task (regression: S = shots), all drawn
        from `generator`: the same generator state gives the same batch."""
