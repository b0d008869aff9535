"""The MAML paper's baselines as agents: `multitask` (pretrained: TRPO on all tasks pooled,
fine-tuned by the inner loop) and `oracle` (the policy observes the task)."""

import numpy as np
import pytest
import torch

from metarl.agents.multitask import MultiTask, MultiTaskConfig
from metarl.agents.oracle import Oracle, OracleConfig, task_features
from metarl.policies import call

TINY = dict(meta_batch_size=3, episodes_per_task=2, horizon=6, hidden_sizes=(8,), num_workers=0)


def test_task_features_flatten_the_fields_in_name_order():
    got = task_features({"velocity": 1.5, "goal": [0.3, -0.2]})
    np.testing.assert_array_equal(got, np.array([0.3, -0.2, 1.5], dtype=np.float32))
    assert task_features({"scales": [[1.0, 2.0], [3.0, 4.0]]}).tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="field 'name'"):
        task_features({"name": "reach-v3"})


def test_the_oracle_update_sees_each_column_with_its_own_task():
    """The TRPO step recomputes the sampling policy's log-probs: only if each column is paired
    with its own task's features do they equal the sampler's."""
    agent = Oracle("navigation2d", OracleConfig(**TINY))
    captured = {}
    sample = agent.sampler.sample

    def capturing(*args, **kwargs):
        captured["episodes"] = sample(*args, **kwargs)
        captured["tasks"] = args[1]
        return captured["episodes"]

    agent.sampler.sample = capturing
    try:
        before = {n: p.detach().clone() for n, p in agent.policy.named_parameters()}
        metrics = agent.train_step()
    finally:
        agent.close()
    episodes, tasks = captured["episodes"], captured["tasks"]
    goals = torch.tensor([t["goal"] for t in tasks], dtype=torch.float32)
    conditions = goals[episodes.task_index].expand(episodes.observations.shape[0], -1, -1)
    dist = agent.policy.action_dist.distribution(
        call(agent.policy, before, episodes.observations, conditions)
    )
    log_probs = dist.log_prob(episodes.actions)
    mask = episodes.mask.bool()
    torch.testing.assert_close(log_probs[mask], episodes.log_probs[mask], rtol=1e-5, atol=1e-5)
    assert metrics["env_steps"] == 3 * 2 * 6 and np.isfinite(metrics["return"])
    if metrics["accepted"]:
        assert any(not torch.equal(before[n], p) for n, p in agent.policy.named_parameters())


def test_the_oracle_evaluates_once_per_task_and_the_multitask_policy_fine_tunes():
    oracle = Oracle("navigation2d", OracleConfig(**TINY))
    multitask = MultiTask("navigation2d", MultiTaskConfig(**TINY))
    tasks = [
        {"goal": [0.3, -0.2]},
        {"goal": [-0.1, 0.4]},
        {"goal": [0.0, 0.1]},
        {"goal": [0.2, 0.2]},
    ]
    try:
        outcomes = oracle.task_outcomes(tasks)
        metrics = multitask.train_step()
        returns = multitask.adaptation_returns(tasks, 2)
    finally:
        oracle.close()
        multitask.close()
    assert outcomes.returns.shape == (1, 4) and outcomes.successes is None
    assert returns.shape == (3, 4) and torch.isfinite(returns).all()
    assert metrics["env_steps"] == 3 * 2 * 6


def test_learned_step_sizes_are_an_error_for_the_multitask_baseline():
    with pytest.raises(ValueError, match="learn_inner_lr"):
        MultiTaskConfig(learn_inner_lr=True)
