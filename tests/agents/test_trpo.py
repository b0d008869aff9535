"""Single-task TRPO: metrics, the trust region checked from the policies themselves (its learning
test: test_learning_single_task.py)."""

import copy
import math

import pytest
import torch
from torch.distributions import kl_divergence

from metarl.agents.trpo import TRPO, TRPOConfig

NAV = "metarl/Navigation2D-v0"
GOAL = [0.3, -0.2]
METRICS = {"return", "env_steps", "loss_before", "loss_after", "kl", "step_fraction", "accepted"}


@pytest.mark.parametrize(
    ("env", "task", "horizon"), [(NAV, {"goal": GOAL}, 100), ("Pendulum-v1", None, 200)]
)
def test_train_step_returns_finite_metrics(env, task, horizon):
    with TRPO(env, TRPOConfig(task=task, episodes_per_task=4)) as trpo:
        metrics = trpo.train_step()
    assert set(metrics) == METRICS
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["env_steps"] == 4 * horizon


def test_accepted_step_stays_in_the_trust_region_and_improves_the_surrogate():
    config = TRPOConfig(task={"goal": GOAL}, max_kl=0.01)
    with TRPO(NAV, config) as trpo:
        episodes = trpo.sample()
        old_policy = copy.deepcopy(trpo.policy)
        info = trpo.update(episodes)

    assert info["accepted"] == 1.0
    assert info["loss_after"] < info["loss_before"]
    # KL(old ‖ new) from the two policies on the sampled observations, not from `update`.
    obs, valid = episodes.observations, episodes.mask.bool()
    with torch.no_grad():
        old_dist = old_policy.action_dist.distribution(old_policy(obs))
        new_dist = trpo.policy.action_dist.distribution(trpo.policy(obs))
    kl = kl_divergence(old_dist, new_dist)[valid].mean().item()
    assert 0.0 < kl <= config.max_kl * (1 + 1e-4)
    assert kl == pytest.approx(info["kl"], rel=1e-4)


# Learning on fixed-goal Navigation2D, against the zero-action, random and untrained policies:
# tests/agents/test_learning_single_task.py.
