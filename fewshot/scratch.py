"""The train-from-scratch baseline of every few-shot evaluation (issue 19): a freshly initialized
network of the run's architecture, trained on each task's K support examples alone and measured
on its query set. A meta-learner is worth its meta-training only where it beats this.

Every task gets its own copy of one initialization, stacked `[n, ...]`; Adam's update is
element-wise, so one `torch.optim.Adam` on the stacked tensors, stepping the summed per-task
losses, is n independent Adams, all tasks in one vmapped forward per step.
"""

from __future__ import annotations

import hashlib

import torch

from metarl.agents.parts.seeding import InitRNG
from metarl.backend.adaptation import repeat_for_tasks
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, stack_outcomes
from metarl.policies.functional import parameters

SCRATCH_STEPS = 100
"""Adam steps on the support set: enough for the small networks here to fit K examples."""
SCRATCH_LR = 1e-2
"""Adam's step size (a tenth of what fits the support sets fastest diverged on some tasks)."""


def scratch_outcomes(
    problem: FewShotProblem,
    batch: FewShotBatch,
    seed: int,
    steps: int = SCRATCH_STEPS,
    lr: float = SCRATCH_LR,
) -> QueryOutcomes:
    """Query loss (and accuracy) of each task `[1, n]` after `steps` Adam steps on its support
    set from a fresh network initialized from `seed`."""
    network = problem.network(init=InitRNG(seed))  # the evaluation's own stream
    start = repeat_for_tasks(parameters(network), batch.num_tasks)
    stacked = {name: p.detach().clone().requires_grad_() for name, p in start.items()}
    optimizer = torch.optim.Adam(stacked.values(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            outputs = batched_call(network, stacked, batch.support_x)
            loss = problem.losses(outputs, batch.support_y).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        outputs = batched_call(network, stacked, batch.query_x)
        return stack_outcomes([problem.outcome(outputs, batch.query_y)])


def scratch_key(
    problem: FewShotProblem,
    batch: FewShotBatch,
    seed: int,
    steps: int = SCRATCH_STEPS,
    lr: float = SCRATCH_LR,
) -> str:
    """A fingerprint of everything `scratch_outcomes` depends on: the tasks' tensors, the
    network's architecture (its module tree) and initial weights, the loss kind, the steps and
    step size. Two evaluations with one key have the same scratch baseline, bit for bit, so a
    second one may take the first's (`metarl evaluate --scratch-from`) instead of recomputing
    it: on a conv net that is most of an evaluation's time."""
    network = problem.network(init=InitRNG(seed))
    digest = hashlib.sha256(f"{problem.tasks.kind} {steps} {lr!r}\n{network}".encode())
    tensors = [batch.support_x, batch.support_y, batch.query_x, batch.query_y]
    for tensor in tensors + list(network.state_dict().values()):  # weights and buffers
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
