"""MAML, FO-MAML and Meta-SGD for supervised few-shot learning (Finn et al. 2017, "Model-Agnostic
Meta-Learning for Fast Adaptation of Deep Networks", Algorithm 2; Li et al. 2017, "Meta-SGD").

One meta-iteration, for a meta-batch of tasks T_i:
1. adapt: θ'_i = θ − α ⊙ ∇_θ L_support,i(θ), `num_inner_steps` times, every task at once
   (`adapt_stages`, the backend's `gradient_step`: the RL MAML family's step);
2. meta-update: θ ← Adam(θ, ∇_θ mean_i L_query,i(θ'_i)), differentiating through the inner steps:
   exactly (second order, the default), with the inner gradient held constant (`first_order`,
   FO-MAML, §5.2), or with α meta-learned too (`learn_inner_lr`, Meta-SGD).

Meta-SGD's α is one step size per parameter entry, kept as log α so that every step size stays
positive (as in the RL Meta-SGD, `metarl.agents.parts.inner_loop`); Li et al. learn α itself,
initialized U[0.005, 0.1]. Both start here at `inner_lr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from metarl.agents.parts.checks import check_bool, config_error
from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import GradientConfig
from metarl.fewshot.parts.finetune import adapt_stages, finetune_outcomes
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite
from metarl.policies.functional import parameters


@dataclass
class MAMLConfig(GradientConfig):
    """MAML's settings on top of the gradient learners' (defaults: Finn et al. 2017's sinusoid:
    K = 10, α = 0.01, one inner step, meta-batch 25, Adam 1e-3)."""

    first_order: bool = False
    """FO-MAML: hold the inner gradient constant in the meta-gradient (no second derivatives)."""
    learn_inner_lr: bool = False
    """Meta-SGD: meta-learn one inner step size per parameter entry, α = exp(log α), from
    `inner_lr`."""

    def __post_init__(self) -> None:
        """Check the gradient learners' fields, then MAML's."""
        GradientConfig.__post_init__(self)
        check_bool("first_order", self.first_order)
        check_bool("learn_inner_lr", self.learn_inner_lr)
        if self.learn_inner_lr and self.inner_lr == 0:
            requirement = "be > 0 with learn_inner_lr (Meta-SGD meta-learns its log)"
            raise config_error("inner_lr", requirement, self.inner_lr)


class MAML(FewShotLearner):
    """A network θ (and Meta-SGD's log α) meta-trained so that a few SGD steps on a task's
    support set fit the task."""

    def __init__(
        self, env: str, config: MAMLConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The task distribution `env` (a `metarl.fewshot.data` name) with `env_kwargs`, the
        network, Meta-SGD's step sizes and the meta-optimizer."""
        self.config = cfg = config
        self.problem = FewShotProblem(env, cfg, env_kwargs)
        self.network = self.problem.network()
        self.log_step_sizes = {
            name: torch.full_like(p, math.log(cfg.inner_lr) if cfg.inner_lr > 0 else 0.0)
            for name, p in self.network.named_parameters()
        }
        meta_parameters = list(self.network.parameters())
        if cfg.learn_inner_lr:
            for log_lr in self.log_step_sizes.values():
                log_lr.requires_grad_()
            meta_parameters += list(self.log_step_sizes.values())
        self.optimizer = torch.optim.Adam(meta_parameters, lr=cfg.outer_lr)
        self.progress: Progress = SILENT

    def step_size(self, name: str) -> Tensor | float:
        """α of the parameter `name`: exp(log α) (Meta-SGD, differentiable) or `inner_lr`."""
        if self.config.learn_inner_lr:
            return self.log_step_sizes[name].exp()
        return self.config.inner_lr

    def train_step(self) -> dict[str, float]:
        """One meta-update on a meta-batch of training tasks; the query loss (and accuracy)
        before and after adaptation."""
        cfg = self.config
        batch = self.problem.sample()
        stages = adapt_stages(
            self.network,
            self.problem,
            parameters(self.network),
            batch,
            cfg.num_inner_steps,
            self.step_size,
            create_graph=not cfg.first_order,
        )
        outputs = batched_call(self.network, stages[-1], batch.query_x)
        meta_loss = self.problem.losses(outputs, batch.query_y).mean()
        with torch.no_grad():  # before the step: stages[0] is a view of θ
            before = batched_call(self.network, stages[0], batch.query_x)
        self.optimizer.zero_grad()
        meta_loss.backward()
        self.optimizer.step()
        return finite(
            {
                "examples": self.problem.examples(batch),
                **self.problem.metrics("pre", before, batch.query_y),
                **self.problem.metrics("post", outputs.detach(), batch.query_y),
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss (and accuracy) after 0, 1, … `steps` inner steps."""
        step_sizes = {name: self.step_size(name) for name in self.log_step_sizes}
        fixed = {k: v.detach() if isinstance(v, Tensor) else v for k, v in step_sizes.items()}
        return finetune_outcomes(self.network, self.problem, batch, steps, fixed.__getitem__)

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {"network": self.network, "optimizer": self.optimizer, "problem": self.problem}

    def state_dict(self) -> dict[str, Any]:
        """The parts' states and Meta-SGD's log step sizes."""
        log_step_sizes = {k: v.detach().clone() for k, v in self.log_step_sizes.items()}
        return {**FewShotLearner.state_dict(self), "log_step_sizes": log_step_sizes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        FewShotLearner.load_state_dict(self, state)
        with torch.no_grad():
            for name, log_lr in self.log_step_sizes.items():
                log_lr.copy_(state["log_step_sizes"][name])
