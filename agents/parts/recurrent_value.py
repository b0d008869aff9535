"""A recurrent value function for RL²: a GRU on the policy's own per-step inputs, unrolled over
whole trials and fitted by regression to the trials' discounted returns.

Duan et al. 2016 pair GAE λ = 0.3 with a learned value function. A linear baseline of the
observation and the trial step cannot tell a trial that has found the good arm from one still
exploring, so only λ = 1 leaves it unbiased; a GRU that sees what the policy sees (observation,
previous action, reward and done) can, and its values make λ < 1 useful.

Each column of a batch is one trial: the GRU starts it from a zero hidden state and carries the
state across the trial's episodes, as the policy does. `RecurrentValue` owns the network, its
Adam and the generator of its minibatches, so an agent checkpoints all three in one entry.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from metarl.agents.parts.checks import SEED_LIMIT
from metarl.backend.device import adam
from metarl.backend.losses import masked_mean
from metarl.backend.minibatches import minibatches

VALUE_FUNCTIONS = ("linear", "gru")
"""The values of RL²'s `value_function` key: the linear feature baseline refitted on each batch,
or the GRU value function of this module."""

Previous = tuple[Tensor, Tensor, Tensor]  # previous (action, reward, done), each [T, B, ...]


class GRUValueNetwork(nn.Module):
    """V at every step of whole trials from (observation, previous action, previous reward,
    previous done), the inputs of the RL² policy (`metarl.policies.GRUPolicy`), in normalized
    units: the network predicts (return − mean) / std with a running mean and std of the
    returns, so that Adam's step size suits any reward scale and the untrained network already
    predicts the mean return. (PPO's value function, `agents/ppo.py`, scales by the std alone;
    a trial's return is far from 0 in std units on the bandits, which the bias would otherwise
    have to learn at Adam's step size.)"""

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space, hidden_size: int) -> None:
        """A one-layer GRU of `hidden_size` units and a linear head; previous actions go in
        one-hot for a Discrete `action_space`, as they are for a Box. The return mean and std
        start at 0 (V = 0 until the first fit)."""
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.num_actions = action_dim = int(action_space.n)
        else:
            self.num_actions, action_dim = 0, int(action_space.shape[0])
        self.gru = nn.GRU(obs_dim + action_dim + 2, hidden_size)
        self.head = nn.Linear(hidden_size, 1)
        self.register_buffer("return_mean", torch.zeros(()))
        self.register_buffer("return_std", torch.zeros(()))

    def inputs(self, observations: Tensor, previous: Previous) -> Tensor:
        """The per-step input `[T, B, obs + action + 2]` the policy builds from the same data."""
        prev_action, prev_reward, prev_done = previous
        if self.num_actions:
            prev_action = nn.functional.one_hot(prev_action.long(), self.num_actions)
        return torch.cat(
            [
                observations,
                prev_action.to(observations.dtype),
                prev_reward[..., None].to(observations.dtype),
                prev_done[..., None].to(observations.dtype),
            ],
            dim=-1,
        )

    def forward(self, observations: Tensor, previous: Previous) -> Tensor:
        """Normalized values `[T, B]` for observations `[T, B, obs_dim]` and `previous`
        `[T, B, ...]` (`Episodes.previous_step_inputs`), each column from a zero hidden state.
        Padding after a trial's end comes after its real steps, so it never changes them."""
        states, _ = self.gru(self.inputs(observations, previous))
        return self.head(states).squeeze(-1)

    def values(self, observations: Tensor, previous: Previous) -> Tensor:
        """Values `[T, B]` in return units: `forward` un-normalized."""
        return self.return_mean + self.return_std * self(observations, previous)

    def update_normalization(self, returns: Tensor, momentum: float = 0.9) -> None:
        """Move the return mean and std towards those (population std) of `returns`, the valid
        steps' (the first batch sets them)."""
        mean, std = returns.mean(), returns.std(correction=0).clamp_min(1e-6)
        if self.return_std > 0:
            mean = momentum * self.return_mean + (1 - momentum) * mean
            std = momentum * self.return_std + (1 - momentum) * std
        self.return_mean.copy_(mean)
        self.return_std.copy_(std)


class RecurrentValue:
    """The GRU value function of an RL² agent with what fits it: Adam at `learning_rate`, and
    `epochs` passes per fit over the batch's trials in shuffled minibatches of
    `minibatch_trials` (whole trials, as the GRU needs), drawn from a generator of its own."""

    def __init__(
        self,
        network: GRUValueNetwork,
        *,
        learning_rate: float,
        epochs: int,
        minibatch_trials: int,
        seed: int,
        device: torch.device,
    ) -> None:
        """Move `network` to `device` and make its Adam; the minibatch generator starts from
        `seed` + 2**32, a stream no other generator of the agent (seeded with `seed` < 2**32)
        starts from."""
        self.network = network.to(device)
        self.epochs, self.minibatch_trials = epochs, minibatch_trials
        self.optimizer = adam(self.network.parameters(), learning_rate, device)
        self.generator = torch.Generator().manual_seed(seed + SEED_LIMIT)

    def predict(self, observations: Tensor, previous: Previous, mask: Tensor) -> Tensor:
        """V `[T, B]` of every step of the trials, in return units; 0 on padding. No gradient:
        the values only enter the advantages."""
        with torch.no_grad():
            values = self.network.values(observations, previous)
        return torch.where(mask.bool(), values, 0.0)

    def loss(
        self, observations: Tensor, previous: Previous, returns: Tensor, mask: Tensor
    ) -> Tensor:
        """Mean squared error to `returns` over the valid steps, in normalized units (the
        squared error in return units / std²)."""
        net = self.network
        scaled = (returns - net.return_mean) / net.return_std
        return masked_mean((net(observations, previous) - scaled) ** 2, mask)

    def fit(
        self, observations: Tensor, previous: Previous, returns: Tensor, mask: Tensor
    ) -> dict[str, float]:
        """Regress V on `returns` `[T, B]` (the trials' discounted returns): update the return
        normalization from the batch's valid steps, then `epochs` passes of minibatch Adam steps.

        Metrics: `value_loss` before the fit and `value_loss_after` it, both on the whole batch
        and in the new normalized units.
        """
        self.network.update_normalization(returns[mask.bool()])

        def loss(index: Tensor | slice) -> Tensor:
            inputs = tuple(x[:, index] for x in previous)
            return self.loss(observations[:, index], inputs, returns[:, index], mask[:, index])

        with torch.no_grad():
            before = loss(slice(None))
        batches = minibatches(
            mask.shape[1], self.minibatch_trials, self.epochs, self.generator, mask.device
        )
        for index in batches:
            self.optimizer.zero_grad()
            loss(index).backward()
            self.optimizer.step()
        with torch.no_grad():
            after = loss(slice(None))
        return {"value_loss": before.item(), "value_loss_after": after.item()}

    def state_dict(self) -> dict[str, Any]:
        """The network (with its return mean and std), Adam's state and the minibatch RNG."""
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"])
