"""Single-task PPO: metrics, one update on its own batch, the value function's scale, learning
(the fast learning test CI runs, on Navigation2D: test_learning_single_task.py)."""

import math

import numpy as np
import pytest
import torch

from metarl.agents.ppo import PPO, PPOConfig, ValueFunction

METRICS = {"return", "env_steps", "loss_before", "loss_after", "kl", "value_loss", "entropy"}


@pytest.mark.parametrize(
    ("env", "task", "horizon"),
    [("metarl/Navigation2D-v0", {"goal": [0.3, -0.2]}, 100), ("Pendulum-v1", None, 200)],
)
def test_train_step_returns_finite_metrics(env, task, horizon):
    with PPO(env, PPOConfig(task=task, episodes_per_task=2, epochs=2)) as ppo:
        metrics = ppo.train_step()
    assert set(metrics) == METRICS
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["env_steps"] == 2 * horizon


def test_update_changes_the_policy_and_improves_its_clipped_objective_on_the_batch():
    with PPO("Pendulum-v1", PPOConfig(episodes_per_task=4)) as ppo:
        episodes = ppo.sample()
        before = {name: p.detach().clone() for name, p in ppo.policy.named_parameters()}
        info = ppo.update(episodes)
        after = dict(ppo.policy.named_parameters())
    assert any(not torch.equal(before[name], after[name]) for name in before)
    # At the sampling policy the ratio is 1 and the normalized advantages average 0.
    assert info["loss_before"] == pytest.approx(0.0, abs=1e-5)
    assert info["loss_after"] < info["loss_before"] - 1e-3
    assert info["kl"] > 0.0


def test_value_function_predicts_in_running_return_std_units():
    value = ValueFunction(obs_dim=3, hidden_sizes=(8,), horizon=10)
    obs, steps = torch.randn(5, 3), torch.arange(5.0)
    assert torch.equal(value(obs, steps), torch.zeros(5))  # no scale before the first batch
    value.update_scale(torch.tensor([0.0, 4.0]))  # std 2
    assert value.return_std.item() == pytest.approx(2.0)
    value.update_scale(torch.tensor([0.0, 24.0]), momentum=0.9)  # std 12
    assert value.return_std.item() == pytest.approx(0.9 * 2.0 + 0.1 * 12.0)
    raw = value.net(torch.cat([obs, (steps / 10).unsqueeze(-1)], dim=-1)).squeeze(-1)
    torch.testing.assert_close(value(obs, steps), raw * 3.0)
    targets = torch.randn(5)
    expected = ((raw - targets / 3.0) ** 2).mean()
    torch.testing.assert_close(value.loss(obs, steps, targets), expected)


@pytest.mark.slow
def test_ppo_improves_pendulum():
    # Random policy: -1200..-1500. Measured with the defaults (8 episodes of 200 steps per
    # iteration): seeds 0 / 1 go from -1161 / -1243 to -144 / -155 after 80 iterations.
    with PPO("Pendulum-v1", PPOConfig()) as ppo:
        returns = [ppo.train_step()["return"] for _ in range(80)]
    assert np.mean(returns[-5:]) > -600
    assert np.mean(returns[-5:]) > returns[0] + 500
