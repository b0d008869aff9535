"""Reptile for supervised few-shot learning (Nichol, Achiam & Schulman 2018, "On First-Order
Meta-Learning Algorithms", Algorithm 2, the batched version).

One meta-iteration, for a meta-batch of tasks T_i: starting from θ, take `num_inner_steps` SGD
steps on each task's support set (every task at once, `adapt_stages`), giving φ_i; then move θ
toward the adapted weights, θ ← θ + ε · mean_i(φ_i − θ). No second derivatives and no query loss
enter the update: the query set only measures the iteration. ε (`outer_lr`) decays linearly to 0
over the run where `anneal` (as in the paper and its sinusoid code), so the last iterations
average rather than chase single batches.

Deviation: the paper's few-shot classification runs take the inner steps with Adam (β1 = 0) on
mini-batches; here they are full-batch SGD on the support set, as in its sinusoid experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metarl.agents.parts.checks import check_bool, check_optional_int
from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import GradientConfig
from metarl.fewshot.parts.finetune import adapt_stages, finetune_outcomes
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite
from metarl.policies.functional import parameters


@dataclass
class ReptileConfig(GradientConfig):
    """Reptile's settings (defaults: the paper's sinusoid code's inner SGD, 0.02, and the outer
    ε of its batched runs, 1.0, annealed to 0)."""

    inner_lr: float = 0.02
    """Step size of the inner SGD steps, >= 0."""
    num_inner_steps: int = 5
    """Inner SGD steps per task, >= 1."""
    outer_lr: float = 1.0
    """ε, the fraction of the way θ moves toward the mean adapted weights, > 0. The paper's
    sinusoid code moves 0.1 of the way toward one task's weights; the mean over a meta-batch of
    25 tasks varies far less, and 1.0 (the paper's value for its batched classification runs)
    reached 1.13 after one step on the sinusoid in 2000 iterations, against 2.33 with 0.1."""
    anneal: bool = True
    """Decay ε linearly from `outer_lr` to 0 over `iterations`."""
    train_shots: int | None = None
    """Examples per class (per task, for regression) the inner steps train on during
    meta-training, >= 1; None trains on `shots`, as evaluation adapts. The paper's code trains
    on more shots than it tests with (`--train-shots 10` in its 1-shot Omniglot command):
    Reptile has no support/query split to learn across, so a meta-iteration on one example
    per class teaches the initialization little."""

    def __post_init__(self) -> None:
        """Check the gradient learners' fields, then Reptile's."""
        GradientConfig.__post_init__(self)
        check_bool("anneal", self.anneal)
        check_optional_int("train_shots", self.train_shots, 1, none_means="shots")


class Reptile(FewShotLearner):
    """A network θ moved, each iteration, toward the weights that SGD on a batch of tasks
    reaches from it."""

    def __init__(
        self, env: str, config: ReptileConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The task distribution `env` (a `metarl.fewshot.data` name) with `env_kwargs`, and the
        network."""
        self.config = config
        self.problem = FewShotProblem(env, config, env_kwargs)
        self.network = self.problem.network()
        self.iteration = 0
        self.progress: Progress = SILENT

    def train_step(self) -> dict[str, float]:
        """One Reptile update on a meta-batch of training tasks (`train_shots` examples per
        class to train on); the query loss (and accuracy) before and after the inner steps, and
        this iteration's ε."""
        cfg = self.config
        batch = self.problem.sample(shots=cfg.train_shots)
        theta = {name: p.detach().requires_grad_() for name, p in parameters(self.network).items()}
        stages = adapt_stages(
            self.network,
            self.problem,
            theta,
            batch,
            cfg.num_inner_steps,
            lambda name: cfg.inner_lr,
            create_graph=False,
        )
        fraction = 1 - self.iteration / cfg.iterations if cfg.anneal else 1.0
        epsilon = cfg.outer_lr * fraction
        with torch.no_grad():
            before = batched_call(self.network, stages[0], batch.query_x)
            after = batched_call(self.network, stages[-1], batch.query_x)
            for name, p in self.network.named_parameters():
                p.add_(epsilon * (stages[-1][name].mean(0) - p))
        self.iteration += 1
        return finite(
            {
                "examples": self.problem.examples(batch),
                **self.problem.metrics("pre", before, batch.query_y),
                **self.problem.metrics("post", after, batch.query_y),
                "outer_step": epsilon,
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss (and accuracy) after 0, 1, … `steps` inner SGD steps."""
        lr = self.config.inner_lr
        return finetune_outcomes(self.network, self.problem, batch, steps, lambda name: lr)

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {"network": self.network, "problem": self.problem}

    def state_dict(self) -> dict[str, Any]:
        """The parts' states and the iteration (ε's schedule)."""
        return {**FewShotLearner.state_dict(self), "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        FewShotLearner.load_state_dict(self, state)
        self.iteration = state["iteration"]
