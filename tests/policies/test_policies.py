"""Policies: functional calls equal the module, distributions match closed forms, vmap batching."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call, vmap

from metarl.policies import (
    CategoricalMLPPolicy,
    GaussianMLPPolicy,
    GRUPolicy,
    call,
    make_policy,
    make_recurrent_policy,
    parameters,
)


def gru_inputs(batch, obs_dim, discrete):
    obs = torch.randn(batch, obs_dim)
    prev_action = torch.randint(0, 3, (batch,)) if discrete else torch.randn(batch, 2)
    return obs, prev_action, torch.randn(batch), torch.randint(0, 2, (batch,)).float()


def flatten(output):
    """All tensors of a (nested tuple) policy output as one vector."""
    if isinstance(output, tuple):
        return torch.cat([flatten(x) for x in output])
    return output.flatten()


@pytest.mark.parametrize(
    "policy, inputs",
    [
        (GaussianMLPPolicy(4, 2), (torch.randn(5, 4),)),
        (CategoricalMLPPolicy(4, 3), (torch.randn(5, 4),)),
        (GRUPolicy(4, gym.spaces.Discrete(3), 8), (*gru_inputs(5, 4, True), torch.randn(5, 8))),
        (
            GRUPolicy(4, gym.spaces.Box(-1, 1, (2,)), 8),
            (*gru_inputs(5, 4, False), torch.randn(5, 8)),
        ),
    ],
)
def test_functional_call_with_own_parameters_equals_the_module(policy, inputs):
    direct = policy(*inputs)
    functional = functional_call(policy, parameters(policy), inputs)
    torch.testing.assert_close(flatten(direct), flatten(functional), rtol=0, atol=0)


def test_functional_call_uses_the_given_parameters_not_the_modules():
    policy = GaussianMLPPolicy(3, 2)
    params = {name: torch.zeros_like(p) for name, p in parameters(policy).items()}
    mean, log_std = call(policy, params, torch.randn(4, 3))
    assert torch.all(mean == 0) and torch.all(log_std == 0)
    assert not torch.all(policy(torch.randn(4, 3))[0] == 0)


def test_gaussian_log_prob_matches_the_closed_form():
    policy = GaussianMLPPolicy(3, 2, init_std=0.5)
    obs = torch.randn(6, 3)
    dist_params = policy(obs)
    actions = torch.randn(6, 2)
    mean, std = dist_params[0], 0.5
    expected = -((actions - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    log_prob = policy.action_dist.distribution(dist_params).log_prob(actions)
    torch.testing.assert_close(log_prob, expected.sum(-1))
    torch.testing.assert_close(policy.action_dist.mode(dist_params), mean)


def test_samples_are_reproducible_with_a_generator_and_follow_the_distribution():
    policy = GaussianMLPPolicy(1, 1, init_std=2.0)
    dist_params = policy(torch.zeros(20000, 1))
    first = policy.action_dist.sample(dist_params, torch.Generator().manual_seed(3))
    second = policy.action_dist.sample(dist_params, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    assert first.std().item() == pytest.approx(2.0, rel=0.03)
    categorical = CategoricalMLPPolicy(1, 3)
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3])).expand(30000, 3)
    draws = categorical.action_dist.sample(logits, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.bincount(draws.numpy()) / 30000, [0.2, 0.5, 0.3], atol=0.015)


def test_vmap_over_stacked_parameters_equals_a_loop_over_tasks():
    policy = GRUPolicy(4, gym.spaces.Discrete(3), 8)
    sets = [
        {name: p + 0.1 * k * torch.randn_like(p) for name, p in parameters(policy).items()}
        for k in range(3)
    ]
    stacked = {name: torch.stack([s[name] for s in sets]) for name in sets[0]}
    inputs = [x.reshape(3, 2, *x.shape[1:]) for x in (*gru_inputs(6, 4, True), torch.randn(6, 8))]
    logits, hidden = vmap(lambda p, *xs: functional_call(policy, p, xs))(stacked, *inputs)
    for k in range(3):
        expected_logits, expected_hidden = call(policy, sets[k], *(x[k] for x in inputs))
        torch.testing.assert_close(logits[k], expected_logits)
        torch.testing.assert_close(hidden[k], expected_hidden)


def test_gru_hidden_state_changes_the_output():
    policy = GRUPolicy(4, gym.spaces.Discrete(3), 8)
    inputs = gru_inputs(2, 4, True)
    zero = policy(*inputs, policy.initial_hidden(2))[0]
    other = policy(*inputs, torch.ones(2, 8))[0]
    assert not torch.allclose(zero, other)


def test_make_policy_picks_the_policy_for_the_spaces():
    box = gym.spaces.Box(-1, 1, (3,))
    assert isinstance(make_policy(box, gym.spaces.Box(-1, 1, (2,))), GaussianMLPPolicy)
    assert isinstance(make_policy(box, gym.spaces.Discrete(4)), CategoricalMLPPolicy)
    assert isinstance(make_recurrent_policy(box, gym.spaces.Discrete(4), 8), GRUPolicy)
    with pytest.raises(ValueError, match="flat Box"):
        make_recurrent_policy(gym.spaces.Discrete(3), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="observation space"):
        make_policy(gym.spaces.Discrete(3), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="action space"):
        make_policy(box, gym.spaces.MultiBinary(3))
