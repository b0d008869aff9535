"""RL²'s GRU value function (`value_function: gru`): its unroll against a hand-stepped GRU cell,
the hidden state over trials and episodes, the fit and the GAE on its values, resume, config
errors, and the linear default left as it was."""

import copy

import gymnasium as gym
import pytest
import torch
from torch import nn

from metarl.agents.parts.recurrent_value import GRUValueNetwork
from metarl.agents.rl2 import RL2PPO, RL2TRPO, RL2PPOConfig, RL2TRPOConfig, trial_ends
from metarl.backend.advantages import discounted_returns, fitted_advantages

SMALL = {"meta_batch_size": 6, "episodes_per_trial": 4, "hidden_size": 16, "num_workers": 0}
GRU = {"value_function": "gru", "value_hidden_size": 8, "gae_lambda": 0.3}


def rl2(variant=RL2TRPO, env="bandit", **values):
    config_class = RL2TRPOConfig if variant is RL2TRPO else RL2PPOConfig
    env_kwargs = {"k": 3} if env == "bandit" else None
    return variant(env, config_class(**{**SMALL, **values}), env_kwargs=env_kwargs)


@pytest.mark.parametrize(
    "action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,))], ids=str
)
def test_the_unroll_equals_a_gru_cell_stepped_by_hand(action_space):
    torch.manual_seed(0)
    obs_dim, steps, trials, hidden = 2, 5, 3, 4
    network = GRUValueNetwork(obs_dim, action_space, hidden)
    observations = torch.randn(steps, trials, obs_dim)
    if isinstance(action_space, gym.spaces.Discrete):
        actions = torch.randint(0, 3, (steps, trials))
        encoded = nn.functional.one_hot(actions, 3).float()
    else:
        actions = encoded = torch.randn(steps, trials, 2)
    rewards, dones = torch.randn(steps, trials), (torch.rand(steps, trials) < 0.5).float()

    cell = nn.GRUCell(obs_dim + encoded.shape[-1] + 2, hidden)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(network.gru, f"{name}_l0"))
        state, expected = torch.zeros(trials, hidden), []
        for t in range(steps):
            x = torch.cat([observations[t], encoded[t], rewards[t, :, None], dones[t, :, None]], -1)
            state = cell(x, state)
            expected.append(network.head(state)[:, 0])
        outputs = network(observations, (actions, rewards, dones))
    torch.testing.assert_close(outputs, torch.stack(expected))


def test_the_hidden_state_carries_across_the_episodes_of_a_trial_and_resets_between_trials():
    with rl2(**GRU) as agent:
        episodes = agent.sample_trials(agent.task_env.sample_tasks(6), 4)
        agent.fit_value(episodes)  # a nonzero return scale, so the values are the network's
        obs, mask = episodes.observations, episodes.mask
        previous = episodes.previous_step_inputs()
        values = agent.value.predict(obs, previous, mask)
        # A bandit episode is one pull: every step after the first starts a new episode
        # (previous done = 1), yet the values there still see the first episode's reward.
        changed = tuple(x.clone() for x in previous)
        changed[1][1, 0] += 5.0  # the reward of trial 0's first pull, seen at step 1
        moved = agent.value.predict(obs, changed, mask)
        assert torch.all(moved[1:, 0] != values[1:, 0])
        torch.testing.assert_close(moved[:, 1:], values[:, 1:])  # other trials unaffected
        torch.testing.assert_close(moved[0], values[0])
        # Every trial starts from the zero state: the first steps (the same inputs in every
        # column) have one value, whatever the column order or the trials before.
        assert torch.all(values[0] == values[0, 0])
        order = torch.arange(5, -1, -1)
        reversed_values = agent.value.predict(
            obs[:, order], tuple(x[:, order] for x in previous), mask[:, order]
        )
        torch.testing.assert_close(reversed_values, values[:, order])
        alone = agent.value.predict(obs[:, 3:4], tuple(x[:, 3:4] for x in previous), mask[:, 3:4])
        torch.testing.assert_close(alone[:, 0], values[:, 3])


def hand_gae(rewards, values, mask, discount, lam):
    """GAE by the definition, one trial (column) at a time: A_t = Σ_k (γλ)^k δ_{t+k} with
    δ_t = r_t + γ V_{t+1} − V_t and V = 0 past the trial's last step; then normalized over the
    valid steps."""
    advantages = torch.zeros_like(rewards)
    for b in range(rewards.shape[1]):
        length = int(mask[:, b].sum())
        v = [*values[:length, b].tolist(), 0.0]
        deltas = [rewards[t, b].item() + discount * v[t + 1] - v[t] for t in range(length)]
        for t in range(length):
            advantages[t, b] = sum((discount * lam) ** k * d for k, d in enumerate(deltas[t:]))
    valid = advantages[mask.bool()]
    mean, std = valid.mean(), valid.std(correction=0)
    return torch.where(mask.bool(), (advantages - mean) / (std + 1e-8), 0.0)


