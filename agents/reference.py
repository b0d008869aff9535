"""The non-learning yardsticks of the RL² tables (Duan et al. 2016, Tables 1–2;
docs/architecture.md §5 and benchmarks/README.md).

Bandits: random, greedy, ε-greedy, UCB1 (Auer et al. 2002) and Thompson sampling. Tabular MDPs:
random and PSRL (Osband et al. 2013). Each is a `TrialAgent`: a trial starts from empty counts and
the agent learns from what it saw in the trial's earlier episodes. Every agent acts through the
env that `gymnasium.make` builds, so it meets the same rewards and transitions as trained agents.

All agents share one trial loop: before each episode an agent turns its counts (visits, reward
sums and transitions per state and action) into an action for every step and state of the
episode. A bandit is the one-state, one-step case (its observation [1.0] is that state's one-hot).
Trials of different tasks run side by side, one env each, with numpy bookkeeping across tasks.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from metarl.agents.parts.checks import check_float, check_seed
from metarl.envs import resolve_env_id
from metarl.envs.base import Task
from metarl.envs.checks import check_positive_int

BANDIT = "metarl/Bandit-v0"
TABULAR_MDP = "metarl/TabularMDP-v0"
MAX_BATCH = 1000
"""Most trials run side by side (one env each): bounds the envs an agent keeps open."""


def argmax_random_ties(rng: np.random.Generator, scores: np.ndarray) -> np.ndarray:
    """Index of the largest score along the last axis, ties broken uniformly at random."""
    best = scores == scores.max(axis=-1, keepdims=True)
    return np.argmax(np.where(best, rng.random(scores.shape), -1.0), axis=-1)


def empirical_means(pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """Mean reward of each arm; +inf for arms never pulled, so they come first."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pulls > 0, wins / pulls, np.inf)


def ucb1_scores(pulls: np.ndarray, wins: np.ndarray, c: float) -> np.ndarray:
    """mean_i + c·√(ln t / n_i), t = Σ n_i (c = √2: Auer et al.'s UCB1); untried arms: +inf."""
    t = pulls.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(np.log(np.maximum(t, 1)) / pulls)
    return empirical_means(pulls, wins) + np.where(pulls > 0, bonus, 0.0)


