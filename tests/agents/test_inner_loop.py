"""The gradient-based inner loop that MAML and ProMP share: the vmapped inner step against a
per-task loop, Meta-SGD's (log-parameterized) step sizes, the KL helper, a sampled meta-batch,
the value-only adaptation of the sampling path, and its state."""

import pytest
import torch

from metarl.agents.maml import vpg_inner_loss
from metarl.agents.parts import inner_loop
from metarl.agents.parts.inner_loop import (
    LOG_LR_PREFIX,
    GradientInnerLoop,
    InnerLoopConfig,
    TaskStack,
    expand_tasks,
)
from metarl.agents.promp import lvc_inner_loss
from metarl.backend.optim import leaves
from metarl.policies import call, parameters

TINY = dict(meta_batch_size=2, episodes_per_task=2, horizon=8, hidden_sizes=(5,), num_workers=0)


def make_loop(inner_loss=vpg_inner_loss, **overrides):
    return GradientInnerLoop("navigation2d", InnerLoopConfig(**TINY, **overrides), inner_loss)


@pytest.fixture
def loop():
    loop = make_loop()
    yield loop
    loop.close()


def synthetic_stack(policy, seed, tasks=3, steps=4, columns=2):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(tasks, steps, columns, 2, generator=g)
    with torch.no_grad():
        mean, log_std = policy(obs)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=g)
        log_probs = policy.action_dist.distribution((mean, log_std)).log_prob(actions)
    mask = torch.ones(tasks, steps, columns)
    mask[2, -1, 1] = 0
    advantages = torch.randn(tasks, steps, columns, generator=g)
    return TaskStack(obs, actions, log_probs, mask, advantages)


def per_task_step(loop, params, stack, i, lr):
    """One inner step of task i alone, without vmap."""
    leaves = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
    dist = loop.policy.action_dist.distribution(call(loop.policy, leaves, stack.observations[i]))
    loss = loop.inner_loss(
        dist.log_prob(stack.actions[i]), stack.log_probs[i], stack.advantages[i], stack.mask[i]
    )
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {n: p - lr * g for (n, p), g in zip(leaves.items(), grads, strict=True)}


@pytest.mark.parametrize("inner_loss", [vpg_inner_loss, lvc_inner_loss], ids=["vpg", "lvc"])
def test_the_vmapped_inner_step_is_each_tasks_own_step(inner_loss):
    loop = make_loop(inner_loss)
    try:
        stack = synthetic_stack(loop.policy, 0)
        meta_params = loop.meta_parameters()
        adapted = loop.adapt(meta_params, [stack])
        for i in range(stack.num_tasks):
            expected = per_task_step(loop, parameters(loop.policy), stack, i, loop.config.inner_lr)
            for name, value in expected.items():
                torch.testing.assert_close(adapted[name][i], value, rtol=1e-5, atol=1e-6)
    finally:
        loop.close()


def test_meta_sgd_step_sizes_are_meta_parameters_and_scale_the_step():
    loop = make_loop(learn_inner_lr=True, inner_lr=0.05)
    try:
        meta_params = loop.meta_parameters()
        names = [n for n, _ in loop.policy.named_parameters()]
        assert sorted(meta_params) == sorted(names + [LOG_LR_PREFIX + n for n in names])
        log_lr = meta_params[LOG_LR_PREFIX + names[0]]
        assert log_lr is loop.log_step_sizes[names[0]]
        torch.testing.assert_close(loop.step_size(meta_params, names[0]), log_lr.exp())
        torch.testing.assert_close(log_lr.exp(), torch.full_like(log_lr, 0.05))
        stack = synthetic_stack(loop.policy, 1)
        adapted = loop.adapt(meta_params, [stack])
        expected = per_task_step(loop, parameters(loop.policy), stack, 0, 0.05)
        for name, value in expected.items():
            torch.testing.assert_close(adapted[name][0], value, rtol=1e-5, atol=1e-6)
    finally:
        loop.close()


