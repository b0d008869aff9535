"""The sampler records `info["success"]` of envs that report it (Meta-World's) on the generic
path, step by step and in order, whatever the worker layout; envs that report none give None."""

import pytest
import torch
from failing_env import SucceedingNavigation, WrappedNavigation

from metarl.policies import make_policy
from metarl.sampling.sampler import VectorSampler


def sample(env, num_workers):
    with VectorSampler(env, 6, horizon=15, seed=3, fast=False, num_workers=num_workers) as s:
        torch.manual_seed(0)
        policy = make_policy(s.observation_space, s.action_space)
        return s.sample(policy, [None, None], 3)  # the wrapped envs keep their own goals


@pytest.mark.parametrize("num_workers", [0, 2])
def test_success_is_recorded_per_step_from_the_reward_it_was_derived_from(num_workers):
    episodes = sample(SucceedingNavigation, num_workers)
    assert episodes.successes is not None and episodes.successes.dtype == torch.bool
    real = episodes.mask.bool()
    torch.testing.assert_close(episodes.successes[real], episodes.rewards[real] > -0.3)
    assert not episodes.successes[~real].any()
    per_episode = episodes.episode_successes()
    assert per_episode.shape == episodes.episode_returns().shape
    assert 0 < per_episode.mean() < 1  # some succeed, some do not: the test can tell


def test_envs_without_success_give_none():
    assert sample(WrappedNavigation, 0).successes is None
