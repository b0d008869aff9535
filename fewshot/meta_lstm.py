"""The LSTM meta-learner (Ravi & Larochelle 2017, "Optimization as a Model for Few-Shot
Learning", Algorithm 1): a learned optimizer whose cell state is the learner's parameters.

The learner is the backbone with its head; its initial parameters θ_0 = c_0 are meta-learned.
The meta-learner is coordinate-wise: the same two small layers run on every parameter entry of
every task, with a state of their own per entry.
1. First layer: an LSTM (`lstm_hidden` units) on the preprocessed loss and gradient of the entry,
   (L_t, ∇_t), each mapped by Andrychowicz et al. 2016's preprocessing with p = 10: x ↦
   (log|x| / p, sign x) if |x| >= e^−p, else (−1, e^p x) (`preprocess`). Its output is h_t.
2. The meta-learner cell: i_t = σ(W_I·[h_t, c_{t−1}, i_{t−1}] + b_I),
   f_t = σ(W_F·[h_t, c_{t−1}, f_{t−1}] + b_F), c_t = f_t ⊙ c_{t−1} + i_t ⊙ (−∇_t), from i_0 =
   f_0 = 0: i_t is a learned step size per entry and f_t a learned shrinkage of the parameters.
   Initialized as the paper describes and its code does: W_I, W_F ~ U[−0.01, 0.01], b_F ~ U[4, 6]
   (f ≈ 1, no shrinkage) and b_I ~ U[−5, −4] (i ≈ 0.01, a small step size).

One meta-iteration, for a meta-batch of tasks, every task at once: T = `num_inner_steps` updates
c_1, …, c_T, each from the loss and gradient of the full support set at c_{t−1}, then an Adam step
(`outer_lr`) on θ_0 and the meta-learner's weights along the gradient of the mean query loss of
c_T. As in the paper, the learner's losses and gradients are inputs to the meta-learner, not
functions of its weights: they are computed on a detached copy of c_{t−1}, so the meta-gradient
has no second derivatives (it still flows through c_{t−1} itself, in the gates and the update).

Deviations from the paper: a meta-batch of tasks per update (the paper takes one episode); the
learner's batch norm keeps no running statistics (`metarl.fewshot.parts.networks`), where the
paper's learner collects them per dataset. The meta-gradient is clipped (`grad_clip`), as the
paper clips it.

Cost: the meta-learner runs on n × P coordinates (P the learner's parameter entries) and keeps
its activations, about 10 × `lstm_hidden` floats per coordinate, for each of the T updates; with
the shared defaults on the digits (the 64-filter conv net, P ≈ 112k, n = 25, T = 5) one
meta-iteration holds about 12 GB and takes over a minute on a CPU core, so a CPU run wants a
smaller `meta_batch_size` or `conv_channels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from metarl.agents.parts.checks import check_float, check_int
from metarl.backend.adaptation import repeat_for_tasks
from metarl.backend.progress import SILENT, Progress
from metarl.fewshot.data.base import FewShotBatch
from metarl.fewshot.parts.config import FewShotConfig
from metarl.fewshot.parts.learner import FewShotLearner, Saveable
from metarl.fewshot.parts.networks import batched_call
from metarl.fewshot.parts.problem import FewShotProblem, QueryOutcomes, finite, stack_outcomes
from metarl.policies.functional import Params, parameters

PREPROCESSING_P = 10.0
"""p of the input preprocessing (Andrychowicz et al. 2016, Appendix A; Ravi & Larochelle: 10)."""


@dataclass
class MetaLSTMConfig(FewShotConfig):
    """The LSTM meta-learner's settings on top of the shared ones."""

    num_inner_steps: int = 5
    """T: meta-learner updates of the learner on the support set per task, >= 1 (full support
    set each update; evaluation takes any number)."""
    lstm_hidden: int = 20
    """Units of the first, coordinate-wise LSTM layer, >= 1 (Ravi & Larochelle: 20)."""
    grad_clip: float | None = 0.25
    """Largest norm of the meta-gradient (per parameter group), > 0; None: no clipping.
    Unclipped, a sinusoid run (hidden 20-20, 5 tasks, Adam 3e-3) diverged within 1000
    iterations: query MSE 2.1 after one update but 6e5 after five."""

    def __post_init__(self) -> None:
        """Check the shared fields, then the meta-learner's."""
        FewShotConfig.__post_init__(self)
        check_int("num_inner_steps", self.num_inner_steps)
        check_int("lstm_hidden", self.lstm_hidden)
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, 0, low_open=True)


