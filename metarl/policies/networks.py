"""Policy networks: Gaussian and categorical MLPs, and a GRU policy for RL².

A policy's `forward` maps inputs to *distribution parameters* (plain tensors), and its
`action_dist` (`metarl.policies.distributions`) turns those into a `torch.distributions`
object, samples or takes the mode. Keeping `forward` tensor-only lets the sampler run one
`torch.func.vmap` over per-task parameter sets.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from metarl.policies.distributions import CategoricalActions, DiagGaussian
from metarl.policies.functional import Params, call


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
    ) -> None:
        """The mean MLP `obs_dim → *hidden_sizes → action_dim`; the std starts at `init_std`."""
        super().__init__()
        self.mean = mlp([obs_dim, *hidden_sizes, action_dim])
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))
        self.action_dist = DiagGaussian()

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """`(mean, log_std)`, both [..., action_dim], for observations [..., obs_dim]."""
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)


class CategoricalMLPPolicy(nn.Module):
    """Tanh MLP logits over discrete actions."""

    recurrent = False

    def __init__(
        self, obs_dim: int, num_actions: int, hidden_sizes: Sequence[int] = (64, 64)
    ) -> None:
        """The logits MLP `obs_dim → *hidden_sizes → num_actions`."""
        super().__init__()
        self.logits = mlp([obs_dim, *hidden_sizes, num_actions])
        self.action_dist = CategoricalActions()

    def forward(self, obs: Tensor) -> Tensor:
        """Logits [..., num_actions] for observations [..., obs_dim]."""
        return self.logits(obs)


class GRUPolicy(nn.Module):
    """GRU policy for RL² (Duan et al. 2016): input is (obs, previous action, reward, done).

    The hidden state is carried across the episodes of a trial by the caller and reset between
    trials. The GRU cell is written with linear layers so that it batches under `vmap`.
    """

    recurrent = True

    def __init__(
        self, obs_dim: int, action_space: gym.spaces.Space, hidden_size: int = 256
    ) -> None:
        """A GRU of `hidden_size` units and a linear head: logits for a Discrete `action_space`
        (previous actions one-hot), the mean with a state-independent log-std for a Box."""
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
        return torch.zeros(batch_size, self.hidden_size, device=self.head.weight.device)

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


def flat_obs_dim(observation_space: gym.spaces.Space) -> int:
    """The size of a flat Box observation space, or a `ValueError`."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"policies need a flat Box observation space, got {observation_space}")
    return observation_space.shape[0]


def make_policy(
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    hidden_sizes: Sequence[int] = (64, 64),
) -> nn.Module:
    """The default MLP policy for the spaces: Gaussian (Box actions) or categorical (Discrete)."""
    obs_dim = flat_obs_dim(observation_space)
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalMLPPolicy(obs_dim, int(action_space.n), hidden_sizes)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianMLPPolicy(obs_dim, action_space.shape[0], hidden_sizes)
    raise ValueError(f"no policy for the action space {action_space}")


def make_recurrent_policy(
    observation_space: gym.spaces.Space, action_space: gym.spaces.Space, hidden_size: int = 256
) -> GRUPolicy:
    """The RL² policy for the spaces: a GRU of `hidden_size` units."""
    return GRUPolicy(flat_obs_dim(observation_space), action_space, hidden_size)
