"""Reference agents: exact expected bandit rewards, PSRL's planning and learning, the contract."""

import itertools
import math
import re
from functools import cache

import numpy as np
import pytest
import torch

from metarl.agents import reference
from metarl.agents.reference import (
    REFERENCE_AGENTS,
    EpsilonGreedyConfig,
    PSRLConfig,
    ThompsonConfig,
    UCB1Config,
    greedy_plan,
    normal_posterior,
)
from metarl.envs import make

# Arms far apart: a wrong bonus, prior or tie rule moves the expected reward by >= 0.3.
PROBS = (0.2, 0.9)
PULLS = 10
TRIALS = 3000

# Gauss–Legendre on [0, 1]: exact for the polynomial integrands of integer Beta parameters.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
X, W = (_NODES + 1) / 2, _WEIGHTS / 2


def beta_pdf(x, a, b):
    return x ** (a - 1) * (1 - x) ** (b - 1) * math.gamma(a + b) / (math.gamma(a) * math.gamma(b))


def beta_cdf(x, a, b):
    """I_x(a, b) for integer a, b: P(Binomial(a + b - 1, x) >= a)."""
    m = a + b - 1
    return sum(math.comb(m, j) * x**j * (1 - x) ** (m - j) for j in range(a, m + 1))


def prefer_first(score0, score1):
    """P(arm 0) when the higher score wins and ties are a fair coin."""
    return 1.0 if score0 > score1 else 0.0 if score0 < score1 else 0.5


def greedy_policy(pulls, wins):
    """P(arm 0) of greedy on two arms: the higher empirical mean, untried arms first."""
    means = [w / n if n else math.inf for n, w in zip(pulls, wins, strict=True)]
    return prefer_first(*means)


def epsilon_greedy_policy(epsilon):
    return lambda pulls, wins: epsilon / 2 + (1 - epsilon) * greedy_policy(pulls, wins)


def ucb1_policy(c, alpha=0, beta=0):
    """P(arm 0) of UCB1 on counts that start at alpha pseudo-wins and beta pseudo-losses."""

    def policy(pulls, wins):
        counts = [(n + alpha + beta, w + alpha) for n, w in zip(pulls, wins, strict=True)]
        t = sum(n for n, _ in counts)
        scores = [w / n + c * math.sqrt(math.log(t) / n) if n else math.inf for n, w in counts]
        return prefer_first(*scores)

    return policy


def thompson_policy(alpha, beta):
    """P(draw of arm 0 > draw of arm 1) = ∫ f_0(x) F_1(x) dx under the Beta posteriors."""

    def policy(pulls, wins):
        (n0, n1), (w0, w1) = pulls, wins
        a0, b0, a1, b1 = alpha + w0, beta + n0 - w0, alpha + w1, beta + n1 - w1
        return float(np.sum(W * beta_pdf(X, a0, b0) * beta_cdf(X, a1, b1)))

    return policy


def expected_total_reward(probs, n, policy):
    """E[reward of n pulls] by recursion over the states (pulls, wins); `policy` gives P(arm 0)."""

    @cache
    def value(pulls, wins, left):
        if left == 0:
            return 0.0
        p_first = policy(pulls, wins)
        total = 0.0
        for arm, p_arm in ((0, p_first), (1, 1 - p_first)):
            pulled = tuple(n + (i == arm) for i, n in enumerate(pulls))
            won = tuple(w + (i == arm) for i, w in enumerate(wins))
            q = probs[arm]
            total += p_arm * (
                q * (1 + value(pulled, won, left - 1)) + (1 - q) * value(pulled, wins, left - 1)
            )
        return total

    return value((0, 0), (0, 0), n)


def sample_tasks(env, n):
    env = make(env).unwrapped
    env.reset(seed=0)
    return env.sample_tasks(n)


def build(name, env="bandit", env_kwargs=None, **config):
    spec = REFERENCE_AGENTS[name]
    return spec.agent_class(env, spec.config_class(**config), env_kwargs=env_kwargs)


