"""The part every few-shot learner holds (as `problem`): its task distribution, its seeded
generators, its network factory and its loss (issue 19). Learners are siblings composed from it,
as the RL agents are from `metarl.agents.parts`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.agents.parts.seeding import InitRNG
from metarl.fewshot.data import make_tasks
from metarl.fewshot.data.base import FewShotBatch, Split
from metarl.fewshot.parts.config import FewShotConfig
from metarl.fewshot.parts.networks import backbone


@dataclass(frozen=True)
class QueryOutcomes:
    """Per-task query results at each point of an adaptation curve: after 0, 1, … K inner steps
    (gradient learners) or the one point of K shots (metric learners)."""

    losses: Tensor
    """Mean query loss `[points, tasks]` (MSE or cross-entropy)."""
    accuracies: Tensor | None
    """Query accuracy `[points, tasks]`; None for regression."""


class FewShotProblem:
    """The task distribution `task_id` (with `task_kwargs`), the training-task generator, the
    stream the networks are initialized from, and the loss and accuracy of the task kind."""

    def __init__(
        self, task_id: str, config: FewShotConfig, task_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Build the distribution (a bad kwarg is a one-line `ValueError`) and seed the generators
        from `config.seed`."""
        self.config = config
        self.tasks = make_tasks(task_id, dict(task_kwargs or {}))
        self.device = config.torch_device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.init = InitRNG(config.seed)

    @property
    def classification(self) -> bool:
        """Whether the tasks are classification (else regression)."""
        return self.tasks.kind == "classification"

    def network(self, head: bool = True, init: InitRNG | None = None) -> nn.Module:
        """A fresh network of the config's backbone (initialized from `init`, by default the
        learner's own stream; on the learner's device), ending in a linear layer to the task's
        outputs if `head` (the metric learners embed without one)."""
        cfg = self.config
        with init or self.init:
            body, width = backbone(
                cfg.backbone,
                self.tasks.input_shape,
                cfg.hidden_sizes,
                cfg.conv_channels,
                cfg.conv_blocks,
            )
            network = (
                nn.Sequential(body, nn.Linear(width, self.tasks.output_size)) if head else body
            )
        return network.to(self.device)

    def sample(
        self,
        num_tasks: int | None = None,
        *,
        shots: int | None = None,
        generator: torch.Generator | None = None,
        split: Split = "train",
    ) -> FewShotBatch:
        """A batch of tasks on the learner's device: by default one meta-batch of training tasks
        from the training generator, with the config's shots and queries."""
        cfg = self.config
        batch = self.tasks.sample(
            num_tasks or cfg.meta_batch_size,
            shots or cfg.shots,
            cfg.queries,
            generator or self.generator,
            split,
        )
        return batch.to(self.device)

    @staticmethod
    def examples(batch: FewShotBatch) -> int:
        """Labelled examples in `batch` (support and query): the x-axis of a few-shot run, as env
        steps are an RL run's."""
        return batch.support_y.shape[:2].numel() + batch.query_y.shape[:2].numel()

    def losses(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Each task's mean loss `[n]` of `outputs` `[n, m, outputs]` on `targets`: MSE for
        regression, cross-entropy of the logits for classification."""
        if self.classification:
            per_example = F.cross_entropy(
                outputs.flatten(0, 1), targets.flatten(), reduction="none"
            )
            return per_example.view(targets.shape).mean(1)
        return (outputs - targets).square().flatten(1).mean(1)

    def accuracies(self, outputs: Tensor, targets: Tensor) -> Tensor | None:
        """Each task's accuracy `[n]` (None for regression)."""
        if not self.classification:
            return None
        return (outputs.argmax(-1) == targets).float().mean(1)

    def outcome(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor | None]:
        """`(losses, accuracies)` of `outputs` on `targets`, detached."""
        accuracies = self.accuracies(outputs, targets)
        return self.losses(outputs, targets).detach(), accuracies

    def metrics(self, name: str, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        """`{name}_loss` (and `{name}_accuracy` for classification) averaged over the tasks."""
        losses, accuracies = self.outcome(outputs, targets)
        metrics = {f"{name}_loss": losses.mean().item()}
        if accuracies is not None:
            metrics[f"{name}_accuracy"] = accuracies.mean().item()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """The training-task generator's state (the networks are the learner's to save; the init
        stream is used only while the learner is built)."""
        return {"task_rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.generator.set_state(state["task_rng"])


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """`metrics` if every value is finite, else a `FloatingPointError` naming the first that
    is not (the trainer turns it into a one-line error that keeps the last checkpoint): a
    diverged step size gives NaN losses, never a silently wrong run."""
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"{key} is {value} (a step size too large for the task?)")
    return metrics


def stack_outcomes(points: list[tuple[Tensor, Tensor | None]]) -> QueryOutcomes:
    """`QueryOutcomes` of one `(losses, accuracies)` pair per point of the curve."""
    losses = torch.stack([loss.cpu() for loss, _ in points])
    accuracies = None
    if points[0][1] is not None:
        accuracies = torch.stack([accuracy.cpu() for _, accuracy in points])
    return QueryOutcomes(losses, accuracies)
