"""Reptile's meta-iteration against a hand computation: k plain SGD steps per task on the
REINFORCE loss, written out task by task with `torch.autograd.grad` (no vmap, no inner-loop
code), then θ + ε_t · mean_i(θ_i − θ) with ε_t from the linear schedule."""

import math

import pytest
import torch
from torch.func import functional_call

from metarl.agents.reptile import Reptile, ReptileConfig

TINY = dict(
    meta_batch_size=3,
    episodes_per_task=2,
    horizon=5,
    hidden_sizes=(8,),
    num_workers=0,
    num_inner_steps=2,
    inner_lr=0.3,
    meta_step_size=0.7,
    iterations=4,
)


def hand_adapted(policy, theta, stack, task, steps, lr):
    """Task `task`'s parameters after `steps` SGD steps of size `lr` on −Σ mask·logπ·A / Σ mask,
    one gradient per step on that step's episodes (stack[s])."""
    params = dict(theta)
    for s in range(steps):
        obs, actions = stack[s].observations[task], stack[s].actions[task]
        mask, advantages = stack[s].mask[task], stack[s].advantages[task]
        leaves = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
        dist_params = functional_call(policy, leaves, (obs,))
        log_probs = policy.action_dist.distribution(dist_params).log_prob(actions)
        loss = -(log_probs * advantages * mask).sum() / mask.sum()
        grads = torch.autograd.grad(loss, list(leaves.values()))
        params = {n: p - lr * g for (n, p), g in zip(leaves.items(), grads, strict=True)}
    return {n: p.detach() for n, p in params.items()}


@pytest.mark.parametrize("anneal", [True, False])
def test_one_iteration_is_the_hand_computed_interpolation(anneal):
    agent = Reptile("navigation2d", ReptileConfig(**TINY, anneal_meta_step_size=anneal))
    loop = agent.inner_loop
    captured = {}
    sample = loop.sample_adaptation

    def capturing(*args, **kwargs):
        captured["result"] = sample(*args, **kwargs)
        return captured["result"]

    try:
        agent.train_step()  # t = 0
        loop.sample_adaptation = capturing
        theta = {n: p.detach().clone() for n, p in loop.policy.named_parameters()}
        metrics = agent.train_step()  # t = 1
        inner, stages, adapted = captured["result"]
        new = {n: p.detach() for n, p in loop.policy.named_parameters()}
    finally:
        agent.close()

    epsilon = 0.7 * (1 - 1 / 4) if anneal else 0.7
    assert metrics["meta_step_size"] == pytest.approx(epsilon)
    assert len(inner) == 2 and len(stages) == 3  # two inner steps, episodes after the second
    per_task = [hand_adapted(loop.policy, theta, inner, i, 2, 0.3) for i in range(3)]
    for name in theta:
        by_hand = torch.stack([p[name] for p in per_task])
        torch.testing.assert_close(adapted[name], by_hand, rtol=1e-5, atol=1e-6)
        expected = theta[name] + epsilon * (by_hand - theta[name]).mean(0)
        torch.testing.assert_close(new[name], expected, rtol=1e-5, atol=1e-6)
    norm = math.sqrt(sum(((new[n] - theta[n]) ** 2).sum().item() for n in theta))
    assert metrics["step_norm"] == pytest.approx(norm, rel=1e-5)


def test_the_schedule_anneals_linearly_to_the_last_iteration():
    agent = Reptile("navigation2d", ReptileConfig(**TINY))
    try:
        assert [agent.meta_step_size(t) for t in range(4)] == pytest.approx(
            [0.7, 0.525, 0.35, 0.175]
        )
    finally:
        agent.close()


def test_without_post_episodes_only_the_inner_stages_are_sampled():
    agent = Reptile("navigation2d", ReptileConfig(**TINY, post_episodes=False))
    try:
        metrics = agent.train_step()
    finally:
        agent.close()
    assert metrics["env_steps"] == 2 * 3 * 2 * 5  # stages × tasks × episodes × horizon
    assert "post_return" not in metrics and math.isfinite(metrics["pre_return"])


def test_a_resumed_run_continues_the_schedule_and_the_rows():
    straight = Reptile("navigation2d", ReptileConfig(**TINY))
    first = Reptile("navigation2d", ReptileConfig(**TINY))
    second = Reptile("navigation2d", ReptileConfig(**TINY))
    try:
        rows = [straight.train_step() for _ in range(3)]
        first.train_step()
        second.load_state_dict(first.state_dict())
        resumed = [second.train_step() for _ in range(2)]
    finally:
        for agent in (straight, first, second):
            agent.close()
    assert resumed == rows[1:]


def test_learned_step_sizes_are_a_config_error():
    with pytest.raises(ValueError, match="learn_inner_lr"):
        ReptileConfig(learn_inner_lr=True)
    with pytest.raises(ValueError, match="meta_step_size"):
        ReptileConfig(meta_step_size=0.0)