@pytest.mark.parametrize(
    ("name", "config", "policy"),
    [
        ("random", {}, lambda pulls, wins: 0.5),
        ("greedy", {}, greedy_policy),
        ("epsilon-greedy", {"epsilon": 0.5}, epsilon_greedy_policy(0.5)),
        ("ucb1", {}, ucb1_policy(math.sqrt(2))),
        ("ucb1", {"c": 0.5}, ucb1_policy(0.5)),
        ("ucb1", {"c": 1.0, "alpha": 1, "beta": 3}, ucb1_policy(1.0, 1, 3)),
        ("thompson", {}, thompson_policy(1, 1)),
        ("thompson", {"alpha": 4, "beta": 1}, thompson_policy(4, 1)),
    ],
)
def test_mean_reward_on_two_arms_matches_the_exact_expectation(name, config, policy):
    """Monte-Carlo mean within 4 standard errors of the exact expectation (a false alarm has
    chance 6e-5). Wrong variants land 7 to 150 standard errors away: UCB1's bonus ×√2 or /t,
    UCB1 or Thompson ignoring its prior, swapped wins and losses, ties always to the first arm."""
    expected = expected_total_reward(PROBS, PULLS, policy)
    agent = build(name, env_kwargs={"k": 2}, **config)
    totals = agent.trial_returns([{"probs": list(PROBS)}] * TRIALS, PULLS).double().sum(0)
    agent.close()
    standard_error = totals.std().item() / math.sqrt(TRIALS)
    assert abs(totals.mean().item() - expected) < 4 * standard_error, (expected, standard_error)


def test_the_exact_reference_agrees_with_closed_forms():
    assert expected_total_reward(PROBS, PULLS, lambda pulls, wins: 0.5) == pytest.approx(5.5)
    # After one win of arm 1, its posterior is Beta(α + 1, β) with CDF x^(α+1) when β = 1, so
    # P(X_0 > X_1) = E[X_0^(α+1)] with X_0 ~ Beta(α, 1): α / (2α + 1).
    assert thompson_policy(1, 1)((0, 1), (0, 1)) == pytest.approx(1 / 3)
    assert thompson_policy(4, 1)((0, 1), (0, 1)) == pytest.approx(4 / 9)


def test_greedy_plan_is_optimal_among_all_policies_of_a_small_mdp():
    rng = np.random.default_rng(0)
    states, actions, horizon = 2, 2, 3
    means = rng.normal(size=(1, states, actions))
    transitions = rng.dirichlet(np.ones(states), size=(1, states, actions))

    def value(policy):  # policy[h][s]; exact expected return from state 0
        occupancy, total = np.eye(states)[0], 0.0
        for h in range(horizon):
            taken = np.array(policy[h])
            total += occupancy @ means[0, np.arange(states), taken]
            occupancy = occupancy @ transitions[0, np.arange(states), taken]
        return total

    tables = itertools.product(itertools.product(range(actions), repeat=states), repeat=horizon)
    best = max(value(policy) for policy in tables)
    assert value(greedy_plan(means, transitions, horizon)[:, 0]) == pytest.approx(best)


def test_normal_posterior_is_the_conjugate_update():
    sums, visits = np.array([3.0, 0.0, -2.0]), np.array([2.0, 0.0, 8.0])
    mean, std = normal_posterior(sums, visits, prior_mean=1.0, prior_std=2.0, noise_std=0.5)
    precision = 1 / 2.0**2 + visits / 0.5**2
    np.testing.assert_allclose(std, precision**-0.5)
    np.testing.assert_allclose(mean, (1.0 / 2.0**2 + sums / 0.5**2) / precision)
    # A point-mass prior never moves.
    mean, std = normal_posterior(sums, visits, prior_mean=1.0, prior_std=0.0, noise_std=1.0)
    np.testing.assert_allclose(mean, 1.0)
    np.testing.assert_allclose(std, 0.0)


