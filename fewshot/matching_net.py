"""Matching Networks for few-shot classification (Vinyals et al. 2016, "Matching Networks for One
Shot Learning", §2), without full context embeddings.

A query's label distribution is an attention-weighted vote of its task's support labels:
ŷ = Σ_i a(x̂, x_i) y_i (eq. 1) with one-hot y_i and the attention a(x̂, x_i) =
softmax_i(cos(f(x̂), g(x_i))) (eq. 2). One meta-iteration, for a meta-batch of tasks, every task
at once: embed each task's support and query examples, attend, and take an Adam step on the mean
negative log-likelihood −log ŷ[y] of the query labels (log ŷ clamped at `LOG_FLOOR`: a guard
only, as a cosine in [−1, 1] leaves every class with support examples some attention). Query
accuracy is that of argmax ŷ.

Deviation from the paper: no full context embeddings (§2.1.2, the bidirectional LSTM g and the
attention LSTM f over the support set); f = g is the headless backbone applied to each example
alone, as in the paper's "Matching Nets" rows without "FCE". As in the paper the cosine carries no
temperature, so a query's attention, and hence ŷ, can never be one-hot: the loss has a floor
above zero even for perfect embeddings. Batch norm and the embedding of each task on its own are
as in `metarl.fewshot.protonet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import FewShotConfig
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite, stack_outcomes
from metarl.fewshot.protonet import embed_tasks, require_classification

LOG_FLOOR = math.log(1e-8)
"""The least value of log ŷ: the loss of a query whose class gets no attention at all."""


@dataclass
class MatchingNetConfig(FewShotConfig):
    """Matching Networks' settings: the shared ones (the network is the backbone, headless)."""


def attention(queries: Tensor, supports: Tensor) -> Tensor:
    """a(x̂, x_i) = softmax over the support examples i of cos(f(x̂), g(x_i)), for each query of
    each task: `queries` `[n, Q, d]`, `supports` `[n, S, d]` → `[n, Q, S]`, each row summing
    to 1."""
    cosines = F.normalize(queries, dim=-1) @ F.normalize(supports, dim=-1).transpose(1, 2)
    return cosines.softmax(-1)


def label_distribution(attention: Tensor, labels: Tensor, ways: int) -> Tensor:
    """ŷ = Σ_i a(x̂, x_i) y_i with y_i one-hot: `attention` `[n, Q, S]`, support `labels`
    `[n, S]` in [0, ways) → `[n, Q, ways]`, each row a distribution over the classes."""
    return attention @ F.one_hot(labels, ways).to(attention.dtype)


def log_likelihoods(distribution: Tensor) -> Tensor:
    """log ŷ, clamped below at `LOG_FLOOR` (a class without support examples would give −∞)."""
    return distribution.log().clamp_min(LOG_FLOOR)


def nll(log_probs: Tensor, labels: Tensor) -> Tensor:
    """Each task's mean negative log-likelihood `[n]` of its query `labels` `[n, Q]` under
    `log_probs` `[n, Q, ways]`."""
    return -log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(1)


class MatchingNet(FewShotLearner):
    """An embedding meta-trained so that attention over a task's support examples, by cosine
    similarity, votes for each query's label."""

    adaptation = "shots"
    """Evaluated for K shots (the support set is the adaptation), not after gradient steps."""

    def __init__(
        self, env: str, config: MatchingNetConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The classification task distribution `env` (a `metarl.fewshot.data` name) with
        `env_kwargs`, the embedding network and its optimizer; a regression distribution is a
        one-line `ValueError`."""
        self.config = cfg = config
        self.problem = FewShotProblem(env, cfg, env_kwargs)
        require_classification("matching_net", env, self.problem)
        self.network = self.problem.network(head=False)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.outer_lr)
        self.progress: Progress = SILENT

    def log_probs(self, batch: FewShotBatch) -> Tensor:
        """log ŷ `[n, Q, ways]` of each query of each task (clamped at `LOG_FLOOR`)."""
        support, queries = embed_tasks(self.network, batch)
        weights = attention(queries, support)
        ways = self.problem.tasks.output_size
        return log_likelihoods(label_distribution(weights, batch.support_y, ways))

    def train_step(self) -> dict[str, float]:
        """One meta-update on a meta-batch of training tasks; the query loss (NLL) and accuracy
        (attention over the support set is the adaptation: there is no "before")."""
        batch = self.problem.sample()
        log_probs = self.log_probs(batch)
        losses = nll(log_probs, batch.query_y)
        self.optimizer.zero_grad()
        losses.mean().backward()
        self.optimizer.step()
        accuracies = self.problem.accuracies(log_probs.detach(), batch.query_y)
        return finite(
            {
                "examples": self.problem.examples(batch),
                "post_loss": losses.detach().mean().item(),
                "post_accuracy": accuracies.mean().item(),
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss (NLL) and accuracy: one point, whatever `steps`."""
        with torch.no_grad():
            log_probs = self.log_probs(batch)
            losses = nll(log_probs, batch.query_y)
        return stack_outcomes([(losses, self.problem.accuracies(log_probs, batch.query_y))])

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {"network": self.network, "optimizer": self.optimizer, "problem": self.problem}
