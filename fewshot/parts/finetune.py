"""SGD on the support set, for every task of a batch at once: the inner loop of MAML, FO-MAML,
Meta-SGD and Reptile, and how the gradient learners and the fine-tuned baselines are evaluated
(query loss after 0, 1, … K steps). Each step is the backend's `gradient_step`, the one the RL
MAML family takes."""

from __future__ import annotations

import torch
from torch import nn

from metarl.backend.adaptation import StepSize, gradient_step, repeat_for_tasks
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, stack_outcomes
from metarl.policies.functional import Params, parameters


def adapt_stages(
    network: nn.Module,
    problem: FewShotProblem,
    params: Params,
    batch: FewShotBatch,
    steps: int,
    step_size: StepSize,
    *,
    create_graph: bool,
) -> list[Params]:
    """Each task's parameters before and after each of `steps` SGD steps on its support set,
    starting from `params` (θ, shared by the tasks): `steps + 1` stacked dicts `[n, ...]`.
    `create_graph` keeps the steps differentiable through their gradients (second-order MAML)."""
    stages = [repeat_for_tasks(params, batch.num_tasks)]
    for _ in range(steps):
        outputs = batched_call(network, stages[-1], batch.support_x)
        losses = problem.losses(outputs, batch.support_y)
        stages.append(gradient_step(stages[-1], losses, step_size, create_graph=create_graph))
    return stages


def finetune_outcomes(
    network: nn.Module,
    problem: FewShotProblem,
    batch: FewShotBatch,
    steps: int,
    step_size: StepSize,
    params: Params | None = None,
) -> QueryOutcomes:
    """Query loss (and accuracy) of each task after 0, 1, … `steps` SGD steps on its support set
    from `params` (default: the network's own), without building any second-order graph."""
    params = params if params is not None else parameters(network)
    start = {k: p.detach().requires_grad_() for k, p in params.items()}
    points = []
    with torch.enable_grad():
        stacked = repeat_for_tasks(start, batch.num_tasks)
        for step in range(steps + 1):
            with torch.no_grad():
                outputs = batched_call(network, stacked, batch.query_x)
                points.append(problem.outcome(outputs, batch.query_y))
            if step < steps:
                support = batched_call(network, stacked, batch.support_x)
                losses = problem.losses(support, batch.support_y)
                stepped = gradient_step(stacked, losses, step_size, create_graph=False)
                stacked = {k: p.detach().requires_grad_() for k, p in stepped.items()}
    return stack_outcomes(points)
