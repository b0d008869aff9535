"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning").

The learning algorithm lives in the hidden state of a GRU policy that sees (observation,
previous action, previous reward, done). A trial is `episodes_per_trial` episodes of one task with
the hidden state carried across them and reset between trials. The outer RL algorithm (TRPO as in
the paper, or PPO) treats a whole trial as one episode, so that the reward of later episodes
credits the exploration done in earlier ones (§2.2 of the paper).

GAE bootstraps from the linear feature baseline by default, or, with `value_function` 'gru',
from a GRU value function on the policy's inputs (`agents/parts/recurrent_value.py`), the
learned value function the paper pairs with λ = 0.3.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from metarl.agents.parts.checks import (
    check_choice,
    check_float,
    check_int,
    check_optional_int,
)
from metarl.agents.parts.config import AgentConfig, OwnsSampler
from metarl.agents.parts.recurrent_value import (
    VALUE_FUNCTIONS,
    GRUValueNetwork,
    RecurrentValue,
)
from metarl.agents.parts.seeding import InitRNG
from metarl.agents.parts.state import (
    load_policy_tasks_sampler_state,
    policy_tasks_sampler_state,
)
from metarl.agents.parts.trial_ppo import TrialPPOConfig, trial_ppo_update
from metarl.agents.parts.trials import trial_ends, trial_metrics, trial_outcomes
from metarl.agents.parts.trust_region import TrustRegionConfig, trust_region_update
from metarl.backend.advantages import discounted_returns, fitted_advantages, gae, normalize
from metarl.backend.device import adam
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task
from metarl.policies import (
    Params,
    SNAILPolicy,
    TransformerPolicy,
    flat_obs_dim,
    make_recurrent_policy,
    unroll,
)
from metarl.sampling.episodes import EpisodeOutcomes, Episodes

Previous = tuple[Tensor, Tensor, Tensor]  # previous (action, reward, done), each [T, B, ...]


@dataclass
class RL2Config(AgentConfig):
    """What RL² needs whatever its outer optimizer (defaults: the paper's bandit setting, with a
    smaller batch and the linear baseline at λ = 1; the paper's λ = 0.3 with a learned value
    function is `value_function` 'gru' with `gae_lambda` 0.3)."""

    meta_batch_size: int = 100
    """Trials per iteration, each on a freshly drawn task, >= 1."""
    episodes_per_trial: int = 10
    """Episodes of one task per trial (n of the paper), >= 1: the hidden state carries across
    them."""
    hidden_size: int = 256
    """GRU hidden units (the paper's 256), >= 1."""
    policy: str = "gru"
    """The policy's network over the trial: 'gru' (the paper's), 'snail' (Mishra et al. 2018:
    two TC blocks of dilated causal convolutions spanning the trial, then causal attention) or
    'transformer' (a small causal Transformer); the last two attend over every earlier step of
    the trial (`metarl.policies.attention`)."""
    transformer_width: int = 64
    """'transformer': units per block (even, divisible by `transformer_heads`), >= 2."""
    transformer_blocks: int = 2
    """'transformer': pre-norm Transformer blocks, >= 1."""
    transformer_heads: int = 4
    """'transformer': attention heads per block, >= 1."""
    snail_width: int = 32
    """'snail': width of the input embedding, >= 1."""
    snail_filters: int = 16
    """'snail': filters of each dense block of the two TC blocks, >= 1."""
    snail_key_size: int = 32
    """'snail': key (and query) size of the attention block, >= 1."""
    snail_value_size: int = 32
    """'snail': value size of the attention block, >= 1."""
    gae_lambda: float = 1.0
    """GAE λ, in [0, 1]. The linear baseline (`value_function` 'linear') sees only the
    observation and the step of the trial, which only λ = 1 leaves unbiased; the paper's 0.3
    pairs with a learned value function ('gru')."""
    value_function: str = "linear"
    """What GAE bootstraps from: 'linear', the linear feature baseline on (observation, step of
    the trial), refitted to each batch's returns; or 'gru', a GRU on the policy's inputs
    unrolled over whole trials and fitted to the trials' discounted returns after each update
    (the `value_*` keys), as the paper's value function."""
    value_hidden_size: int = 64
    """GRU units of the 'gru' value function, >= 1."""
    value_learning_rate: float = 1e-3
    """Adam step size of the 'gru' value function, finite and > 0."""
    value_epochs: int = 5
    """Passes over each iteration's trials when fitting the 'gru' value function, >= 1."""
    value_minibatch_trials: int = 25
    """Trials per Adam step of the 'gru' value function, >= 1 (one minibatch of all when above
    `meta_batch_size`)."""

    def __post_init__(self) -> None:
        """Check the shared fields, then RL²'s."""
        AgentConfig.__post_init__(self)
        for name in (
            "meta_batch_size",
            "episodes_per_trial",
            "hidden_size",
            "value_hidden_size",
            "value_epochs",
            "value_minibatch_trials",
            "transformer_blocks",
            "transformer_heads",
            "snail_width",
            "snail_filters",
            "snail_key_size",
            "snail_value_size",
        ):
            check_int(name, getattr(self, name))
        check_int("transformer_width", self.transformer_width, 2)
        check_choice("policy", self.policy, TRIAL_POLICIES)
        width, heads = self.transformer_width, self.transformer_heads
        if self.policy == "transformer" and (width % 2 or width % heads):
            raise ValueError(
                "transformer_width must be even (its sinusoidal positions) and divisible by "
                f"transformer_heads, got {width} and {heads}"
            )
        check_float("gae_lambda", self.gae_lambda, 0, 1)
        check_choice("value_function", self.value_function, VALUE_FUNCTIONS)
        check_float("value_learning_rate", self.value_learning_rate, 0, low_open=True)