def test_psrl_beats_random_and_improves_within_the_trial():
    tasks = sample_tasks("tabular-mdp", 200)
    psrl = build("psrl", "tabular-mdp").trial_returns(tasks, 10).double()
    random = build("random", "tabular-mdp").trial_returns(tasks, 10).double()
    gain = psrl.sum(0) - random.sum(0)
    assert gain.mean() > 20 and gain.mean() > 4 * gain.std() / math.sqrt(len(tasks))
    late_minus_first = psrl[5:].mean(0) - psrl[0]
    assert late_minus_first.mean() > 4 * late_minus_first.std() / math.sqrt(len(tasks))


def test_agents_act_through_the_env_in_batches(monkeypatch):
    monkeypatch.setattr(reference, "MAX_BATCH", 2)
    tasks = [{"probs": [1.0, 0.0, 0.0]}, {"probs": [0.0, 0.0, 0.0]}, {"probs": [1.0, 1.0, 1.0]}]
    returns = build("ucb1", env_kwargs={"k": 3}).trial_returns(tasks, 6)
    assert returns.shape == (6, 3) and returns.dtype == torch.float32
    # Each arm once (untried arms first), then the sure arm of task 0 forever.
    torch.testing.assert_close(returns.sum(0), torch.tensor([4.0, 0.0, 6.0]))


@pytest.mark.parametrize(("name", "env"), [("thompson", "bandit"), ("psrl", "tabular-mdp")])
def test_a_seed_fixes_the_returns(name, env):
    tasks = sample_tasks(env, 20)
    first, second, other = (build(name, env, seed=s).trial_returns(tasks, 5) for s in (1, 1, 2))
    torch.testing.assert_close(first, second)
    assert not torch.equal(first, other)


def test_the_registry_builds_every_agent_on_its_envs_by_short_name():
    assert set(REFERENCE_AGENTS) == {
        "random",
        "greedy",
        "epsilon-greedy",
        "ucb1",
        "thompson",
        "psrl",
    }
    short = {"metarl/Bandit-v0": "bandit", "metarl/TabularMDP-v0": "tabular-mdp"}
    for name, spec in REFERENCE_AGENTS.items():
        for env in spec.envs:
            agent = build(name, short[env])  # the default k = 5 arms
            assert agent.trial_returns(sample_tasks(env, 2), 2).shape == (2, 2)
            agent.close()
    assert REFERENCE_AGENTS["random"].envs == ("metarl/Bandit-v0", "metarl/TabularMDP-v0")


@pytest.mark.parametrize(
    ("name", "env"), [("psrl", "bandit"), ("ucb1", "tabular-mdp"), ("random", "navigation2d")]
)
def test_an_unsupported_env_is_refused_naming_the_supported_ones(name, env):
    supported = REFERENCE_AGENTS[name].envs
    with pytest.raises(ValueError, match=re.escape(supported[0])):
        build(name, env)


@pytest.mark.parametrize(
    ("config_class", "values", "field"),
    [
        (EpsilonGreedyConfig, {"epsilon": 1.5}, "epsilon"),
        (EpsilonGreedyConfig, {"epsilon": -0.1}, "epsilon"),
        (UCB1Config, {"c": -1.0}, "c"),
        (UCB1Config, {"alpha": -1.0}, "alpha"),
        (ThompsonConfig, {"alpha": 0.0}, "alpha"),
        (ThompsonConfig, {"beta": -1.0}, "beta"),
        (PSRLConfig, {"reward_noise_std": 0.0}, "reward_noise_std"),
    ],
)
def test_bad_config_values_are_refused_by_name(config_class, values, field):
    with pytest.raises(ValueError, match=f"^{field} "):
        config_class(**values)


def test_an_episode_longer_than_the_env_allows_is_refused():
    agent = build("greedy", env_kwargs={"k": 2, "max_episode_steps": 3})  # bandits end at 1 step
    with pytest.raises(ValueError, match="exactly its 3 steps"):
        agent.trial_returns([{"probs": [0.5, 0.5]}], 2)


def test_episodes_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="episodes"):
        build("random").trial_returns([{"probs": [0.5] * 5}], 0)
