"""Episodes helpers: per-episode returns, RL² previous-step inputs, per-task selection."""

import torch

from metarl.sampling.episodes import Episodes


def two_columns():
    """Column 0: episodes of 2 and 1 steps; column 1: one 2-step episode, then padding."""
    rewards = torch.tensor([[1.0, 10.0], [2.0, 20.0], [4.0, 0.0]])
    dones = torch.tensor([[False, False], [True, True], [True, False]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    return Episodes(
        observations=torch.arange(6.0).reshape(3, 2, 1),
        actions=torch.tensor([[0, 1], [2, 0], [1, 0]]),
        rewards=rewards,
        log_probs=torch.zeros(3, 2),
        dones=dones,
        terminated=torch.zeros(3, 2, dtype=torch.bool),
        mask=mask,
        task_index=torch.tensor([0, 1]),
        tasks=[{"goal": 0}, {"goal": 1}],
    )


def test_episode_returns_split_at_dones_and_skip_padding():
    episodes = two_columns()
    torch.testing.assert_close(episodes.episode_returns(), torch.tensor([3.0, 4.0, 30.0]).double())
    assert episodes.num_env_steps == 5


def test_previous_step_inputs_shift_by_one_step_within_a_column():
    prev_actions, prev_rewards, prev_dones = two_columns().previous_step_inputs()
    torch.testing.assert_close(prev_actions, torch.tensor([[0, 0], [0, 1], [2, 0]]))
    torch.testing.assert_close(prev_rewards, torch.tensor([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]]))
    torch.testing.assert_close(prev_dones, torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]))


def test_an_episode_succeeds_if_any_of_its_real_steps_succeeded():
    episodes = two_columns()
    assert episodes.episode_successes() is None  # the env reported no success
    # Column 0: its first episode succeeds at its first step only, its second never; column 1
    # succeeds only on a padding step, which does not count.
    episodes.successes = torch.tensor([[True, False], [False, False], [False, True]])
    torch.testing.assert_close(episodes.episode_successes(), torch.tensor([1.0, 0.0, 0.0]).double())
    assert episodes.to(torch.device("cpu")).successes is episodes.successes