@dataclass
class RL2TRPOConfig(RL2Config, TrustRegionConfig):
    """RL² with the paper's outer loop, TRPO (its trust-region fields)."""

    fisher_trials: int | None = None
    """Trials (a random subset of the batch) whose KL curvature the conjugate gradient uses,
    in [1, meta_batch_size], as rllab's TRPO subsamples for recurrent policies; None uses all.
    Each Fisher product back-propagates twice through the whole unroll, the bulk of an
    iteration on long trials."""

    def __post_init__(self) -> None:
        """Check RL²'s fields, the trust region's, and `fisher_trials`."""
        RL2Config.__post_init__(self)
        TrustRegionConfig.__post_init__(self)
        check_optional_int(
            "fisher_trials",
            self.fisher_trials,
            1,
            self.meta_batch_size,
            none_means="all trials",
            high_name="meta_batch_size",
        )


@dataclass
class RL2PPOConfig(RL2Config, TrialPPOConfig):
    """RL² with PPO as the outer loop; minibatches are whole trials (the GRU needs them)."""

    def __post_init__(self) -> None:
        """Check RL²'s fields, then PPO's."""
        RL2Config.__post_init__(self)
        TrialPPOConfig.__post_init__(self)


TRIAL_POLICIES = ("gru", "snail", "transformer")


def trial_policy(cfg: RL2Config, sampler: Any) -> nn.Module:
    """The config's policy over trials for the sampler's spaces; SNAIL's TC blocks span the
    sampler's longest trial (`episodes_per_trial` × horizon steps)."""
    obs, action = sampler.observation_space, sampler.action_space
    if cfg.policy == "gru":
        return make_recurrent_policy(obs, action, cfg.hidden_size)
    if cfg.policy == "transformer":
        return TransformerPolicy(
            flat_obs_dim(obs),
            action,
            cfg.transformer_width,
            cfg.transformer_blocks,
            cfg.transformer_heads,
        )
    return SNAILPolicy(
        flat_obs_dim(obs),
        action,
        cfg.episodes_per_trial * sampler.horizon,
        cfg.snail_width,
        cfg.snail_filters,
        cfg.snail_key_size,
        cfg.snail_value_size,
    )