def normal_posterior(
    sums: np.ndarray, visits: np.ndarray, prior_mean: float, prior_std: float, noise_std: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of μ from `visits` rewards ~ N(μ, noise²) summing to `sums`, with
    μ ~ N(prior_mean, prior_std²); written without precisions so prior_std = 0 is allowed."""
    prior_var, noise_var = prior_std**2, noise_std**2
    denominator = noise_var + visits * prior_var
    mean = (noise_var * prior_mean + prior_var * sums) / denominator
    return mean, np.sqrt(prior_var * noise_var / denominator)


def sample_dirichlet(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet(alpha[..., :]) draw per row: normalized Gamma(alpha_i) draws (numpy's
    `dirichlet` takes only one alpha vector)."""
    gammas = rng.standard_gamma(alpha)
    return gammas / gammas.sum(axis=-1, keepdims=True)


def greedy_plan(means: np.ndarray, transitions: np.ndarray, horizon: int) -> np.ndarray:
    """Optimal actions `[horizon, B, S]` of finite-horizon MDPs `means [B, S, A]`,
    `transitions [B, S, A, S]`, by value iteration from the last step back."""
    plan = np.empty((horizon, *means.shape[:2]), dtype=np.int64)
    values = np.zeros(means.shape[:2])
    for step in reversed(range(horizon)):
        q = means + np.einsum("bsan,bn->bsa", transitions, values)
        plan[step] = q.argmax(axis=-1)
        values = q.max(axis=-1)
    return plan


@dataclass
class Counts:
    """What each trial has seen so far, per task (B), state (S) and action (A)."""

    visits: np.ndarray
    """[B, S, A] times each action was taken in each state."""
    reward_sums: np.ndarray
    """[B, S, A] sum of the rewards those times."""
    transitions: np.ndarray
    """[B, S, A, S] times each next state followed."""

    @classmethod
    def zeros(cls, tasks: int, states: int, actions: int) -> Counts:
        """Empty counts: the start of a trial."""
        return cls(
            np.zeros((tasks, states, actions)),
            np.zeros((tasks, states, actions)),
            np.zeros((tasks, states, actions, states)),
        )

    def add(
        self,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
    ) -> None:
        """Count one step of every trial (each argument is `[B]`: one entry per task)."""
        task = np.arange(len(states))
        self.visits[task, states, actions] += 1
        self.reward_sums[task, states, actions] += rewards
        self.transitions[task, states, actions, next_states] += 1


@dataclass
class ReferenceConfig:
    """Settings every reference agent has (random and greedy need no others)."""

    seed: int = 0
    """Seeds the agent's choices and, through per-trial env seeds, the rewards and transitions;
    an integer in [0, 2**32)."""

    def __post_init__(self) -> None:
        """Check `seed`. The reference configs' messages name the field first ("seed must
        ..."), as `metarl evaluate --agent` has always shown them."""
        check_seed("seed", self.seed, label="seed")


class ReferenceAgent(ABC):
    """A trial agent with no meta-training: it plans each episode from the trial's counts."""

    supported_envs: tuple[str, ...]

    def __init__(
        self, env: str, config: ReferenceConfig, *, env_kwargs: dict | None = None
    ) -> None:
        """`env`: an id or short name of one of `supported_envs` (`env_kwargs` go to
        `gymnasium.make`); the agent's choices draw from an RNG seeded with `config.seed`."""
        self.env_id = resolve_env_id(env)
        if self.env_id not in self.supported_envs:
            raise ValueError(
                f"{type(self).__name__} supports only {', '.join(self.supported_envs)}, "
                f"got {self.env_id}"
            )
        self.config = config
        self.env_kwargs = dict(env_kwargs or {})
        self.rng = np.random.default_rng(config.seed)
        self._envs = [gym.make(self.env_id, **self.env_kwargs)]
        self.num_states = self._envs[0].observation_space.shape[0]
        self.num_actions = int(self._envs[0].action_space.n)
        self.horizon = self._envs[0].spec.max_episode_steps

    @abstractmethod
    def plan(self, counts: Counts) -> np.ndarray:
        """Actions `[horizon, B, S]` for the next episode of each trial: the action at step h
        in state s."""

    def trial_returns(self, tasks: Sequence[Task], episodes: int) -> Tensor:
        """Return of episode i of one trial on task j, `[episodes, len(tasks)]` (TrialAgent)."""
        episodes = check_positive_int("episodes", episodes)
        returns = np.empty((episodes, len(tasks)))
        for start in range(0, len(tasks), MAX_BATCH):
            batch = tasks[start : start + MAX_BATCH]
            returns[:, start : start + len(batch)] = self._run_trials(batch, episodes)
        return torch.from_numpy(returns).float()

    def _run_trials(self, tasks: Sequence[Task], episodes: int) -> np.ndarray:
        """Returns `[episodes, B]` of one trial per task, run side by side."""
        while len(self._envs) < len(tasks):
            self._envs.append(gym.make(self.env_id, **self.env_kwargs))
        envs = self._envs[: len(tasks)]
        for env, task, seed in zip(
            envs, tasks, self.rng.integers(2**32, size=len(tasks)), strict=True
        ):
            env.reset(seed=int(seed), options={"task": task})
        counts = Counts.zeros(len(tasks), self.num_states, self.num_actions)
        returns = np.zeros((episodes, len(tasks)))
        for episode in range(episodes):
            plan = self.plan(counts)
            states = np.stack([env.reset()[0] for env in envs]).argmax(axis=1)  # one-hot -> index
            for step in range(self.horizon):
                actions = plan[step, np.arange(len(envs)), states]
                results = [env.step(int(a)) for env, a in zip(envs, actions, strict=True)]
                if any((r[2] or r[3]) != (step == self.horizon - 1) for r in results):
                    raise ValueError(
                        f"an episode of {self.env_id} did not last exactly its {self.horizon} "
                        "steps: the reference agents plan fixed-length episodes"
                    )
                next_states = np.stack([r[0] for r in results]).argmax(axis=1)
                rewards = np.array([r[1] for r in results], dtype=np.float64)
                counts.add(states, actions, rewards, next_states)
                returns[episode] += rewards
                states = next_states
        return returns

    def close(self) -> None:
        """Close the agent's envs."""
        for env in self._envs:
            env.close()
        self._envs.clear()


class RandomAgent(ReferenceAgent):
    """Uniformly random actions: the floor of every table."""

    supported_envs = (BANDIT, TABULAR_MDP)

    def plan(self, counts: Counts) -> np.ndarray:
        """An independent uniform action for every step and state."""
        shape = (self.horizon, *counts.visits.shape[:2])
        return self.rng.integers(self.num_actions, size=shape)


class BanditAgent(ReferenceAgent):
    """A k-armed bandit agent: one state, one pull per episode; subclasses pick the arm."""

    supported_envs = (BANDIT,)

    def plan(self, counts: Counts) -> np.ndarray:
        """The single step's arm, from the pulls and wins of the one state."""
        return self.choose(counts.visits[:, 0], counts.reward_sums[:, 0])[None, :, None]

    @abstractmethod
    def choose(self, pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
        """The arm `[B]` to pull next, given each arm's pulls and wins so far `[B, k]`."""


class GreedyAgent(BanditAgent):
    """The arm of highest empirical mean; untried arms first; ties uniformly at random."""

    def choose(self, pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
        """The argmax of the empirical means."""
        return argmax_random_ties(self.rng, empirical_means(pulls, wins))


@dataclass
class EpsilonGreedyConfig(ReferenceConfig):
    """ε-greedy's exploration rate."""

    epsilon: float = 0.1
    """Chance of a uniformly random arm at each pull, in [0, 1]; otherwise the greedy arm."""

    def __post_init__(self) -> None:
        """Check `seed`, and that `epsilon` is a number in [0, 1]."""
        super().__post_init__()
        check_float("epsilon", self.epsilon, 0, 1, label="epsilon")


class EpsilonGreedyAgent(GreedyAgent):
    """With chance ε a uniformly random arm, else the greedy one (untried arms first)."""

    def choose(self, pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
        """Per trial: with chance ε a uniformly random arm, else the greedy arm."""
        explore = self.rng.random(len(pulls)) < self.config.epsilon
        random_arms = self.rng.integers(pulls.shape[-1], size=len(pulls))
        return np.where(explore, random_arms, super().choose(pulls, wins))


@dataclass
class UCB1Config(ReferenceConfig):
    """UCB1's exploration coefficient and optional prior pseudo-counts."""

    c: float = math.sqrt(2)
    """Bonus scale, finite and >= 0: score = mean_i + c·√(ln t / n_i); √2 is Auer et al.'s
    UCB1, 0 greedy."""
    alpha: float = 0.0
    """Pseudo-wins, finite and >= 0, that every arm's counts start from (a Beta(alpha, beta)
    prior)."""
    beta: float = 0.0
    """Pseudo-losses, finite and >= 0. With alpha = beta = 0 (standard UCB1) every arm is
    pulled once first; with a prior no arm has to be, which a short trial of many arms needs:
    after trying all 50 arms, 100 pulls average at most 25 + 50·50/51 ≈ 74."""

    def __post_init__(self) -> None:
        """Check `seed`, and that `c`, `alpha` and `beta` are finite and >= 0."""
        super().__post_init__()
        for name in ("c", "alpha", "beta"):
            check_float(name, getattr(self, name), 0, label=name)


class UCB1Agent(BanditAgent):
    """UCB1 on the counts plus the prior's pseudo-counts: the arm of highest upper confidence
    bound; untried arms first when there is no prior; ties uniformly at random."""

    def choose(self, pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
        """The argmax of the UCB1 scores of counts plus pseudo-counts."""
        prior_pulls = self.config.alpha + self.config.beta
        scores = ucb1_scores(pulls + prior_pulls, wins + self.config.alpha, self.config.c)
        return argmax_random_ties(self.rng, scores)


@dataclass
class ThompsonConfig(ReferenceConfig):
    """Thompson sampling's Beta(alpha, beta) prior on every arm's p (1, 1: the tasks' U[0, 1])."""

    alpha: float = 1.0
    """Prior pseudo-count of wins, finite and > 0."""
    beta: float = 1.0
    """Prior pseudo-count of losses, finite and > 0."""

    def __post_init__(self) -> None:
        """Check `seed`, and that `alpha` and `beta` are finite and > 0."""
        super().__post_init__()
        for name in ("alpha", "beta"):
            check_float(name, getattr(self, name), 0, low_open=True, label=name)


class ThompsonAgent(BanditAgent):
    """Thompson sampling: draw each p from its Beta posterior, pull the arm of the largest draw
    (continuous draws tie with probability 0, so a plain argmax)."""

    def choose(self, pulls: np.ndarray, wins: np.ndarray) -> np.ndarray:
        """The argmax of one draw per arm from Beta(alpha + wins, beta + losses)."""
        draws = self.rng.beta(self.config.alpha + wins, self.config.beta + pulls - wins)
        return draws.argmax(axis=-1)


@dataclass
class PSRLConfig(ReferenceConfig):
    """PSRL's reward model; its priors are the env's own task distribution."""

    reward_noise_std: float = 1.0
    """Std of the reward around μ_sa that PSRL assumes known, finite and > 0: the env's
    default. Set it to the env's `reward_noise_std` when that is changed."""

    def __post_init__(self) -> None:
        """Check `seed`, and that `reward_noise_std` is finite and > 0."""
        super().__post_init__()
        check_float(
            "reward_noise_std", self.reward_noise_std, 0, low_open=True, label="reward_noise_std"
        )


class PSRLAgent(ReferenceAgent):
    """Posterior sampling for RL (Osband et al. 2013): each episode, draw an MDP from the posterior
    (Normal on μ_sa, Dirichlet on P(·|s,a), the env's priors) and follow its optimal plan."""

    supported_envs = (TABULAR_MDP,)

    def __init__(self, env: str, config: PSRLConfig, *, env_kwargs: dict | None = None) -> None:
        """A `ReferenceAgent` whose prior is the env's own task distribution."""
        super().__init__(env, config, env_kwargs=env_kwargs)
        self.prior = self._envs[0].unwrapped.task_distribution
        """The env's `RandomMDP`: prior mean and std of μ_sa, Dirichlet α of P(·|s,a)."""

    def plan(self, counts: Counts) -> np.ndarray:
        """The optimal plan of one MDP drawn from each trial's posterior."""
        mean, std = normal_posterior(
            counts.reward_sums,
            counts.visits,
            self.prior.reward_mean,
            self.prior.reward_mean_std,
            self.config.reward_noise_std,
        )
        means = mean + std * self.rng.standard_normal(mean.shape)
        transitions = sample_dirichlet(self.rng, self.prior.dirichlet_alpha + counts.transitions)
        return greedy_plan(means, transitions, self.horizon)


@dataclass(frozen=True)
class ReferenceSpec:
    """How `metarl evaluate --agent NAME` builds a reference agent, and on which envs."""

    agent_class: type[ReferenceAgent]
    config_class: type[ReferenceConfig]
    description: str

    @property
    def envs(self) -> tuple[str, ...]:
        """The env ids the agent supports."""
        return self.agent_class.supported_envs


REFERENCE_AGENTS: dict[str, ReferenceSpec] = {
    "random": ReferenceSpec(RandomAgent, ReferenceConfig, "uniformly random actions"),
    "greedy": ReferenceSpec(
        GreedyAgent, ReferenceConfig, "the arm of highest empirical mean, untried arms first"
    ),
    "epsilon-greedy": ReferenceSpec(
        EpsilonGreedyAgent, EpsilonGreedyConfig, "greedy, with a random arm at rate ε"
    ),
    "ucb1": ReferenceSpec(UCB1Agent, UCB1Config, "UCB1 upper confidence bounds (Auer et al. 2002)"),
    "thompson": ReferenceSpec(
        ThompsonAgent, ThompsonConfig, "Thompson sampling from Beta posteriors"
    ),
    "psrl": ReferenceSpec(
        PSRLAgent, PSRLConfig, "posterior sampling for RL on tabular MDPs (Osband et al. 2013)"
    ),
}