def test_fitting_lowers_the_value_loss_and_the_advantages_are_gae_on_its_values():
    with rl2(**GRU, value_epochs=20, value_learning_rate=1e-2) as agent:
        episodes = agent.sample_trials(agent.task_env.sample_tasks(6), 4)
        first = agent.fit_value(episodes)
        second = agent.fit_value(episodes)
        assert first["value_loss_after"] < first["value_loss"]
        assert second["value_loss_after"] < second["value_loss"] <= first["value_loss"]
        returns = discounted_returns(episodes.rewards, trial_ends(episodes.mask), 0.99)
        previous = episodes.previous_step_inputs()
        values = agent.value.predict(episodes.observations, previous, episodes.mask)
        error = ((values - returns) ** 2).mean() / returns.std(correction=0) ** 2
        assert error.item() == pytest.approx(second["value_loss_after"], rel=1e-4)
        expected = hand_gae(episodes.rewards, values, episodes.mask, 0.99, 0.3)
        torch.testing.assert_close(agent.advantages(episodes), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", [RL2TRPO, RL2PPO])
def test_an_iteration_predicts_then_updates_the_policy_then_fits_on_its_own_batch(variant):
    calls = []
    with rl2(variant, **GRU) as agent:
        value, update = agent.value, agent.update
        predict, fit = value.predict, value.fit
        value.predict = lambda *args: calls.append("predict") or predict(*args)
        value.fit = lambda *args: calls.append(("fit", args[0].shape)) or fit(*args)
        agent.update = lambda *args: calls.append("update") or update(*args)
        metrics = agent.train_step()
    assert calls == ["predict", "update", ("fit", (4, 6, 1))]  # [T, trials, obs] of the batch
    assert metrics["value_loss_after"] < metrics["value_loss"]


@pytest.mark.parametrize("variant", [RL2TRPO, RL2PPO])
def test_state_dict_resumes_the_exact_next_iteration_with_the_value_function(variant):
    short = {**GRU, "episodes_per_trial": 2}
    with rl2(variant, "tabular-mdp", **short) as agent:
        agent.train_step()
        state = copy.deepcopy(agent.state_dict())
        assert set(state["value_function"]) == {"network", "optimizer", "rng"}
        expected = agent.train_step()
        weights = copy.deepcopy(agent.value.network.state_dict())
    with rl2(variant, "tabular-mdp", **short, seed=7) as resumed:  # overwritten by the state
        resumed.load_state_dict(state)
        assert resumed.train_step() == expected
        for key, tensor in resumed.value.network.state_dict().items():
            assert torch.equal(tensor, weights[key]), key


def test_a_checkpoint_without_a_value_function_loads_into_a_gru_agent():
    with rl2(RL2PPO) as linear:
        linear.train_step()
        state = copy.deepcopy(linear.state_dict())
    with rl2(RL2PPO, **GRU) as agent:
        fresh = copy.deepcopy(agent.value.state_dict())
        agent.load_state_dict(state)  # a linear run's policy starts a gru run
        for key, tensor in agent.value.network.state_dict().items():
            assert torch.equal(tensor, fresh["network"][key])
        for key, tensor in agent.policy.state_dict().items():
            assert torch.equal(tensor, state["policy"][key])
        agent.train_step()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("value_function", "mlp", "must be 'linear' or 'gru', got 'mlp'"),
        ("value_function", "GRU", "must be 'linear' or 'gru', got 'GRU'"),
        ("value_function", None, "must be 'linear' or 'gru', got None"),
        ("value_hidden_size", 0, "must be an integer >= 1, got 0"),
        ("value_hidden_size", 8.0, "must be an integer >= 1, got 8.0"),
        ("value_learning_rate", 0.0, "must be a finite number > 0, got 0.0"),
        ("value_learning_rate", float("nan"), "got nan"),
        ("value_epochs", 0, "must be an integer >= 1, got 0"),
        ("value_minibatch_trials", -1, "must be an integer >= 1, got -1"),
    ],
)
@pytest.mark.parametrize("config_class", [RL2TRPOConfig, RL2PPOConfig])
def test_bad_value_function_settings_are_one_line_errors(config_class, key, value, expected):
    with pytest.raises(ValueError) as error:
        config_class(**{key: value})
    message = str(error.value)
    assert message.startswith(f"config key {key!r} ") and expected in message
    assert "\n" not in message


@pytest.mark.parametrize("variant", [RL2TRPO, RL2PPO])
def test_the_linear_default_has_no_value_function_and_ignores_the_value_keys(variant):
    config_class = RL2TRPOConfig if variant is RL2TRPO else RL2PPOConfig
    assert config_class().value_function == "linear"
    unused = {"value_hidden_size": 3, "value_learning_rate": 0.5, "value_epochs": 2}
    with rl2(variant) as default, rl2(variant, **unused, value_minibatch_trials=1) as other:
        assert default.value is None and "value_function" not in default.state_dict()
        assert default.train_step() == other.train_step()
        episodes = default.sample_trials(default.task_env.sample_tasks(6), 4)
        mask = episodes.mask
        linear = fitted_advantages(
            episodes.observations, episodes.rewards, trial_ends(mask), mask, 0.99, 1.0
        )
        assert torch.equal(default.advantages(episodes), linear)
        assert default.fit_value(episodes) == {}
    with rl2(variant) as linear, rl2(variant, **GRU) as gru:  # the value net comes after
        for key, tensor in gru.policy.state_dict().items():
            assert torch.equal(tensor, linear.policy.state_dict()[key]), key