class RL2(OwnsSampler, ABC):
    """RL² on a metarl task env; subclasses supply the outer `update` (TRPO or PPO).

    env: a metarl task env id or short name; env_kwargs go to `gymnasium.make`.
    """

    config: RL2Config

    def __init__(
        self, env: str, config: RL2Config, *, env_kwargs: dict[str, Any] | None = None
    ) -> None:
        """The sampler of `meta_batch_size` envs of `env` (`env_kwargs` go to `gymnasium.make`),
        the task source, the GRU policy and, with `value_function` 'gru', the GRU value function
        (from the policy's init stream, after it), all seeded by `config.seed`."""
        self.config = cfg = config
        env_kwargs = env_kwargs or {}
        self.sampler = cfg.make_sampler(env, cfg.meta_batch_size, env_kwargs)
        self.open_task_source(env, env_kwargs, cfg.seed)
        self.device = cfg.torch_device
        self.progress: Progress = SILENT  # the trainer's nested bar, when it trains this agent
        self.value: RecurrentValue | None = None  # None: the linear baseline, fitted per batch
        with InitRNG(cfg.seed):  # initialized on the CPU: the same weights on every device
            self.policy = trial_policy(cfg, self.sampler)
            if cfg.value_function == "gru":
                network = GRUValueNetwork(
                    self.sampler.observation_space.shape[0],
                    self.sampler.action_space,
                    cfg.value_hidden_size,
                )
        self.policy.to(self.device)
        if cfg.value_function == "gru":
            self.value = RecurrentValue(
                network,
                learning_rate=cfg.value_learning_rate,
                epochs=cfg.value_epochs,
                minibatch_trials=cfg.value_minibatch_trials,
                seed=cfg.seed,
                device=self.device,
            )

    def sample_trials(self, tasks: Sequence[Task], episodes_per_trial: int) -> Episodes:
        """One trial (column) per task, `episodes_per_trial` episodes each."""
        return self.sampler.sample(self.policy, tasks, 1, episodes_per_trial=episodes_per_trial)

    def distribution(
        self, params: Params | None, observations: Tensor, previous: Previous
    ) -> Distribution:
        """The action distribution at every step of whole trials, batch shape `[T, B]`."""
        return self.policy.action_dist.distribution(
            unroll(self.policy, params, observations, previous)
        )

    def advantages(self, episodes: Episodes) -> Tensor:
        """Normalized GAE `[T, B]` over whole trials, on the linear baseline of trial time, or
        on the GRU value function as it stands (fitted to earlier batches, not to this one)."""
        cfg, mask = self.config, episodes.mask
        if self.value is None:
            return fitted_advantages(
                episodes.observations,
                episodes.rewards,
                trial_ends(mask),
                mask,
                cfg.discount,
                cfg.gae_lambda,
            )
        values = self.value.predict(episodes.observations, episodes.previous_step_inputs(), mask)
        advantages = gae(episodes.rewards, values, trial_ends(mask), cfg.discount, cfg.gae_lambda)
        return normalize(advantages, mask)

    def fit_value(self, episodes: Episodes) -> dict[str, float]:
        """Fit the GRU value function to the discounted returns of `episodes`' whole trials;
        its metrics (`RecurrentValue.fit`), none with the linear baseline."""
        if self.value is None:
            return {}
        mask = episodes.mask
        returns = discounted_returns(episodes.rewards, trial_ends(mask), self.config.discount)
        return self.value.fit(episodes.observations, episodes.previous_step_inputs(), returns, mask)

    @abstractmethod
    def update(self, episodes: Episodes, advantages: Tensor) -> dict[str, float]:
        """Improve the policy on `episodes` (sampled with it); return the update's metrics."""

    def train_step(self) -> dict[str, float]:
        """One iteration: a trial on each of `meta_batch_size` new tasks, then one update, then
        (with `value_function` 'gru') the value function's fit on the same trials.

        Metrics: `trial_return` (total reward per trial, the paper's measure), mean episode
        `return`, `first_episode_return` and `last_episode_return` of the trials (their gap is
        the adaptation), env steps, the update's own and the value function's fit's.
        """
        cfg = self.config
        tasks = self.task_env.sample_tasks(cfg.meta_batch_size)
        episodes = self.sample_trials(tasks, cfg.episodes_per_trial)
        head, successes = trial_metrics(episodes, cfg.episodes_per_trial)
        episodes = episodes.to(self.device)
        metrics = self.update(episodes, self.advantages(episodes))
        metrics |= self.fit_value(episodes)
        return {**head, **metrics, **successes}

    def trial_returns(self, tasks: Sequence[Task], episodes: int) -> Tensor:
        """Return of each episode of one trial per task `[episodes, len(tasks)]` (TrialAgent)."""
        return self.trial_outcomes(tasks, episodes).returns

    def trial_outcomes(self, tasks: Sequence[Task], episodes: int) -> EpisodeOutcomes:
        """`trial_returns` and, where the env reports success, each episode's success (1 or 0)
        in the same shape."""
        return trial_outcomes(self.sample_trials, tasks, episodes, self.config.meta_batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Policy, the task and sampler RNG states and, with `value_function` 'gru', the value
        function's network, optimizer and RNG (subclasses add their own)."""
        state = policy_tasks_sampler_state(self.policy, self.task_env, self.sampler)
        if self.value is not None:
            state["value_function"] = self.value.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned. A checkpoint without a value function (written
        with the linear baseline, as every one before `value_function` existed) leaves a 'gru'
        value function as built, so a linear run's policy can start a 'gru' one."""
        load_policy_tasks_sampler_state(state, self.policy, self.task_env, self.sampler)
        if self.value is not None and "value_function" in state:
            self.value.load_state_dict(state["value_function"])


class RL2TRPO(RL2):
    """RL² with a TRPO step per iteration, the paper's choice (`rl2-trpo`)."""

    def __init__(
        self, env: str, config: RL2TRPOConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """`config` defaults to `RL2TRPOConfig()`; adds the generator of Fisher subsets."""
        super().__init__(env, config or RL2TRPOConfig(), env_kwargs=env_kwargs)
        self.generator = torch.Generator().manual_seed(self.config.seed)  # Fisher subsets

    def update(self, episodes: Episodes, advantages: Tensor) -> dict[str, float]:
        """One trust-region step; metrics of `trust_region_update`."""
        cfg, obs = self.config, episodes.observations
        previous = episodes.previous_step_inputs()
        fisher = None
        if cfg.fisher_trials and cfg.fisher_trials < obs.shape[1]:
            subset = torch.randperm(obs.shape[1], generator=self.generator)[: cfg.fisher_trials]
            subset = subset.to(obs.device)
            sub_previous = tuple(x[:, subset] for x in previous)
            fisher = (
                lambda params: unroll(self.policy, params, obs[:, subset], sub_previous),
                episodes.mask[:, subset],
            )
        return trust_region_update(
            self.policy,
            lambda params: unroll(self.policy, params, obs, previous),
            episodes.actions,
            episodes.log_probs,
            advantages,
            episodes.mask,
            cfg,
            fisher,
            progress=self.progress,
        )

    def state_dict(self) -> dict[str, Any]:
        """RL²'s state plus the Fisher-subset RNG."""
        return {**super().state_dict(), "fisher_rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        super().load_state_dict(state)
        if "fisher_rng" in state:  # absent from checkpoints written before fisher_trials existed
            self.generator.set_state(state["fisher_rng"])


class RL2PPO(RL2):
    """RL² with PPO epochs over minibatches of whole trials (`rl2-ppo`)."""

    config: RL2PPOConfig

    def __init__(
        self, env: str, config: RL2PPOConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """`config` defaults to `RL2PPOConfig()`; adds Adam and the minibatch-shuffling
        generator."""
        super().__init__(env, config or RL2PPOConfig(), env_kwargs=env_kwargs)
        self.optimizer = adam(self.policy.parameters(), self.config.learning_rate, self.device)
        self.generator = torch.Generator().manual_seed(self.config.seed)

    def update(self, episodes: Episodes, advantages: Tensor) -> dict[str, float]:
        """PPO epochs over minibatches of whole trials (`trial_ppo_update`'s metrics)."""
        previous = episodes.previous_step_inputs()

        def distribution(index: Tensor | slice) -> Distribution:
            inputs = tuple(x[:, index] for x in previous)
            return self.distribution(None, episodes.observations[:, index], inputs)

        return trial_ppo_update(
            distribution,
            episodes,
            advantages,
            self.config,
            self.optimizer,
            self.policy.parameters(),
            self.generator,
        )

    def state_dict(self) -> dict[str, Any]:
        """RL²'s state plus the optimizer and the minibatch shuffling RNG."""
        return {
            **super().state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "shuffle_rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["shuffle_rng"])
