"""Returns, GAE and normalization against closed forms and naive per-episode references."""

import pytest
import torch

from metarl.backend.advantages import discounted_returns, fitted_advantages, gae, normalize

GAMMA = 0.9


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rewards, dones, mask `[8, 3]`: one full episode; two episodes then 2 padding steps;
    one episode cut by the horizon without a done."""
    torch.manual_seed(0)
    rewards = torch.randn(8, 3, dtype=torch.float64)
    dones = torch.zeros(8, 3, dtype=torch.bool)
    dones[7, 0] = True
    dones[2, 1] = dones[5, 1] = True
    mask = torch.ones(8, 3, dtype=torch.bool)
    mask[6:, 1] = False
    rewards[~mask] = 0.0
    return rewards, dones, mask


def _episodes(dones: torch.Tensor, mask: torch.Tensor, column: int) -> list[list[int]]:
    """Time indices of each episode in one column, by walking it step by step."""
    episodes, current = [], []
    for t in range(dones.shape[0]):
        if not mask[t, column]:
            break
        current.append(t)
        if dones[t, column]:
            episodes.append(current)
            current = []
    return [*episodes, current] if current else episodes


def _naive_returns(rewards, dones, mask) -> torch.Tensor:
    expected = torch.zeros_like(rewards)
    for b in range(rewards.shape[1]):
        for steps in _episodes(dones, mask, b):
            for i, t in enumerate(steps):
                expected[t, b] = sum(GAMMA**k * rewards[s, b] for k, s in enumerate(steps[i:]))
    return expected


def _naive_gae(rewards, values, dones, mask, lam) -> torch.Tensor:
    expected = torch.zeros_like(rewards)
    for b in range(rewards.shape[1]):
        for steps in _episodes(dones, mask, b):
            next_values = [values[s + 1, b] for s in steps[:-1]] + [0.0]
            deltas = [
                rewards[s, b] + GAMMA * v_next - values[s, b]
                for s, v_next in zip(steps, next_values, strict=True)
            ]
            for i, t in enumerate(steps):
                expected[t, b] = sum((GAMMA * lam) ** k * d for k, d in enumerate(deltas[i:]))
    return expected


def test_returns_match_naive_per_episode_sums_and_padding_is_zero():
    rewards, dones, mask = _batch()
    returns = discounted_returns(rewards, dones, GAMMA)
    torch.testing.assert_close(returns, _naive_returns(rewards, dones, mask))
    assert (returns[~mask] == 0).all()


def test_returns_of_constant_reward_match_geometric_series():
    T = 6
    returns = discounted_returns(torch.ones(T, 1), torch.zeros(T, 1, dtype=torch.bool), GAMMA)
    expected = torch.tensor([(1 - GAMMA ** (T - t)) / (1 - GAMMA) for t in range(T)])
    torch.testing.assert_close(returns[:, 0], expected)


def test_returns_do_not_leak_across_a_done():
    rewards = torch.tensor([[0.0], [0.0], [5.0]])
    dones = torch.tensor([[False], [True], [False]])
    assert discounted_returns(rewards, dones, GAMMA)[:2].abs().max() == 0


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_naive_per_episode_sums(lam):
    rewards, dones, mask = _batch()
    values = torch.randn_like(rewards).masked_fill(~mask, 0.0)
    expected = _naive_gae(rewards, values, dones, mask, lam)
    torch.testing.assert_close(gae(rewards, values, dones, GAMMA, lam), expected)


def test_gae_with_lambda_one_is_returns_minus_values():
    rewards, dones, mask = _batch()
    values = torch.randn_like(rewards).masked_fill(~mask, 0.0)
    expected = discounted_returns(rewards, dones, GAMMA) - values
    torch.testing.assert_close(gae(rewards, values, dones, GAMMA, 1.0), expected)


def test_gae_with_lambda_zero_is_the_td_error():
    rewards, dones, _ = _batch()
    values = torch.randn_like(rewards)
    next_values = torch.cat([values[1:], torch.zeros(1, 3, dtype=values.dtype)])
    expected = rewards + GAMMA * next_values * (~dones) - values
    torch.testing.assert_close(gae(rewards, values, dones, GAMMA, 0.0), expected)


def test_normalize_uses_valid_entries_only():
    torch.manual_seed(1)
    x = torch.randn(5, 4, dtype=torch.float64) * 3 + 2
    mask = torch.rand(5, 4) > 0.3
    x_padded = x.masked_fill(~mask, 1e6)
    result = normalize(x_padded, mask)
    valid = x[mask]
    expected = (valid - valid.mean()) / valid.std(unbiased=False)
    torch.testing.assert_close(result[mask], expected)
    assert (result[~mask] == 0).all()


def test_grouped_advantages_equal_one_fit_per_group_of_columns():
    # MAML's tasks: each group of columns gets its own baseline and normalization, at once.
    g = torch.Generator().manual_seed(3)
    steps, groups, per_group = 9, 4, 3
    obs = torch.randn(steps, groups * per_group, 2, generator=g)
    rewards = torch.randn(steps, groups * per_group, generator=g)
    dones = torch.zeros(steps, groups * per_group, dtype=torch.bool)
    dones[-1] = True
    dones[4, 2] = True  # two episodes back to back in one column
    mask = torch.ones(steps, groups * per_group)
    mask[-3:, 5] = 0  # a shorter episode, padded
    dones[-4, 5], dones[-1, 5] = True, False
    grouped = fitted_advantages(obs, rewards, dones, mask, 0.99, 0.95, groups=groups)
    for i in range(groups):
        cols = slice(i * per_group, (i + 1) * per_group)
        alone = fitted_advantages(
            obs[:, cols], rewards[:, cols], dones[:, cols], mask[:, cols], 0.99, 0.95
        )
        torch.testing.assert_close(grouped[:, cols], alone, rtol=1e-5, atol=1e-6)
    assert (grouped[mask == 0] == 0).all()
