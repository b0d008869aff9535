"""MAML's meta-gradient against finite differences: exact second order, first-order switch,
Meta-SGD's learned step sizes, E-MAML's extra term."""

import pytest
import torch

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.parts.inner_loop import LR_PREFIX, TaskStack
from metarl.backend.optim import flat, unflat


def synthetic_stack(policy, seed, tasks=2, steps=6, columns=3):
    """n tasks' episodes with actions drawn from `policy`, fixed advantages, float64."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(tasks, steps, columns, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = policy(obs)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=g, dtype=torch.float64)
        log_probs = policy.action_dist.distribution((mean, log_std)).log_prob(actions)
    mask = torch.ones(tasks, steps, columns, dtype=torch.float64)
    mask[1, -2:, 0] = 0  # one shorter episode
    advantages = torch.randn(tasks, steps, columns, generator=g, dtype=torch.float64)
    return TaskStack(obs, actions, log_probs, mask, advantages)


@pytest.fixture
def agent():
    config = MAMLConfig(meta_batch_size=1, episodes_per_task=1, hidden_sizes=(5,), num_workers=0)
    agent = MAML("navigation2d", config)
    agent.policy.double()
    yield agent
    agent.close()


def problem(agent):
    return [synthetic_stack(agent.policy, 0)], synthetic_stack(agent.policy, 1)


def gradient(objective, params):
    leaves = leaves_of(params)
    return flat(torch.autograd.grad(objective(leaves), list(leaves.values())))


def finite_difference(objective, params, direction, eps=1e-6):
    """Central difference of `objective` along `direction` (flat)."""
    x = flat(params).detach()
    plus = objective(unflat(x + eps * direction, params)).item()
    minus = objective(unflat(x - eps * direction, params)).item()
    return (plus - minus) / (2 * eps)


def leaves_of(params):
    return {n: p.detach().clone().requires_grad_() for n, p in params.items()}


def test_second_order_meta_gradient_equals_finite_differences(agent):
    inner, post = problem(agent)
    params = agent.inner_loop.meta_parameters()

    def objective(p):
        return agent.outer_loss(
            leaves_of(p) if not p[next(iter(p))].requires_grad else p, inner, post
        )

    grad = gradient(lambda p: agent.outer_loss(p, inner, post), params)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        direction = torch.randn(grad.shape, generator=g, dtype=torch.float64)
        expected = finite_difference(
            lambda p: agent.outer_loss(leaves_of(p), inner, post), params, direction
        )
        assert (grad @ direction).item() == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_first_order_gradient_differs_and_equals_the_fixed_inner_gradient_difference(agent):
    inner, post = problem(agent)
    params = agent.inner_loop.meta_parameters()
    second = gradient(lambda p: agent.outer_loss(p, inner, post), params)
    agent.config.first_order = True
    first = gradient(lambda p: agent.outer_loss(p, inner, post), params)
    assert not torch.allclose(first, second, rtol=1e-3)

    # With the inner gradient g0 held at its value at θ, the objective is L_post(θ − α g0).
    leaves = leaves_of(params)
    stacked = agent.inner_loop.adapt(leaves, inner)
    step = {n: (leaves[n] - stacked[n]).detach() for n in leaves}  # α·g0 per task [n, ...]

    def fixed_inner(p):
        adapted = {n: p[n] - step[n] for n in p}
        log_probs = agent.inner_loop.log_probs(adapted, post.observations, post.actions)
        ratio = torch.exp(log_probs - post.log_probs)
        per_task = (ratio * post.advantages * post.mask).sum((1, 2)) / post.mask.sum((1, 2))
        return -per_task.mean()

    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        direction = torch.randn(first.shape, generator=g, dtype=torch.float64)
        expected = finite_difference(fixed_inner, params, direction)
        assert (first @ direction).item() == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_meta_sgd_step_sizes_receive_gradients(agent):
    agent.config.learn_inner_lr = True
    agent.inner_loop.step_sizes = {n: lr.double() for n, lr in agent.inner_loop.step_sizes.items()}
    inner, post = problem(agent)
    params = agent.inner_loop.meta_parameters()
    assert any(name.startswith(LR_PREFIX) for name in params)
    leaves = leaves_of(params)
    grads = torch.autograd.grad(agent.outer_loss(leaves, inner, post), list(leaves.values()))
    lr_grads = [g for name, g in zip(leaves, grads, strict=True) if name.startswith(LR_PREFIX)]
    assert lr_grads and all(torch.any(g != 0) for g in lr_grads)


def test_a_fisher_on_a_task_subset_still_keeps_every_tasks_kl_in_the_trust_region():
    config = MAMLConfig(
        meta_batch_size=4,
        episodes_per_task=5,
        horizon=20,
        hidden_sizes=(8,),
        num_workers=0,
        fisher_tasks=2,
        max_kl=0.005,
    )
    agent = MAML("navigation2d", config)
    try:
        metrics = [agent.train_step() for _ in range(3)]
    finally:
        agent.close()
    assert all(m["kl"] <= 0.005 + 1e-9 for m in metrics)
    assert any(m["accepted"] for m in metrics), metrics