def test_without_meta_sgd_the_step_size_is_the_configured_constant(loop):
    meta_params = loop.meta_parameters()
    assert not any(n.startswith(LOG_LR_PREFIX) for n in meta_params)
    assert loop.step_size(meta_params, next(iter(meta_params))) == loop.config.inner_lr


def test_the_kl_is_zero_at_the_old_policies_and_positive_after_a_step(loop):
    stack = synthetic_stack(loop.policy, 2)
    meta_params = loop.meta_parameters()
    stacked = expand_tasks(meta_params, stack.num_tasks)
    with torch.no_grad():
        old = loop.dist_params(stacked, stack.observations)
    assert loop.kl(old, stacked, stack).item() == pytest.approx(0.0, abs=1e-7)
    assert loop.kl(old, loop.adapt(meta_params, [stack]), stack).item() > 0


def test_a_meta_batch_holds_every_stage_and_its_metrics(loop):
    batch = loop.sample_meta_batch()
    assert len(batch.tasks) == 2 and len(batch.inner) == 1 and len(batch.stages) == 2
    assert batch.post.num_tasks == 2 and batch.post.observations.shape[:3] == (2, 8, 2)
    assert all(p.shape[0] == 2 for p in batch.adapted.values())
    metrics = batch.metrics()
    assert list(metrics) == ["pre_return", "post_return", "env_steps"]
    assert metrics["env_steps"] == 2 * 2 * 2 * 8  # stages × tasks × episodes × horizon


def test_load_meta_parameters_and_state_dict_round_trip():
    source, target = make_loop(learn_inner_lr=True, seed=1), make_loop(learn_inner_lr=True)
    try:
        shifted = {n: p.detach() + 0.5 for n, p in source.meta_parameters().items()}
        source.load_meta_parameters(shifted)
        state = source.state_dict()
        assert list(state) == ["policy", "log_inner_lrs", "task_rng", "sampler"]
        target.load_state_dict(state)
        for name, value in target.meta_parameters().items():
            torch.testing.assert_close(value.detach(), shifted[name])
        assert source.task_env.sample_tasks(3) == target.task_env.sample_tasks(3)
    finally:
        source.close()
        target.close()


def test_meta_sgd_needs_a_positive_initial_step_size():
    with pytest.raises(ValueError, match="inner_lr"):
        InnerLoopConfig(learn_inner_lr=True, inner_lr=0.0)
    InnerLoopConfig(inner_lr=0.0)  # a constant zero step is allowed (no adaptation)


def test_the_sampling_path_adapts_step_by_step_to_the_values_of_the_differentiable_path():
    loop = make_loop(num_inner_steps=3, learn_inner_lr=True)
    try:
        inner, stages, adapted = loop.sample_adaptation(
            [{"goal": [0.3, -0.2]}, {"goal": [-0.1, 0.4]}], 3
        )
        assert len(inner) == 3 and len(stages) == 4
        differentiable = loop.adapt(leaves(loop.meta_parameters()), inner)
        for name, value in adapted.items():
            assert not value.requires_grad
            assert torch.equal(value, differentiable[name].detach()), name
        stages_params = loop.adapt_stages(leaves(loop.meta_parameters()), inner)
        assert len(stages_params) == 4
        for name, value in differentiable.items():
            assert torch.equal(value, stages_params[-1][name]), name
    finally:
        loop.close()


def test_tasks_run_through_the_network_in_chunks_to_the_same_values(loop, monkeypatch):
    stack = synthetic_stack(loop.policy, 4, tasks=5)
    at = leaves(loop.meta_parameters())
    stacked = loop.inner_step(at, expand_tasks(at, 5), stack)
    whole = loop.dist_params(stacked, stack.observations)
    # 2 steps × 2 columns × 5 units × 4 bytes per task: 2 tasks per chunk, 3 chunks.
    monkeypatch.setattr(inner_loop, "CHUNK_BYTES", 2 * 4 * 2 * 5 * 4)
    chunked = loop.dist_params(stacked, stack.observations)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    grads = [
        torch.autograd.grad(x[0].sum(), list(at.values()), retain_graph=True)
        for x in (whole, chunked)
    ]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
