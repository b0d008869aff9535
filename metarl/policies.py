"""Policies: Gaussian and categorical MLPs, and a GRU policy for RL² (DESIGN §3, §5).

A policy's `forward` maps inputs to *distribution parameters* (plain tensors), and its
`action_dist` turns those into a `torch.distributions` object, samples or takes the mode. Keeping
`forward` tensor-only lets the sampler run one `torch.func.vmap` over per-task parameter sets, and
adapted parameters are plain `dict[str, Tensor]` used through `torch.func.functional_call`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal
from torch.func import functional_call

Params = dict[str, Tensor]


class DiagGaussian:
    """Gaussian actions with diagonal covariance; parameters are `(mean, log_std)` of [..., A]."""

    def distribution(self, dist_params: tuple[Tensor, Tensor]) -> Distribution:
        mean, log_std = dist_params
        # No argument validation: it costs time per call and cannot run under vmap.
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1, validate_args=False)

    def sample(self, dist_params: tuple[Tensor, Tensor], generator: torch.Generator) -> Tensor:
        mean, log_std = dist_params
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + log_std.exp() * noise

    def mode(self, dist_params: tuple[Tensor, Tensor]) -> Tensor:
        return dist_params[0]


class CategoricalActions:
    """Discrete actions; the parameters are logits [..., n]."""

    def distribution(self, logits: Tensor) -> Distribution:
        return Categorical(logits=logits, validate_args=False)

    def sample(self, logits: Tensor, generator: torch.Generator) -> Tensor:
        probs = torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])

    def mode(self, logits: Tensor) -> Tensor:
        return logits.argmax(dim=-1)


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class GaussianMLPPolicy(nn.Module):
    """Tanh MLP mean and a state-independent log-std: the policy of MAML and ProMP."""

    recurrent = False

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        init_std: float = 1.0,
    ):
        super().__init__()
        self.mean = mlp([obs_dim, *hidden_sizes, action_dim])
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))
        self.action_dist = DiagGaussian()

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)


class CategoricalMLPPolicy(nn.Module):
    """Tanh MLP logits over discrete actions."""

    recurrent = False

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: Sequence[int] = (64, 64)):
        super().__init__()
        self.logits = mlp([obs_dim, *hidden_sizes, num_actions])
        self.action_dist = CategoricalActions()

    def forward(self, obs: Tensor) -> Tensor:
        return self.logits(obs)


class GRUPolicy(nn.Module):
    """GRU policy for RL² (Duan et al. 2016): input is (obs, previous action, reward, done).

    The hidden state is carried across the episodes of a trial by the caller and reset between
    trials. The GRU cell is written with linear layers so that it batches under `vmap`.
    """

    recurrent = True

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, hidden_size: int = 256):
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.num_actions = action_dim = int(action_space.n)  # one-hot previous action
            self.action_dist = CategoricalActions()
        else:
            self.num_actions, action_dim = 0, int(action_space.shape[0])
            self.action_dist = DiagGaussian()
            self.log_std = nn.Parameter(torch.zeros(action_dim))
        self.hidden_size = hidden_size
        self.input_gates = nn.Linear(obs_dim + action_dim + 2, 3 * hidden_size)
        self.hidden_gates = nn.Linear(hidden_size, 3 * hidden_size)
        self.head = nn.Linear(hidden_size, action_dim)

    def initial_hidden(self, batch_size: int) -> Tensor:
        """The hidden state at the start of a trial: zeros [batch, hidden_size]."""
        return torch.zeros(batch_size, self.hidden_size)

    def encode_action(self, action: Tensor) -> Tensor:
        """Previous action as network input: one-hot for discrete actions, as is otherwise."""
        if self.num_actions:
            return nn.functional.one_hot(action.long(), self.num_actions).to(torch.float32)
        return action

    def forward(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        prev_done: Tensor,
        hidden: Tensor,
    ) -> tuple[Any, Tensor]:
        """One step (inputs `[..., ·]`, `hidden` `[..., hidden_size]`) or a whole sequence from
        `hidden` (inputs `[T, ..., ·]`): distribution parameters (`[T, ...]` for a sequence)
        and the last hidden state. A sequence computes its input gates in one matmul, which
        makes training's unroll several times faster than stepping `forward` T times."""
        x = torch.cat(
            [obs, self.encode_action(prev_action), prev_reward[..., None], prev_done[..., None]],
            dim=-1,
        )
        input_gates = self.input_gates(x)
        if obs.dim() == hidden.dim():
            hidden = states = self._recur(input_gates, hidden)
        else:
            states = []
            for gates in input_gates.unbind(0):
                hidden = self._recur(gates, hidden)
                states.append(hidden)
            states = torch.stack(states)
        out = self.head(states)
        if self.num_actions:
            return out, hidden
        return (out, self.log_std.expand_as(out)), hidden

    def _recur(self, input_gates: Tensor, hidden: Tensor) -> Tensor:
        """The GRU cell's next hidden state from the step's input gates and the hidden state."""
        r_x, z_x, n_x = input_gates.chunk(3, dim=-1)
        r_h, z_h, n_h = self.hidden_gates(hidden).chunk(3, dim=-1)
        reset, update = torch.sigmoid(r_x + r_h), torch.sigmoid(z_x + z_h)
        candidate = torch.tanh(n_x + reset * n_h)
        return (1 - update) * candidate + update * hidden


def unroll(
    policy: GRUPolicy,
    params: Params | None,
    observations: Tensor,
    previous: tuple[Tensor, Tensor, Tensor],
) -> Any:
    """Run a recurrent policy over whole trials: distribution parameters `[T, B, ...]` for
    observations `[T, B, obs_dim]` and `previous` (action, reward, done) `[T, B, ...]`, from a
    zero hidden state, as the sampler ran it (`Episodes.previous_step_inputs`)."""
    hidden = policy.initial_hidden(observations.shape[1])
    return call(policy, params, observations, *previous, hidden)[0]


def make_policy(
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    hidden_sizes: Sequence[int] = (64, 64),
    recurrent: bool = False,
) -> nn.Module:
    """The default policy for the spaces: Gaussian (Box) or categorical (Discrete), or GRU."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"policies need a flat Box observation space, got {observation_space}")
    obs_dim = observation_space.shape[0]
    if recurrent:
        return GRUPolicy(obs_dim, action_space, hidden_size=hidden_sizes[-1])
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalMLPPolicy(obs_dim, int(action_space.n), hidden_sizes)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianMLPPolicy(obs_dim, action_space.shape[0], hidden_sizes)
    raise ValueError(f"no policy for the action space {action_space}")


def parameters(policy: nn.Module) -> Params:
    """The policy's own parameters as a name → tensor dict (the tensors, not copies)."""
    return dict(policy.named_parameters())


def call(policy: nn.Module, params: Params | None, *inputs: Tensor) -> Any:
    """`policy(*inputs)` with `params` in place of its own (when given)."""
    if params is None:
        return policy(*inputs)
    return functional_call(policy, params, inputs)
