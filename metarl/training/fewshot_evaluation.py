"""Held-out evaluation of a few-shot run (issue 19): query loss (and accuracy) after 0, 1, … K
inner steps for the gradient learners, or for K shots for the metric learners, each with its
95% confidence interval over held-out tasks, beside the train-from-scratch baseline on the very
same tasks.

The tasks come from the distribution's `test` split (held-out classes for classification) and
a generator of their own, seeded `seed + HELD_OUT_SEED_OFFSET` unless told, so evaluating never
changes training and every learner of a seed meets the same tasks.
"""

from __future__ import annotations

from typing import Any

import torch

from metarl.fewshot.parts.problem import QueryOutcomes
from metarl.fewshot.scratch import scratch_key, scratch_outcomes
from metarl.sampling.sampler import torch_threads
from metarl.training.evaluation import mean_ci95

CHUNK_TASKS = 50
"""Tasks adapted at once: bounds the activations of a conv net on hundreds of tasks (a task's
result does not depend on its chunk)."""


def fewshot_summary(
    agent: Any,
    num_tasks: int,
    adapt_steps: int,
    seed: int,
    shots: int | None,
    *,
    scratch: bool = True,
    reuse: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluation of the restored learner `agent` on `num_tasks` held-out tasks of `shots`
    shots (default: the training value) drawn with `seed`, and of the scratch baseline on the
    same tasks unless `scratch` is False. `reuse` is another evaluation's scratch curve: taken
    as this one's when its `key` matches (`scratch_key`: same tasks, network, initialization
    and training), a one-line `ValueError` when it does not."""
    problem = agent.problem
    shots = shots or agent.config.shots
    generator = torch.Generator().manual_seed(seed)
    batch = problem.sample(num_tasks, shots=shots, generator=generator, split="test")
    key = scratch_key(problem, batch, seed) if scratch else None
    if reuse is not None and reuse.get("key") != key:
        raise ValueError(
            "that scratch baseline was trained on other tasks or another network (its key "
            "differs: tasks, shots, task seed, backbone and scratch settings must all match)"
        )
    compute_scratch = scratch and reuse is None
    by_steps = getattr(agent, "adaptation", "steps") == "steps"
    steps = adapt_steps if by_steps else 0
    learner, baseline = [], []
    with torch_threads(agent.config.threads):
        for start in range(0, num_tasks, CHUNK_TASKS):
            chunk = batch.select(slice(start, start + CHUNK_TASKS))
            learner.append(agent.query_outcomes(chunk, steps))
            if compute_scratch:
                baseline.append(scratch_outcomes(problem, chunk, seed))
    result = {
        "axis": "adapt_steps" if by_steps else "shots",
        # a metric learner's x-axis is its shots: one point, as a list like adapt_steps
        "shots": shots if by_steps else [shots],
        "support_examples": batch.support_y.shape[1],
        "queries": agent.config.queries,
        **_curve(_joined(learner)),
    }
    if by_steps:
        result["adapt_steps"] = list(range(steps + 1))
    if scratch:
        result["scratch"] = reuse if reuse is not None else _curve(_joined(baseline)) | {"key": key}
    return result


def _joined(parts: list[QueryOutcomes]) -> QueryOutcomes:
    """The outcomes of the chunks, side by side on the task axis."""
    accuracies = None
    if parts[0].accuracies is not None:
        accuracies = torch.cat([p.accuracies for p in parts], 1)
    return QueryOutcomes(torch.cat([p.losses for p in parts], 1), accuracies)


def _curve(outcomes: QueryOutcomes) -> dict[str, list[float]]:
    """Mean query loss (and accuracy) at each point with their 95% CIs."""
    mean, ci = mean_ci95(outcomes.losses)
    curve = {"mean_loss": mean.tolist(), "loss_ci95": ci.tolist()}
    if outcomes.accuracies is not None:
        mean, ci = mean_ci95(outcomes.accuracies)
        curve |= {"mean_accuracy": mean.tolist(), "accuracy_ci95": ci.tolist()}
    return curve
