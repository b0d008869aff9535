"""VariBAD's networks and ELBO (Zintgraf et al. 2020): the recurrent belief encoder, the reward
decoder, the policy on (state, belief), and the evidence lower bound over whole trials.

The belief after t transitions of a trial is a diagonal Gaussian q(m | τ:t) over the task
latent m, read from a GRU over the transitions (previous action, reward, done, then the state
they led to); before the first transition it is the prior the GRU's zero state gives. The
policy acts on the state and the belief's mean and log-variance, the belief held constant (no
policy gradient reaches the encoder, as in the paper's default): only the ELBO trains the
encoder. The ELBO of a trial, at belief step t, reconstructs the rewards of the *whole* trial,
past and future, from one sample m ~ q_t, and penalizes KL(q_t ‖ q_{t-1}) with the prior
N(0, I) before q_0 (the paper's Eq. 4 with its choice of the previous posterior as prior).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from metarl.policies import TrialInputs, make_policy, mlp

Hidden = tuple[Tensor, Tensor]
"""The encoder's state between steps: the GRU state `[B, H]` and the transitions seen `[B]`."""


class BeliefEncoder(nn.Module):
    """q(m | τ:t): an embedding of each transition, a GRU over them, and a linear read-out of
    the belief's mean and log-variance."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Space,
        embedding_size: int,
        hidden_size: int,
        latent_size: int,
    ) -> None:
        """A ReLU embedding of `embedding_size` of (action, reward, done, state), a GRU of
        `hidden_size`, beliefs over `latent_size` latents."""
        super().__init__()
        self.inputs = TrialInputs(obs_dim, action_space)
        self.embed = nn.Sequential(nn.Linear(self.inputs.width, embedding_size), nn.ReLU())
        self.gru = nn.GRU(embedding_size, hidden_size)
        self.belief = nn.Linear(hidden_size, 2 * latent_size)
        self.hidden_size, self.latent_size = hidden_size, latent_size

    def initial_hidden(self, batch_size: int) -> Hidden:
        """Before a trial: the zero GRU state, no transitions seen."""
        device = self.belief.weight.device
        return (
            torch.zeros(batch_size, self.hidden_size, device=device),
            torch.zeros(batch_size, dtype=torch.int64, device=device),
        )

    def _read(self, states: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.belief(states).chunk(2, -1)
        return mean, log_var

    def step(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        prev_done: Tensor,
        hidden: Hidden,
    ) -> tuple[Tensor, Tensor, Hidden]:
        """The belief at a step `[B, L]` (mean, log-variance) from the sampler's step inputs:
        at a trial's first step (nothing seen: `prev_*` are zeros) the prior, after that the
        GRU updated by the transition that led to `obs`."""
        state, seen = hidden
        x = self.embed(self.inputs(obs, prev_action, prev_reward, prev_done))
        updated = self.gru(x[None], state[None])[1][0]
        state = torch.where((seen > 0)[:, None], updated, state)
        mean, log_var = self._read(state)
        return mean, log_var, (state, seen + 1)

    def sequence(
        self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, prev_done: Tensor
    ) -> tuple[Tensor, Tensor, Hidden]:
        """The beliefs at every step of whole trials `[T, B, L]` (step 0: the prior), and the
        state after the last, as `step` would have them one at a time."""
        steps, batch = obs.shape[:2]
        state = self.initial_hidden(batch)[0]
        states = [state[None]]
        if steps > 1:
            x = self.embed(self.inputs(obs[1:], prev_action[1:], prev_reward[1:], prev_done[1:]))
            states.append(self.gru(x, state[None])[0])
        states = torch.cat(states)
        mean, log_var = self._read(states)
        seen = torch.full((batch,), steps, dtype=torch.int64, device=obs.device)
        return mean, log_var, (states[-1], seen)


class RewardDecoder(nn.Module):
    """p(r | s, a, m): a ReLU MLP predicting a step's reward from its state, its action (one-hot
    if discrete) and a task latent; the likelihood is a unit-variance Gaussian, so its negative
    log is the squared error (up to a constant), the paper's 'deterministic' reward decoder."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Space,
        latent_size: int,
        hidden_sizes: Sequence[int],
    ) -> None:
        """The MLP `obs_dim + action + latent_size → hidden_sizes → 1`."""
        super().__init__()
        discrete = isinstance(action_space, gym.spaces.Discrete)
        self.num_actions = int(action_space.n) if discrete else 0
        action_dim = self.num_actions or int(action_space.shape[0])
        self.net = mlp([obs_dim + action_dim + latent_size, *hidden_sizes, 1], nn.ReLU)

    def forward(self, obs: Tensor, actions: Tensor, latents: Tensor) -> Tensor:
        """Predicted rewards `[...]` for `[..., ·]` inputs."""
        if self.num_actions:
            actions = nn.functional.one_hot(actions.long(), self.num_actions).to(obs.dtype)
        return self.net(torch.cat([obs, actions, latents], -1)).squeeze(-1)


