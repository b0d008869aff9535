"""The gradient step of every gradient-based adaptation (Finn et al. 2017, eq. 1), for a batch of
tasks at once: θ'_i = θ_i − α ⊙ ∇_θ_i L_i(θ_i). The MAML family's RL inner loop
(`metarl.agents.parts.inner_loop`) and the supervised few-shot learners (`metarl.fewshot`) both
adapt through it, so second-order MAML means the same graph in both halves of the library.

Parameters are stacked per task (`[n, ...]` per name, a view of θ expanded where every task
starts from θ); task i's loss depends on its own slice alone, so one backward pass of the summed
losses gives every task's gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from metarl.policies.functional import Params

StepSize = Callable[[str], Tensor | float]
"""α of the parameter of a given name: a constant, or a (learned, differentiable) tensor of the
parameter's shape (Meta-SGD, Li et al. 2017)."""


def repeat_for_tasks(params: Params, num_tasks: int) -> Params:
    """`params` repeated for `num_tasks` tasks, `[n, ...]` each (views, so gradients reach θ)."""
    return {name: p.expand(num_tasks, *p.shape) for name, p in params.items()}


def gradient_step(
    stacked: Params, losses: Tensor, step_size: StepSize, *, create_graph: bool
) -> Params:
    """θ'_i = θ_i − α ⊙ ∇ L_i(θ_i) for every task i (`losses` `[n]`, task i's a function of the
    `[i]` slice of `stacked` alone). With `create_graph` the step is differentiable through the
    gradient (second-order MAML); without, the gradient is a constant (first-order MAML, or only
    the values are wanted), and θ'_i still depends on θ_i and on α."""
    grads = torch.autograd.grad(losses.sum(), list(stacked.values()), create_graph=create_graph)
    return {
        name: p - step_size(name) * g for (name, p), g in zip(stacked.items(), grads, strict=True)
    }
