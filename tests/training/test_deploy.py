"""`metarl.load(run_dir).adapt(env, task, budget)` for every family: the adapted policy acts,
one observation at a time in a plain Gymnasium env, exactly as the batched sampler runs the
same parameters (Navigation2D starts every episode at the origin, so deterministic episodes
replay exactly); RL²'s hidden state after the adaptation episodes is the GRU stepped through
them one step at a time; PEARL acts on a z of the posterior of its adaptation episodes."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from tiny_runs import tiny

import metarl
from metarl.cli import main

TASK = {"goal": [0.3, -0.2]}
HORIZON = 10


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run folder per family, 2 iterations each."""
    folders = {}
    variants = {
        "rl2-trpo-snail": {"policy": "snail"},
        "rl2-trpo-transformer": {"policy": "transformer"},
    }
    names = ("reptile", "maml-trpo", "rl2-trpo", "pearl", "trpo", "oracle", "varibad", *variants)
    for name in names:
        out = tmp_path_factory.mktemp(name)
        agent = "rl2-trpo" if name in variants else name
        values = tiny(agent, horizon=HORIZON, **variants.get(name, {}))
        sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]
        args = ["train", agent, "--env", "navigation2d", "--iterations", "2", "--out", str(out)]
        assert main([*args, *sets]) == 0
        folders[name] = out
    return folders


def task_env():
    env = gym.make("metarl/Navigation2D-v0", max_episode_steps=HORIZON)
    env.unwrapped.set_task(TASK)
    return env


def sampler_returns(agent, policy, params, episodes_per_trial=1):
    """The batched sampler's deterministic returns on TASK (one column)."""
    sampler = getattr(agent, "inner_loop", agent).sampler
    batch = sampler.sample(
        policy, [TASK], 1, params, episodes_per_trial=episodes_per_trial, deterministic=True
    )
    return batch.episode_returns().tolist()


@pytest.mark.parametrize("name", ["reptile", "maml-trpo"])
@pytest.mark.parametrize("budget", [0, 2])
def test_gradient_agents_act_as_the_sampler_runs_their_adapted_parameters(runs, name, budget):
    with metarl.load(runs[name]) as meta:
        assert (meta.family, meta.budget_unit) == ("gradient", "inner steps")
        adapted = meta.adapt("navigation2d", TASK, budget, deterministic=True)
        loop = meta.agent.inner_loop
        assert adapted.adaptation_env_steps == budget * 2 * HORIZON  # steps × episodes × horizon
        if budget:
            theta = dict(loop.policy.named_parameters())
            assert any(not torch.equal(adapted.params[n], theta[n]) for n in theta)
        params = None if adapted.params is None else [adapted.params]
        expected = sampler_returns(meta.agent, loop.policy, params)
        got = adapted.episode(task_env())
    assert got == pytest.approx(expected[0], rel=1e-5)


@pytest.mark.parametrize("name", ["rl2-trpo", "rl2-trpo-snail", "rl2-trpo-transformer", "varibad"])
def test_rl2_carries_its_hidden_state_across_episodes_as_a_trial_does(runs, name):
    # the attention policies' caches and VariBAD's belief carry across episodes as the GRU's
    with metarl.load(runs[name]) as meta:
        assert meta.family == "rl2"
        adapted = meta.adapt(None, TASK, 0, deterministic=True)
        expected = sampler_returns(meta.agent, meta.agent.policy, None, episodes_per_trial=2)
        env = task_env()
        got = [adapted.episode(env), adapted.episode(env)]
    assert got == pytest.approx(expected, rel=1e-5)


def test_rl2_adaptation_ends_in_the_hidden_state_of_stepping_the_gru_through_the_trial(runs):
    with metarl.load(runs["rl2-trpo"]) as meta:
        agent = meta.agent
        captured = []
        sample_trials = agent.sample_trials

        def capturing(tasks, episodes):
            captured.append(sample_trials(tasks, episodes))
            return captured[-1]

        agent.sample_trials = capturing
        adapted = meta.adapt(None, TASK, 2)
        trial = captured[0]
        policy = agent.policy
        hidden = policy.initial_hidden(1)
        action, reward, done = torch.zeros(1, 2), torch.zeros(1), torch.zeros(1)
        with torch.no_grad():
            for t in range(trial.observations.shape[0]):
                _, hidden = policy(trial.observations[t], action, reward, done, hidden)
                action, reward = trial.actions[t], trial.rewards[t].float()
                done = trial.dones[t].float()
    assert adapted.adaptation_env_steps == 2 * HORIZON
    state = adapted._state
    torch.testing.assert_close(state[0], hidden, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state[1], action)
    torch.testing.assert_close(state[2], reward)
    assert state[3].item() == 1.0


def test_pearl_acts_on_a_posterior_z_of_its_adaptation_episodes(runs):
    with metarl.load(runs["pearl"]) as meta:
        assert (meta.family, meta.budget_unit) == ("pearl", "episodes")
        prior = meta.adapt(None, TASK, 0, deterministic=True)
        adapted = meta.adapt(None, TASK, 2, deterministic=True)
        agent = meta.agent
        expected = sampler_returns(agent, agent.policy, [adapted.params])
        got = adapted.episode(task_env())
    assert prior.adaptation_env_steps == 0 and adapted.adaptation_env_steps == 2 * HORIZON
    assert adapted.params["z"].shape == (agent.config.latent_size,)
    assert not torch.equal(prior.params["z"], adapted.params["z"])
    assert got == pytest.approx(expected[0], rel=1e-5)


def test_the_oracle_acts_on_the_task_it_is_given(runs):
    with metarl.load(runs["oracle"]) as meta:
        assert meta.family == "oracle"
        adapted = meta.adapt(None, TASK, 0, deterministic=True)
        torch.testing.assert_close(adapted.params["task"], torch.tensor(TASK["goal"]))
        expected = sampler_returns(meta.agent, meta.agent.policy, [adapted.params])
        got = adapted.episode(task_env())
        with pytest.raises(ValueError, match="observes the task"):
            meta.adapt(None, TASK, 1)
    assert got == pytest.approx(expected[0], rel=1e-5)


def test_act_takes_one_observation_and_returns_an_action_in_the_space(runs):
    with metarl.load(runs["maml-trpo"]) as meta:
        adapted = meta.adapt(task_env(), TASK, 1)
        action = adapted.act(np.zeros(2, dtype=np.float32))
    assert task_env().action_space.contains(action)


def test_bad_budgets_envs_and_single_task_adaptation_are_one_line_errors(runs):
    with metarl.load(runs["reptile"]) as meta:
        with pytest.raises(ValueError, match="budget must be an integer >= 0"):
            meta.adapt(None, TASK, -1)
        with pytest.raises(ValueError, match="budget"):
            meta.adapt(None, TASK, 1.5)
        with pytest.raises(ValueError, match="env must be"):
            meta.adapt(3, TASK, 0)
        with pytest.raises(ValueError, match="does not fit"):
            meta.adapt("bandit", {"probs": [0.5] * 5}, 0)  # other spaces, other network
    with metarl.load(runs["trpo"]) as meta:
        assert meta.family == "single-task"
        meta.adapt(None, None, 0)
        with pytest.raises(ValueError, match="does not adapt"):
            meta.adapt(None, None, 1)
    with pytest.raises(ValueError, match=r"not a metarl run folder|not a folder"):
        metarl.load(runs["trpo"] / "checkpoints")