def preprocess(x: Tensor, p: float = PREPROCESSING_P) -> Tensor:
    """Andrychowicz et al. 2016's scaling of an input of any magnitude to two bounded features:
    (log|x| / p, sign x) where |x| >= e^−p, else (−1, e^p x); `[...]` → `[..., 2]`."""
    large = x.abs() >= math.exp(-p)
    magnitude = torch.where(large, x.abs().clamp_min(math.exp(-p)).log() / p, -1.0)
    direction = torch.where(large, x.sign(), math.exp(p) * x)
    return torch.stack([magnitude, direction], dim=-1)


@dataclass(frozen=True)
class MetaLearnerState:
    """The meta-learner's recurrent state, one row per coordinate (parameter entry of a task)."""

    hidden: Tensor
    """h_t of the first LSTM layer `[N, lstm_hidden]`."""
    cell: Tensor
    """The first LSTM layer's own cell state `[N, lstm_hidden]`."""
    input_gate: Tensor
    """i_t `[N]`, the step size the last update took."""
    forget_gate: Tensor
    """f_t `[N]`, the shrinkage the last update took."""


class MetaLearnerCell(nn.Module):
    """The second layer: the input and forget gates of a cell whose state is the learner's
    parameters (Ravi & Larochelle's i_t, f_t and c_t), one scalar gate each per coordinate."""

    def __init__(self, hidden: int) -> None:
        """The gates W_I, W_F of `hidden` + 2 inputs ([h_t, c_{t−1}, gate_{t−1}]) with the paper's
        initialization: weights U[−0.01, 0.01], b_F ~ U[4, 6], b_I ~ U[−5, −4]."""
        super().__init__()
        self.input_gate = nn.Linear(hidden + 2, 1)
        self.forget_gate = nn.Linear(hidden + 2, 1)
        with torch.no_grad():
            nn.init.uniform_(self.input_gate.weight, -0.01, 0.01)
            nn.init.uniform_(self.forget_gate.weight, -0.01, 0.01)
            nn.init.uniform_(self.input_gate.bias, -5.0, -4.0)
            nn.init.uniform_(self.forget_gate.bias, 4.0, 6.0)

    def forward(
        self, hidden: Tensor, previous: Tensor, grad: Tensor, state: MetaLearnerState | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`(c_t, i_t, f_t)`, each `[N]`, from h_t `[N, hidden]`, c_{t−1} `[N]`, ∇_t `[N]` and
        the previous gates in `state` (zero at the first update)."""
        zeros = torch.zeros_like(previous)
        i_prev = zeros if state is None else state.input_gate
        f_prev = zeros if state is None else state.forget_gate
        i = torch.sigmoid(
            self.input_gate(torch.cat([hidden, previous[:, None], i_prev[:, None]], 1))
        )
        f = torch.sigmoid(
            self.forget_gate(torch.cat([hidden, previous[:, None], f_prev[:, None]], 1))
        )
        i, f = i.squeeze(1), f.squeeze(1)
        return f * previous - i * grad, i, f


class MetaLearner(nn.Module):
    """The coordinate-wise optimizer: the first LSTM layer on the preprocessed (loss, gradient)
    of each coordinate, then `MetaLearnerCell`."""

    def __init__(self, hidden: int) -> None:
        """Both layers, the first of `hidden` units (PyTorch's default initialization)."""
        super().__init__()
        self.lstm = nn.LSTMCell(4, hidden)
        self.cell = MetaLearnerCell(hidden)

    def forward(
        self, losses: Tensor, grads: Tensor, previous: Tensor, state: MetaLearnerState | None
    ) -> tuple[Tensor, MetaLearnerState]:
        """c_t `[N]` and the new state, from each coordinate's loss L_t `[N]` (its task's),
        gradient ∇_t `[N]`, parameter c_{t−1} `[N]` and the state after the previous update
        (None before the first). L_t and ∇_t are used as given: detach them to keep them inputs."""
        inputs = torch.cat([preprocess(losses), preprocess(grads)], dim=-1)
        recurrent = None if state is None else (state.hidden, state.cell)
        hidden, cell = self.lstm(inputs, recurrent)
        updated, i, f = self.cell(hidden, previous, grads, state)
        return updated, MetaLearnerState(hidden, cell, i, f)


class MetaLSTM(FewShotLearner):
    """A learner's initial parameters θ_0 and an LSTM that updates them, meta-trained together so
    that a few of its updates on a task's support set fit the task."""

    def __init__(
        self, env: str, config: MetaLSTMConfig, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The task distribution `env` (a `metarl.fewshot.data` name) with `env_kwargs`, the
        learner (θ_0), the meta-learner and the meta-optimizer of both."""
        self.config = cfg = config
        self.problem = FewShotProblem(env, cfg, env_kwargs)
        self.network = self.problem.network()
        with self.problem.init:
            self.meta_learner = MetaLearner(cfg.lstm_hidden).to(self.problem.device)
        self.shapes = {name: p.shape for name, p in self.network.named_parameters()}
        meta_parameters = [*self.network.parameters(), *self.meta_learner.parameters()]
        self.optimizer = torch.optim.Adam(meta_parameters, lr=cfg.outer_lr)
        self.progress: Progress = SILENT

    def flatten(self, stacked: Params) -> Tensor:
        """The learner's parameters of each task as one row `[n, P]` (the coordinates)."""
        return torch.cat([p.flatten(1) for p in stacked.values()], dim=1)

    def unflatten(self, flat: Tensor) -> Params:
        """The inverse of `flatten`: rows `[n, P]` → parameters `[n, ...]` per name (views, so
        gradients reach `flat`)."""
        sizes = [shape.numel() for shape in self.shapes.values()]
        pieces = flat.split(sizes, dim=1)
        return {
            name: piece.view(flat.shape[0], *shape)
            for (name, shape), piece in zip(self.shapes.items(), pieces, strict=True)
        }

    def support_gradients(self, flat: Tensor, batch: FewShotBatch) -> tuple[Tensor, Tensor]:
        """Each task's support loss `[n]` and its gradient `[n, P]` at the parameters `flat`,
        both detached: one backward pass of the summed losses of a detached copy gives every
        task's gradient, with no graph to the meta-learner (no second derivatives)."""
        leaf = flat.detach().requires_grad_()
        with torch.enable_grad():
            outputs = batched_call(self.network, self.unflatten(leaf), batch.support_x)
            losses = self.problem.losses(outputs, batch.support_y)
            (grads,) = torch.autograd.grad(losses.sum(), [leaf])
        return losses.detach(), grads

    def update(
        self, flat: Tensor, batch: FewShotBatch, state: MetaLearnerState | None
    ) -> tuple[Tensor, MetaLearnerState]:
        """One meta-learner update of every task's learner: c_t `[n, P]` from c_{t−1} = `flat`,
        on the support sets of `batch`, and the meta-learner's new state (coordinates flattened
        task-major, `[n × P]` rows)."""
        losses, grads = self.support_gradients(flat, batch)
        coordinate_losses = losses[:, None].expand_as(grads).reshape(-1)
        updated, state = self.meta_learner(
            coordinate_losses, grads.reshape(-1), flat.reshape(-1), state
        )
        return updated.view_as(flat), state

    def initial(self, num_tasks: int) -> Tensor:
        """c_0 = θ_0 for `num_tasks` tasks `[n, P]` (differentiable with respect to θ_0)."""
        return self.flatten(repeat_for_tasks(parameters(self.network), num_tasks))

    def query_outputs(self, flat: Tensor, batch: FewShotBatch) -> Tensor:
        """The learner's outputs on each task's query set under that task's parameters."""
        return batched_call(self.network, self.unflatten(flat), batch.query_x)

    def train_step(self) -> dict[str, float]:
        """One meta-update on a meta-batch of training tasks; the query loss (and accuracy)
        before and after the `num_inner_steps` updates."""
        batch = self.problem.sample()
        flat, state = self.initial(batch.num_tasks), None
        for _ in range(self.config.num_inner_steps):
            flat, state = self.update(flat, batch, state)
        outputs = self.query_outputs(flat, batch)
        meta_loss = self.problem.losses(outputs, batch.query_y).mean()
        with torch.no_grad():  # before the step, which moves θ_0
            before = self.query_outputs(self.initial(batch.num_tasks), batch)
        self.optimizer.zero_grad()
        meta_loss.backward()
        if self.config.grad_clip is not None:
            for group in self.optimizer.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], self.config.grad_clip)
        self.optimizer.step()
        return finite(
            {
                "examples": self.problem.examples(batch),
                **self.problem.metrics("pre", before, batch.query_y),
                **self.problem.metrics("post", outputs.detach(), batch.query_y),
            }
        )

    def query_outcomes(self, batch: FewShotBatch, steps: int) -> QueryOutcomes:
        """Each task's query loss (and accuracy) after 0, 1, … `steps` meta-learner updates (any
        number: the LSTM unrolls as far as asked), without a graph beyond the gradients ∇_t."""
        points = []
        with torch.no_grad():
            flat, state = self.initial(batch.num_tasks), None
            for step in range(steps + 1):
                points.append(self.problem.outcome(self.query_outputs(flat, batch), batch.query_y))
                if step < steps:
                    flat, state = self.update(flat, batch, state)
        return stack_outcomes(points)

    def saved_parts(self) -> dict[str, Saveable]:
        """The parts a checkpoint holds."""
        return {
            "network": self.network,
            "meta_learner": self.meta_learner,
            "optimizer": self.optimizer,
            "problem": self.problem,
        }
