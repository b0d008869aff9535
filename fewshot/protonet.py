"""Prototypical Networks for few-shot classification (Snell et al. 2017, "Prototypical Networks for
Few-shot Learning", Algorithm 1).

An embedding network f (the headless backbone) is meta-trained so that, in each task, a query
lies nearest the mean embedding of its own class's support examples. One meta-iteration, for a
meta-batch of tasks, every task at once:
1. embed: f(x) of each task's support and query examples;
2. prototypes: c_k = mean of f(x_i) over the support examples of class k (eq. 1);
3. classify: p(y = k | x) = softmax_k(−d(f(x), c_k)) with d the squared Euclidean distance
   (eq. 2), or, with `distance` 'cosine', the logits are the cosine similarities (the variant
   Snell et al. compare against in §2.7 and find worse);
4. meta-update: f ← Adam(f, ∇ mean cross-entropy of the query examples).

Adaptation to a task is the prototypes alone, so evaluation has one point whatever the number of
inner steps asked. Batch norm keeps no running statistics (`metarl.fewshot.parts.networks`) and
each task's support and query examples are embedded in one call of their own, so a task is
normalized with its own examples' statistics (transductively, as MAML's official code does),
never mixed with another task's; Snell et al. embed support and query in one batch per episode
too, but with running statistics at test time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.agents.parts.checks import check_choice
from metarl.backend.adaptation import repeat_for_tasks
from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data import resolve_task_id
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import FewShotConfig
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite, stack_outcomes
from metarl.policies.functional import parameters

DISTANCES = ("euclidean", "cosine")
"""The values of the `distance` key."""


@dataclass
class ProtoNetConfig(FewShotConfig):
    """Prototypical Networks' settings on top of the shared ones."""

    distance: str = "euclidean"
    """How a query is compared with a prototype: 'euclidean' (logits −‖f(x) − c_k‖², the
    paper's choice) or 'cosine' (logits cos(f(x), c_k))."""

    def __post_init__(self) -> None:
        """Check the shared fields, then the distance."""
        FewShotConfig.__post_init__(self)
        check_choice("distance", self.distance, DISTANCES)


def require_classification(name: str, env: str, problem: FewShotProblem) -> None:
    """Raise the one-line `ValueError` of a metric learner (`name`) built on a regression task
    distribution (`env`, named by its full id): prototypes and attention over labels need
    classes."""
    if not problem.classification:
        raise ValueError(
            f"{name} needs a classification task distribution (digits, images), "
            f"got {resolve_task_id(env)}"
        )


def embed_tasks(network: nn.Module, batch: FewShotBatch) -> tuple[Tensor, Tensor]:
    """The embeddings `[n, S, d]` and `[n, Q, d]` of each task's support and query examples,
    each task's examples in one call of their own (so batch norm normalizes a task with its own
    examples' statistics), every task at once."""
    support = batch.support_x.shape[1]
    inputs = torch.cat([batch.support_x, batch.query_x], dim=1)
    stacked = repeat_for_tasks(parameters(network), batch.num_tasks)
    embeddings = batched_call(network, stacked, inputs)
    return embeddings[:, :support], embeddings[:, support:]


def prototypes(embeddings: Tensor, labels: Tensor, ways: int) -> Tensor:
    """c_k = the mean embedding of class k's support examples, for each task: `embeddings`
    `[n, S, d]`, `labels` `[n, S]` in [0, ways) → `[n, ways, d]` (a class without examples gets
    the zero vector)."""
    one_hot = F.one_hot(labels, ways).to(embeddings.dtype)  # [n, S, ways]
    sums = one_hot.transpose(1, 2) @ embeddings  # [n, ways, d]
    counts = one_hot.sum(1).unsqueeze(-1)  # [n, ways, 1]
    return sums / counts.clamp_min(1)


def squared_distances(queries: Tensor, prototypes: Tensor) -> Tensor:
    """‖q − c_k‖² of each query to each prototype of its task: `queries` `[n, Q, d]`,
    `prototypes` `[n, ways, d]` → `[n, Q, ways]` (computed from the differences, not from
    ‖q‖² − 2 q·c + ‖c‖², which loses precision for nearby points)."""
    return (queries.unsqueeze(2) - prototypes.unsqueeze(1)).square().sum(-1)


def cosine_similarities(queries: Tensor, prototypes: Tensor) -> Tensor:
    """cos(q, c_k) of each query to each prototype of its task: `[n, Q, d]`, `[n, ways, d]` →
    `[n, Q, ways]`."""
    return F.normalize(queries, dim=-1) @ F.normalize(prototypes, dim=-1).transpose(1, 2)


class ProtoNet(FewShotLearner):
    """An embedding meta-trained so that each query is nearest its class's prototype, the mean
    support embedding of the class."""

    adaptation = "shots"
    """Evaluated for K shots (the support set is the adaptation), not after gradient steps."""

    def __init__(
        self, env: str, config: ProtoNetConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The classification task distribution `env` (a `metarl.fewshot.data` name) with
        `env_kwargs`, the embedding network and its optimizer; a regression distribution is a
        one-line `ValueError`."""
        self.config = cfg = config
        self.problem = FewShotProblem(env, cfg, env_kwargs)
        require_classification("protonet", env, self.problem)
        self.network = self.problem.network(head=False)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.outer_lr)
        self.progress: Progress = SILENT

    def logits(self, batch: FewShotBatch) -> Tensor:
        """Each query's logits `[n, Q, ways]` over its task's prototypes: −squared distances
        (or cosine similarities)."""
        support, queries = embed_tasks(self.network, batch)
        centres = prototypes(support, batch.support_y, self.problem.tasks.output_size)
        if self.config.distance == "cosine":
            return cosine_similarities(queries, centres)
        return -squared_distances(queries, centres)

    def train_step(self) -> dict[str, float]:
        """One meta-update on a meta-batch of training tasks; the query loss and accuracy (of the
        prototypes, which are the adaptation: there is no "before")."""
        batch = self.problem.sample()
        logits = self.logits(batch)
        meta_loss = self.problem.losses(logits, batch.query_y).mean()
        self.optimizer.zero_grad()
        meta_loss.backward()
        self.optimizer.step()
        return finite(
            {
                "examples": self.problem.examples(batch),
                **self.problem.metrics("post", logits.detach(), batch.query_y),
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss and accuracy: one point, whatever `steps` (the prototypes of
        the support set are the whole adaptation)."""
        with torch.no_grad():
            logits = self.logits(batch)
        return stack_outcomes([self.problem.outcome(logits, batch.query_y)])

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {"network": self.network, "optimizer": self.optimizer, "problem": self.problem}
