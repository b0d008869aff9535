"""MAML's meta-gradient against finite differences: exact second order, first-order switch,
Meta-SGD's learned step sizes, E-MAML's extra term."""

import pytest
import torch

from metarl.agents.maml import LR_PREFIX, MAML, MAMLConfig, TaskBatch
from metarl.episodes import Episodes
from metarl.optim import flat, unflat


def synthetic_batch(policy, seed, steps=6, columns=3):
    """A task's episodes with actions drawn from `policy`, fixed advantages, float64."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(steps, columns, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = policy(obs)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=g, dtype=torch.float64)
        log_probs = policy.action_dist.distribution((mean, log_std)).log_prob(actions)
    dones = torch.zeros(steps, columns, dtype=torch.bool)
    dones[-1] = True
    episodes = Episodes(
        observations=obs,
        actions=actions,
        rewards=torch.zeros(steps, columns, dtype=torch.float64),
        log_probs=log_probs,
        dones=dones,
        terminated=torch.zeros_like(dones),
        mask=torch.ones(steps, columns, dtype=torch.float64),
        task_index=torch.zeros(columns, dtype=torch.long),
        tasks=[{"goal": [0.0, 0.0]}],
    )
    return TaskBatch(episodes, torch.randn(steps, columns, generator=g, dtype=torch.float64))


@pytest.fixture
def agent():
    config = MAMLConfig(meta_batch_size=1, episodes_per_task=1, hidden_sizes=(5,), num_workers=0)
    agent = MAML("navigation2d", config)
    agent.policy.double()
    yield agent
    agent.close()


def problem(agent, tasks=2):
    inner = [[synthetic_batch(agent.policy, 10 * i)] for i in range(tasks)]
    post = [synthetic_batch(agent.policy, 10 * i + 1) for i in range(tasks)]
    return inner, post


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
    params = agent.meta_parameters()

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
    params = agent.meta_parameters()
    second = gradient(lambda p: agent.outer_loss(p, inner, post), params)
    agent.config.first_order = True
    first = gradient(lambda p: agent.outer_loss(p, inner, post), params)
    assert not torch.allclose(first, second, rtol=1e-3)

    # With the inner gradient g0 held at its value at θ, the objective is L_post(θ − α g0).
    fixed = []
    for batches in inner:
        leaves = leaves_of(params)
        adapted = agent.inner_step(leaves, leaves, batches[0])
        fixed.append({n: (leaves[n] - adapted[n]).detach() for n in leaves})  # α·g0

    def fixed_inner(p):
        losses = []
        for step, b in zip(fixed, post, strict=True):
            adapted = {n: p[n] - step[n] for n in p}
            ep = b.episodes
            log_probs = agent.distribution(adapted, ep.observations).log_prob(ep.actions)
            losses.append(-(torch.exp(log_probs - ep.log_probs) * b.advantages).mean())
        return torch.stack(losses).mean()

    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        direction = torch.randn(first.shape, generator=g, dtype=torch.float64)
        expected = finite_difference(fixed_inner, params, direction)
        assert (first @ direction).item() == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_meta_sgd_step_sizes_receive_gradients(agent):
    agent.config.learn_inner_lr = True
    agent.inner_lrs = {n: lr.double() for n, lr in agent.inner_lrs.items()}
    inner, post = problem(agent)
    params = agent.meta_parameters()
    assert any(name.startswith(LR_PREFIX) for name in params)
    leaves = leaves_of(params)
    grads = torch.autograd.grad(agent.outer_loss(leaves, inner, post), list(leaves.values()))
    lr_grads = [g for name, g in zip(leaves, grads, strict=True) if name.startswith(LR_PREFIX)]
    assert lr_grads and all(torch.any(g != 0) for g in lr_grads)
