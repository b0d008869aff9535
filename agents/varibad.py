"""VariBAD (Zintgraf et al. 2020, "VariBAD: A Very Good Method for Bayes-Adaptive Deep RL via
Meta-Learning").

A recurrent encoder keeps a Gaussian belief over a task latent from the trial so far; a decoder
reconstructs the trial's rewards from samples of it; the policy acts on the state and the
belief (`agents/varibad_networks.py`). Each iteration samples one trial (`episodes_per_trial`
episodes, the belief carried across them) on each of `meta_batch_size` new tasks, takes a PPO
step over whole trials on them (the shared `trial_ppo_update`, RL²-PPO's), then trains the
encoder and decoder by the ELBO on trials drawn from a buffer of the most recent ones
(`vae_buffer_trials`, as the paper's VAE buffer).

Deviations from the paper's code, named: the advantages are GAE on the shared linear feature
baseline over (state, belief, trial step) refitted per batch (the paper learns a value head),
with λ = 1 by default as RL²'s linear baseline needs; the reward decoder reads (s_t, a_t, m)
rather than the paper's MuJoCo choice (s_{t+1}, m); the encoder's input at an episode
boundary is the next episode's first state, flagged by the done bit (the sampler keeps no
terminal states). Evaluation runs trials as RL²'s does: return per episode, and the first
episode's return is the Bayes-adaptive claim (it acts on the belief from the first step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from metarl.agents.parts.checks import check_float, check_int, check_sizes
from metarl.agents.parts.config import AgentConfig, OwnsSampler
from metarl.agents.parts.seeding import InitRNG
from metarl.agents.parts.state import load_policy_tasks_sampler_state, policy_tasks_sampler_state
from metarl.agents.parts.trial_buffer import TrialBuffer
from metarl.agents.parts.trial_ppo import TrialPPOConfig, trial_ppo_update
from metarl.agents.parts.trials import trial_ends, trial_metrics, trial_outcomes
from metarl.agents.varibad_networks import (
    BeliefEncoder,
    BeliefPolicy,
    RewardDecoder,
    elbo_losses,
)
from metarl.backend.advantages import fitted_advantages
from metarl.backend.device import adam
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task
from metarl.sampling.episodes import EpisodeOutcomes, Episodes


@dataclass
class VariBADConfig(AgentConfig, TrialPPOConfig):
    """VariBAD's settings (defaults: the paper's MuJoCo encoder and latent sizes with a laptop's
    batch; its PPO settings where they differ from the shared ones are noted)."""

    meta_batch_size: int = 16
    """Trials per iteration, each on a freshly drawn task, >= 1."""
    episodes_per_trial: int = 2
    """Episodes of one task per trial, >= 1: the belief carries across them (the paper's
    BAMDP horizon of 2 episodes on MuJoCo)."""
    latent_size: int = 5
    """Dimensions of the task latent m, >= 1 (the paper's 5)."""
    encoder_hidden_size: int = 128
    """GRU units of the belief encoder, >= 1 (the paper's 128)."""
    embedding_size: int = 32
    """Width of the encoder's ReLU embedding of each transition, >= 1."""
    decoder_hidden_sizes: tuple[int, ...] = (64, 32)
    """ReLU layers of the reward decoder (the paper's 64, 32)."""
    policy_hidden_sizes: tuple[int, ...] = (128, 128)
    """Tanh layers of the policy on (state, belief) (the paper's 128, 128)."""
    gae_lambda: float = 1.0
    """GAE λ, in [0, 1], on the linear baseline (which only λ = 1 leaves unbiased)."""
    kl_weight: float = 0.1
    """Weight of the ELBO's KL terms against the reward reconstruction, finite and >= 0."""
    vae_learning_rate: float = 1e-3
    """Adam step size of the encoder and decoder, finite and > 0 (the paper's 1e-3)."""
    vae_updates: int = 3
    """ELBO steps per iteration, >= 1 (the paper's 3 on MuJoCo)."""
    vae_batch_trials: int = 16
    """Trials per ELBO step, drawn from the buffer, >= 1."""
    vae_buffer_trials: int = 1000
    """Most recent trials the ELBO draws from, >= 1 (the paper's 1000)."""
    elbo_steps: int = 20
    """Belief steps per trial whose ELBO terms each ELBO step estimates, >= 1 (all of them when
    the trial is shorter)."""
    decode_steps: int = 50
    """Steps per trial whose rewards each sampled belief reconstructs, >= 1."""

    def __post_init__(self) -> None:
        """Check the shared fields, PPO's, then VariBAD's."""
        AgentConfig.__post_init__(self)
        TrialPPOConfig.__post_init__(self)
        for name in (
            "meta_batch_size",
            "episodes_per_trial",
            "latent_size",
            "encoder_hidden_size",
            "embedding_size",
            "vae_updates",
            "vae_batch_trials",
            "vae_buffer_trials",
            "elbo_steps",
            "decode_steps",
        ):
            check_int(name, getattr(self, name))
        for name in ("decoder_hidden_sizes", "policy_hidden_sizes"):
            setattr(self, name, check_sizes(name, getattr(self, name)))
        check_float("gae_lambda", self.gae_lambda, 0, 1)
        check_float("kl_weight", self.kl_weight, 0)
        check_float("vae_learning_rate", self.vae_learning_rate, 0, low_open=True)


class VariBAD(OwnsSampler):
    """VariBAD on a metarl task env (`varibad`).

    env: a metarl task env id or short name; env_kwargs go to `gymnasium.make`.
    """

    config: VariBADConfig

    def __init__(
        self, env: str, config: VariBADConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """The sampler, the task source, the encoder, decoder and policy (in that order from
        the init stream), the two Adams, the trial buffer and the generators, all seeded by
        `config.seed`."""
        self.config = cfg = config or VariBADConfig()
        env_kwargs = env_kwargs or {}
        self.sampler = cfg.make_sampler(env, cfg.meta_batch_size, env_kwargs)
        self.open_task_source(env, env_kwargs, cfg.seed)
        self.device = cfg.torch_device
        self.progress: Progress = SILENT
        obs_space, action_space = self.sampler.observation_space, self.sampler.action_space
        obs_dim = obs_space.shape[0]
        with InitRNG(cfg.seed):
            encoder = BeliefEncoder(
                obs_dim,
                action_space,
                cfg.embedding_size,
                cfg.encoder_hidden_size,
                cfg.latent_size,
            )
            self.decoder = RewardDecoder(
                obs_dim, action_space, cfg.latent_size, cfg.decoder_hidden_sizes
            )
            self.policy = BeliefPolicy(encoder, obs_space, action_space, cfg.policy_hidden_sizes)
        self.policy.to(self.device)
        self.decoder.to(self.device)
        self.encoder = encoder
        self.optimizer = adam(self.policy.actor.parameters(), cfg.learning_rate, self.device)
        vae_parameters = [*encoder.parameters(), *self.decoder.parameters()]
        self.vae_optimizer = adam(vae_parameters, cfg.vae_learning_rate, self.device)
        steps = self.sampler.horizon * cfg.episodes_per_trial
        self.buffer = TrialBuffer(cfg.vae_buffer_trials, steps, obs_space, action_space)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # minibatches
        self.vae_generator = torch.Generator().manual_seed(cfg.seed + 1)  # buffer draws, noise

    def sample_trials(self, tasks: Sequence[Task], episodes_per_trial: int) -> Episodes:
        """One trial (column) per task, `episodes_per_trial` episodes each, the belief carried
        across them."""
        return self.sampler.sample(self.policy, tasks, 1, episodes_per_trial=episodes_per_trial)

    def beliefs(self, episodes: Episodes) -> tuple[Tensor, Tensor]:
        """The belief (mean, log-variance) `[T, B, L]` at every step of `episodes`' trials."""
        mean, log_var, _ = self.encoder.sequence(
            episodes.observations, *episodes.previous_step_inputs()
        )
        return mean, log_var

    def train_step(self) -> dict[str, float]:
        """One iteration: a trial on each of `meta_batch_size` new tasks, a PPO step on them,
        then `vae_updates` ELBO steps on trials from the buffer (this batch's included).

        Metrics: `trial_return`, mean episode `return`, `first_episode_return` and
        `last_episode_return` (VariBAD's claim is on the first), env steps, PPO's metrics, the
        ELBO's `vae_reconstruction` and `vae_kl` (means over the ELBO steps), and the first and
        last episodes' success rates where the env reports success.
        """
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        episodes = self.sample_trials(tasks, cfg.episodes_per_trial)
        head, successes = trial_metrics(episodes, cfg.episodes_per_trial)
        self.buffer.add(episodes)
        episodes = episodes.to(self.device)
        with torch.no_grad():
            features = self.policy.features(episodes.observations, *self.beliefs(episodes))
        advantages = fitted_advantages(
            features,
            episodes.rewards,
            trial_ends(episodes.mask),
            episodes.mask,
            cfg.discount,
            cfg.gae_lambda,
        )

        def distribution(index: Tensor | slice) -> Distribution:
            dist = self.policy.action_dist
            return dist.distribution(self.policy.actor(features[:, index]))

        metrics = trial_ppo_update(
            distribution,
            episodes,
            advantages,
            cfg,
            self.optimizer,
            self.policy.actor.parameters(),
            self.generator,
        )
        metrics |= self.train_vae()
        return {**head, **metrics, **successes}

    def elbo(self, trials: Episodes) -> tuple[Tensor, Tensor]:
        """The negative ELBO's (reconstruction, KL) on `trials`, belief and decode steps drawn
        uniformly among each trial's real steps, the latent noise from the VAE generator."""
        cfg, mask = self.config, trials.mask
        mean, log_var = self.beliefs(trials)
        weights = mask.T.cpu()  # [B, T]: draw real steps only
        elbo = min(cfg.elbo_steps, int(mask.sum(0).min()))
        decode = min(cfg.decode_steps, int(mask.sum(0).min()))
        g = self.vae_generator
        elbo_steps = torch.multinomial(weights, elbo, generator=g).T.to(self.device)
        decode_steps = torch.multinomial(weights, decode, generator=g).T.to(self.device)
        noise = torch.randn(elbo, mask.shape[1], cfg.latent_size, generator=g).to(self.device)
        return elbo_losses(
            self.decoder,
            mean,
            log_var,
            trials.observations,
            trials.actions,
            trials.rewards,
            mask,
            elbo_steps,
            decode_steps,
            noise,
        )

    def train_vae(self) -> dict[str, float]:
        """`vae_updates` Adam steps of the encoder and decoder on the negative ELBO of
        `vae_batch_trials` trials from the buffer each."""
        cfg = self.config
        reconstruction = kl = 0.0
        for _ in range(cfg.vae_updates):
            trials = self.buffer.sample(cfg.vae_batch_trials, self.vae_generator).to(self.device)
            rec, divergence = self.elbo(trials)
            self.vae_optimizer.zero_grad()
            (rec + cfg.kl_weight * divergence).backward()
            self.vae_optimizer.step()
            reconstruction += rec.item() / cfg.vae_updates
            kl += divergence.item() / cfg.vae_updates
        return {"vae_reconstruction": reconstruction, "vae_kl": kl}

    def trial_returns(self, tasks: Sequence[Task], episodes: int) -> Tensor:
        """Return of each episode of one trial per task `[episodes, len(tasks)]` (TrialAgent)."""
        return self.trial_outcomes(tasks, episodes).returns

    def trial_outcomes(self, tasks: Sequence[Task], episodes: int) -> EpisodeOutcomes:
        """`trial_returns` and, where the env reports success, each episode's success."""
        return trial_outcomes(self.sample_trials, tasks, episodes, self.config.meta_batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Policy (encoder and actor), task and sampler RNGs, the decoder, both optimizers,
        the generators and the trial buffer."""
        return {
            **policy_tasks_sampler_state(self.policy, self.task_env, self.sampler),
            "decoder": self.decoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "vae_optimizer": self.vae_optimizer.state_dict(),
            "shuffle_rng": self.generator.get_state(),
            "vae_rng": self.vae_generator.get_state(),
            "buffer": self.buffer.state_dict(),
        }

    def export_state_dict(self) -> dict[str, Any]:
        """What evaluation needs (`checkpoints/policy.pt`): `state_dict` without the trial
        buffer and the optimizers, which only training uses."""
        bulky = ("buffer", "optimizer", "vae_optimizer")
        return {k: v for k, v in self.state_dict().items() if k not in bulky}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` (or `export_state_dict`) returned."""
        load_policy_tasks_sampler_state(state, self.policy, self.task_env, self.sampler)
        self.decoder.load_state_dict(state["decoder"])
        self.generator.set_state(state["shuffle_rng"])
        self.vae_generator.set_state(state["vae_rng"])
        if "buffer" in state:  # absent from an export
            self.optimizer.load_state_dict(state["optimizer"])
            self.vae_optimizer.load_state_dict(state["vae_optimizer"])
            self.buffer.load_state_dict(state["buffer"])
