"""The 'pretrained' baseline of Finn et al. 2017 (§5.1, Fig. 2): one network trained on the
examples of all tasks pooled, with no adaptation in training, then fine-tuned at test time by
the same SGD steps on the support set that MAML takes. It shows what meta-training adds over
plain multi-task pretraining: on the sinusoid it learns the mean function (≈ 0), and a few
steps from there fit a new sinusoid poorly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import GradientConfig
from metarl.fewshot.parts.finetune import finetune_outcomes
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite


@dataclass
class PretrainedConfig(GradientConfig):
    """The baseline's settings: `inner_lr` is the step size of its fine-tuning at test time
    (`num_inner_steps` is not used in training)."""


class Pretrained(FewShotLearner):
    """A network fit by Adam to the pooled examples of each meta-batch of tasks."""

    def __init__(
        self, env: str, config: PretrainedConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The task distribution `env` with `env_kwargs`, the network and its optimizer."""
        self.config = config
        self.problem = FewShotProblem(env, config, env_kwargs)
        self.network = self.problem.network()
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.outer_lr)
        self.progress: Progress = SILENT

    def train_step(self) -> dict[str, float]:
        """One Adam step on the support and query examples of a meta-batch of tasks, pooled;
        the query loss (and accuracy) before the step."""
        batch = self.problem.sample()
        inputs = torch.cat([batch.support_x, batch.query_x], 1)
        targets = torch.cat([batch.support_y, batch.query_y], 1)
        outputs = self.network(inputs.flatten(0, 1)).unflatten(0, inputs.shape[:2])
        loss = self.problem.losses(outputs, targets).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        query = outputs[:, batch.support_x.shape[1] :].detach()
        return finite(
            {
                "examples": self.problem.examples(batch),
                **self.problem.metrics("pre", query, batch.query_y),
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss (and accuracy) after 0, 1, … `steps` fine-tuning SGD steps."""
        lr = self.config.inner_lr
        return finetune_outcomes(self.network, self.problem, batch, steps, lambda name: lr)

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {"network": self.network, "optimizer": self.optimizer, "problem": self.problem}