class BeliefPolicy(nn.Module):
    """The policy the sampler runs: the encoder's belief at each step, then an MLP policy on
    (state, belief mean, belief log-variance), the belief detached. It keeps the RL² calling
    convention (one step with a hidden state, or whole trials from the initial one)."""

    recurrent = True

    def __init__(
        self,
        encoder: BeliefEncoder,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
    ) -> None:
        """The MLP policy of `hidden_sizes` for the spaces, its input widened by the belief."""
        super().__init__()
        self.encoder = encoder
        width = observation_space.shape[0] + 2 * encoder.latent_size
        widened = gym.spaces.Box(-float("inf"), float("inf"), (width,))
        self.actor = make_policy(widened, action_space, hidden_sizes)
        self.action_dist = self.actor.action_dist

    def initial_hidden(self, batch_size: int) -> Hidden:
        """The encoder's state before a trial."""
        return self.encoder.initial_hidden(batch_size)

    def features(self, obs: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
        """The actor's input: the state and the belief, held constant."""
        return torch.cat([obs, mean.detach(), log_var.detach()], -1)

    def forward(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        prev_done: Tensor,
        hidden: Hidden,
    ) -> tuple[Any, Hidden]:
        """Distribution parameters at one step (`[B, ·]` inputs) or over whole trials from the
        initial state (`[T, B, ·]`), and the encoder's state after the last step."""
        if obs.dim() == 2:
            mean, log_var, hidden = self.encoder.step(
                obs, prev_action, prev_reward, prev_done, hidden
            )
        else:
            mean, log_var, hidden = self.encoder.sequence(obs, prev_action, prev_reward, prev_done)
        return self.actor(self.features(obs, mean, log_var)), hidden


def gaussian_kl(mean: Tensor, log_var: Tensor, prior_mean: Tensor, prior_log_var: Tensor) -> Tensor:
    """KL(N(mean, e^log_var) ‖ N(prior_mean, e^prior_log_var)) of diagonal Gaussians, summed
    over the last axis."""
    return 0.5 * (
        prior_log_var
        - log_var
        + (log_var.exp() + (mean - prior_mean) ** 2) / prior_log_var.exp()
        - 1
    ).sum(-1)


def belief_kls(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(q_t ‖ q_{t-1}) at every step `[T, B]` of beliefs `[T, B, L]`, q_{-1} = N(0, I)."""
    prior_mean = torch.cat([torch.zeros_like(mean[:1]), mean[:-1]])
    prior_log_var = torch.cat([torch.zeros_like(log_var[:1]), log_var[:-1]])
    return gaussian_kl(mean, log_var, prior_mean, prior_log_var)


def elbo_losses(
    decoder: RewardDecoder,
    mean: Tensor,
    log_var: Tensor,
    obs: Tensor,
    actions: Tensor,
    rewards: Tensor,
    mask: Tensor,
    elbo_steps: Tensor,
    decode_steps: Tensor,
    noise: Tensor,
) -> tuple[Tensor, Tensor]:
    """The negative ELBO's two terms, each a mean over the B trials:

    - reconstruction: for each of the E belief steps `elbo_steps` `[E, B]`, a latent
      m = mean + e^{log_var/2}·noise (`noise` `[E, B, L]`), and the squared error of the
      decoded rewards at the D steps `decode_steps` `[D, B]`, scaled by (trial length / D) to
      estimate the sum over the whole trial, averaged over the E belief steps;
    - KL: Σ_t KL(q_t ‖ q_{t-1}) over the trial's real steps.

    Subsampling belief and decode steps (the paper's `vae_subsample_elbos/decodes`) keeps the
    cost at E·D decodes per trial instead of T².
    """
    columns = torch.arange(mean.shape[1], device=mean.device)
    latents = mean[elbo_steps, columns] + (0.5 * log_var[elbo_steps, columns]).exp() * noise
    decoded = decoder(
        obs[decode_steps, columns][None].expand(len(elbo_steps), *obs[decode_steps, columns].shape),
        actions[decode_steps, columns][None].expand(
            len(elbo_steps), *actions[decode_steps, columns].shape
        ),
        latents[:, None].expand(-1, len(decode_steps), -1, -1),
    )  # [E, D, B]
    errors = (decoded - rewards[decode_steps, columns]) ** 2
    lengths = mask.sum(0)
    reconstruction = errors.mean(1).mean(0) * lengths  # [B]: the whole trial's sum, estimated
    kl = (belief_kls(mean, log_var) * mask).sum(0)
    return reconstruction.mean(), kl.mean()
