"""RL²: trials carry the GRU state, whole-trial returns, the TRPO and PPO updates, resume."""

import copy

import pytest
import torch
from torch.distributions import kl_divergence

from metarl.agents.rl2 import RL2PPO, RL2TRPO, RL2PPOConfig, RL2TRPOConfig, trial_ends
from metarl.backend.advantages import discounted_returns
from metarl.policies import unroll

SMALL = {"meta_batch_size": 6, "episodes_per_trial": 4, "hidden_size": 16, "num_workers": 0}


def rl2_trpo(**values):
    return RL2TRPO("bandit", RL2TRPOConfig(**{**SMALL, **values}), env_kwargs={"k": 3})


def test_the_unrolled_policy_reproduces_the_sampled_log_probs_only_with_the_carried_state():
    with rl2_trpo() as agent:
        tasks = agent.task_env.sample_tasks(6)
        episodes = agent.sample_trials(tasks, 4)
        previous = episodes.previous_step_inputs()
        with torch.no_grad():
            dist = agent.distribution(None, episodes.observations, previous)
            torch.testing.assert_close(dist.log_prob(episodes.actions), episodes.log_probs)

            # Resetting the hidden state at every episode (a bandit episode is one step) would
            # give other log-probs: the trial's memory is what RL² learns with.
            def step(t):
                return tuple(x[t : t + 1] for x in previous)

            logits = torch.stack(
                [
                    unroll(agent.policy, None, episodes.observations[t : t + 1], step(t))[0]
                    for t in range(4)
                ]
            )
            reset = agent.policy.action_dist.distribution(logits).log_prob(episodes.actions)
        assert not torch.allclose(reset[1:], episodes.log_probs[1:])
        # Every trial starts from the zero state: a fresh batch's first step has the same
        # distribution as this one's.
        again = agent.sample_trials(tasks, 4)
        same = again.actions[0] == episodes.actions[0]
        torch.testing.assert_close(again.log_probs[0][same], episodes.log_probs[0][same])


def test_the_previous_step_inputs_cross_episode_boundaries_within_a_trial():
    with rl2_trpo() as agent:
        episodes = agent.sample_trials(agent.task_env.sample_tasks(6), 4)
    prev_action, prev_reward, prev_done = episodes.previous_step_inputs()
    assert torch.equal(prev_action[1:], episodes.actions[:-1])
    assert torch.equal(prev_reward[1:], episodes.rewards[:-1])
    assert torch.all(prev_done[1:] == 1) and torch.all(prev_done[0] == 0)


def test_returns_run_over_the_whole_trial_not_the_episode():
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    ends = trial_ends(mask)
    assert ends.tolist() == [[False, False], [False, True], [True, False]]
    rewards = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    returns = discounted_returns(rewards, ends, 0.5)
    # A reward in the trial's last episode credits the first one's action: 1 · 0.5².
    torch.testing.assert_close(returns[:, 0], torch.tensor([0.25, 0.5, 1.0]))
    torch.testing.assert_close(returns[:2, 1], torch.tensor([1.5, 1.0]))


def rl2_ppo(**values):
    config = RL2PPOConfig(**{**SMALL, "minibatch_trials": 2, **values})
    return RL2PPO("bandit", config, env_kwargs={"k": 3})


@pytest.mark.parametrize("variant", ["trpo", "ppo"])
def test_an_update_improves_the_surrogate_within_its_kl_bound(variant):
    agent = rl2_trpo(max_kl=0.02) if variant == "trpo" else rl2_ppo()
    with agent:
        episodes = agent.sample_trials(agent.task_env.sample_tasks(6), 4)
        old_policy = copy.deepcopy(agent.policy)
        metrics = agent.update(episodes, agent.advantages(episodes))
        # KL(old ‖ new) from the two policies unrolled over the sampled trials, not from the
        # update's own report.
        previous = episodes.previous_step_inputs()
        with torch.no_grad():
            old = old_policy.action_dist.distribution(
                unroll(old_policy, None, episodes.observations, previous)
            )
            new = agent.distribution(None, episodes.observations, previous)
    kl = kl_divergence(old, new)[episodes.mask.bool()].mean().item()
    assert metrics["loss_after"] < metrics["loss_before"]
    assert kl == pytest.approx(metrics["kl"], rel=1e-4)
    if variant == "trpo":  # the trust region bounds the step
        assert 0 < kl <= 0.02 * (1 + 1e-4)
    else:  # PPO's clip bounds it only loosely; a step was taken
        assert 0 < kl <= 0.1


@pytest.mark.parametrize("variant", ["trpo", "ppo"])
def test_train_step_reports_whole_trial_returns(variant):
    with rl2_trpo() if variant == "trpo" else rl2_ppo() as agent:
        metrics = agent.train_step()
    assert metrics["env_steps"] == 6 * 4 and 0 <= metrics["trial_return"] <= 4
    assert metrics["trial_return"] == pytest.approx(4 * metrics["return"])


@pytest.mark.parametrize("variant", [RL2TRPO, RL2PPO])
def test_state_dict_resumes_the_exact_next_iteration(variant):
    config = (RL2TRPOConfig if variant is RL2TRPO else RL2PPOConfig)(**SMALL)
    with variant("tabular-mdp", config) as agent:
        agent.train_step()
        state = copy.deepcopy(agent.state_dict())  # the tensors are the live parameters
        expected = agent.train_step()
    config.seed = 7  # a different start, overwritten by the state
    with variant("tabular-mdp", config) as resumed:
        resumed.load_state_dict(state)
        assert resumed.train_step() == expected


def test_trial_returns_cover_more_tasks_than_the_sampler_holds():
    with rl2_trpo() as agent:
        tasks = agent.task_env.sample_tasks(14)
        returns = agent.trial_returns(tasks, 3)
    assert returns.shape == (3, 14) and set(returns.unique().tolist()) <= {0.0, 1.0}


def test_bad_envs_and_settings_are_named():
    with pytest.raises(ValueError, match="not a metarl task env"):
        RL2TRPO("Pendulum-v1", RL2TRPOConfig(**SMALL))
    with pytest.raises(ValueError, match="episodes_per_trial"):
        RL2TRPOConfig(episodes_per_trial=0)
    with pytest.raises(ValueError, match="max_kl"):
        RL2TRPOConfig(max_kl=-1.0)
    with pytest.raises(ValueError, match="minibatch_trials"):
        RL2PPOConfig(minibatch_trials=0)


# The short learning tests CI runs (two-armed bandits, TRPO and PPO): test_learning_rl2.py.
@pytest.mark.slow
def test_rl2_learns_to_beat_random_on_five_armed_bandits():
    """Duan et al.'s n=10, k=5 row: random pulls average 5.0 per trial, the paper's RL² 6.7."""
    config = RL2TRPOConfig(
        meta_batch_size=200, episodes_per_trial=10, hidden_size=64, num_workers=0, seed=1
    )
    with RL2TRPO("bandit", config, env_kwargs={"k": 5}) as agent:
        for _ in range(150):
            agent.train_step()
        agent.task_env.reset(seed=10_000)
        totals = agent.trial_returns(agent.task_env.sample_tasks(400), 10).sum(0)
    assert totals.mean() > 5.0 + 0.8  # the 95% CI half-width is ~0.15
