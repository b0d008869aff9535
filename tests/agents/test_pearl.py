"""PEARL: the product of Gaussians against its closed form, the posterior narrowing with context,
SAC losses falling on a fixed batch, exact resume, config checks, and (slow) learning on
Navigation2D."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from metarl.agents.pearl import PEARL, PEARLConfig, TaskBuffers
from metarl.agents.pearl_networks import (
    ContextEncoder,
    TanhGaussian,
    actor_loss,
    kl_to_standard_normal,
    product_of_gaussians,
)

TINY = dict(
    num_train_tasks=4,
    meta_batch_size=3,
    batch_size=16,
    context_batch_size=8,
    num_initial_episodes=1,
    num_tasks_sample=2,
    num_prior_episodes=1,
    num_extra_posterior_episodes=1,
    num_gradient_steps=3,
    horizon=10,
    hidden_sizes=(16, 16),
    encoder_hidden_sizes=(16,),
    num_eval_tasks=2,
    episodes_per_trial=2,
    max_envs=8,
    num_workers=0,
)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_agent(env="navigation2d", **values):
    return PEARL(env, PEARLConfig(**{**TINY, **values}))


def test_product_of_gaussians_is_the_precision_weighted_closed_form():
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(3, 7, 5, generator=generator)
    variances = torch.rand(3, 7, 5, generator=generator) + 0.1
    mean, variance = product_of_gaussians(means, variances)
    expected_variance = 1 / (1 / variances).sum(1)
    torch.testing.assert_close(variance, expected_variance)
    torch.testing.assert_close(mean, expected_variance * (means / variances).sum(1))
    # A single factor is itself; masked factors drop out.
    one = product_of_gaussians(means[:, :1], variances[:, :1])
    torch.testing.assert_close(one[0], means[:, 0])
    torch.testing.assert_close(one[1], variances[:, 0])
    mask = torch.zeros(3, 7)
    mask[:, :4] = 1
    masked = product_of_gaussians(means, variances, mask)
    unmasked = product_of_gaussians(means[:, :4], variances[:, :4])
    torch.testing.assert_close(masked[0], unmasked[0])
    torch.testing.assert_close(masked[1], unmasked[1])
    # Two scalar factors by hand: N(0, 1)·N(2, 1) ∝ N(1, 1/2).
    mean, variance = product_of_gaussians(torch.tensor([[0.0], [2.0]]), torch.ones(2, 1))
    torch.testing.assert_close(mean, torch.tensor([1.0]))
    torch.testing.assert_close(variance, torch.tensor([0.5]))


def test_kl_to_standard_normal_matches_torch():
    mean, variance = torch.randn(4, 5), torch.rand(4, 5) + 0.1
    q = torch.distributions.Normal(mean, variance.sqrt())
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mean, variance), expected)


def test_encoder_gives_the_prior_without_context_and_narrows_as_context_grows():
    agent = tiny_agent(horizon=50)
    try:
        agent.train_step()  # fills the buffers with real Navigation2D transitions
        rows = agent.replay.data[0, : int(agent.replay.size[0])]
        context = agent.context_of(rows)[None]
        with torch.no_grad():
            empty = agent.encoder(context[:, :0])
            masked = agent.encoder(context, torch.zeros(1, context.shape[1]))
            variances = [agent.encoder(context[:, :n])[1].mean().item() for n in (1, 5, 20, 45)]
        for mean, variance in (empty, masked):
            assert torch.equal(mean, torch.zeros(1, 5)) and torch.equal(variance, torch.ones(1, 5))
        assert all(a > b for a, b in itertools.pairwise(variances))
    finally:
        agent.close()


def test_trained_encoder_tells_tasks_apart_and_narrows_on_navigation2d():
    """Context identifies the goal: train the encoder alone to predict it, then the posterior of
    a task narrows as its context grows and its mean moves towards that task's own."""
    torch.manual_seed(0)
    obs_dim, action_dim, latent = 2, 2, 2
    encoder = ContextEncoder(2 * obs_dim + action_dim + 1, latent, (32, 32))
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-3)

    def context(goals, n):  # random moves and the reward −‖s' − g‖ they earn
        s = torch.rand(len(goals), n, 2) - 0.5
        a = (torch.rand(len(goals), n, 2) - 0.5) * 0.2
        r = -(s + a - goals[:, None]).norm(dim=-1, keepdim=True)
        return torch.cat([s, a * 10, r, s + a], -1)

    for _ in range(300):
        goals = torch.rand(32, 2) - 0.5
        mean, variance = encoder(context(goals, 16))
        z = mean + variance.sqrt() * torch.randn_like(mean)
        loss = ((z - goals) ** 2).sum(-1).mean() + 0.01 * kl_to_standard_normal(
            mean, variance
        ).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    goals = torch.rand(64, 2) - 0.5
    with torch.no_grad():
        full = context(goals, 64)
        few, many = encoder(full[:, :2]), encoder(full)
    assert (many[1] < few[1]).all()
    assert ((many[0] - goals) ** 2).sum(-1).mean() < 0.25 * (goals**2).sum(-1).mean()


def test_tanh_gaussian_log_prob_has_the_change_of_variables():
    scale = torch.tensor([0.1, 2.0])
    dist = TanhGaussian(scale)
    params = (torch.tensor([[0.3, -0.2]]), torch.tensor([[-0.5, 0.1]]))
    action = dist.sample(params, torch.Generator().manual_seed(0))
    assert (action.abs() <= scale).all()
    u = torch.atanh(action / scale)
    base = torch.distributions.Normal(params[0], params[1].exp()).log_prob(u)
    expected = (base - torch.log(scale * (1 - torch.tanh(u) ** 2))).sum(-1)
    torch.testing.assert_close(dist.distribution(params).log_prob(action), expected)


def test_task_buffers_grow_wrap_and_sample_per_task():
    buffers = TaskBuffers(num_tasks=2, width=3, max_size=5)
    buffers.add(0, torch.arange(12.0).reshape(4, 3))
    buffers.add(0, torch.full((3, 3), -1.0))  # 7 rows into 5 places: the 2 oldest go
    buffers.add(1, torch.ones(1, 3))
    assert buffers.size.tolist() == [5, 1]
    assert sorted(buffers.data[0, :, 0].tolist()) == [-1, -1, -1, 6, 9]
    batch = buffers.sample(torch.tensor([1, 0, 1]), 4, torch.Generator().manual_seed(0))
    assert batch.shape == (3, 4, 3) and (batch[0] == 1).all() and (batch[2] == 1).all()
    buffers.clear(1)
    with pytest.raises(RuntimeError, match="empty"):
        buffers.sample(torch.tensor([1]), 1, torch.Generator())


def fixed_batch(agent):
    agent.train_step()
    tasks = torch.arange(agent.config.meta_batch_size)
    generator = torch.Generator().manual_seed(1)
    context = agent.context_of(agent.encoder_buffer.sample(tasks, 8, generator))
    return context, agent.replay.sample(tasks, 64, generator)


def test_critic_loss_falls_on_a_fixed_batch():
    agent = tiny_agent(num_gradient_steps=0)
    try:
        context, batch = fixed_batch(agent)
        losses = [agent.update(context, batch)["critic_loss"] for _ in range(300)]
        assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    finally:
        agent.close()


def actor_objective(agent, context, batch):
    """The actor's loss on `batch` with z the posterior mean and fixed action noise."""
    with torch.no_grad():
        z = agent.encoder(context)[0][:, None].expand(-1, batch.shape[1], -1)
        obs = batch[..., : agent.obs_dim]
        action, log_prob, _, _ = agent.policy.rsample(obs, z, torch.Generator().manual_seed(0))
        return actor_loss(log_prob, *agent.critic(obs, action, z), agent.log_alpha.exp()).item()


def test_actor_loss_falls_on_a_fixed_batch_with_the_critic_held():
    agent = tiny_agent(num_gradient_steps=0, reward_scale=50.0)
    try:
        context, batch = fixed_batch(agent)
        for _ in range(100):  # a critic worth climbing
            agent.update(context, batch)
        for name in ("critic", "encoder"):
            for group in agent.optimizers[name].param_groups:
                group["lr"] = 0.0
        agent.config.tau = 0.0
        before = actor_objective(agent, context, batch)
        losses = [agent.update(context, batch)["actor_loss"] for _ in range(100)]
        after = actor_objective(agent, context, batch)
        assert after < before - 0.01, (before, after)  # deterministic: fixed z and noise
        assert np.mean(losses[-10:]) < np.mean(losses[:10])
    finally:
        agent.close()


def test_train_step_metrics_and_exact_resume(tmp_path):
    agent = tiny_agent(eval_every=1)
    try:
        first = agent.train_step()
        path = tmp_path / "state.pt"
        torch.save(agent.state_dict(), path)
        second = agent.train_step()
    finally:
        agent.close()
    # The first iteration also fills every task's buffers: 4 tasks × 1 episode of 10 steps.
    assert first["env_steps"] == (4 + 2 * 2) * 10 and second["env_steps"] == 2 * 2 * 10
    assert np.isfinite(first["test_return"]) and np.isfinite(first["critic_loss"])
    resumed = tiny_agent(eval_every=1)
    try:
        resumed.load_state_dict(torch.load(path, weights_only=True))
        again = resumed.train_step()
    finally:
        resumed.close()
    assert again == second


def test_trial_returns_shape_and_prior_first_episode():
    agent = tiny_agent()
    try:
        returns = agent.trial_returns(agent.task_env.sample_tasks(9), 3)
    finally:
        agent.close()
    assert returns.shape == (3, 9) and torch.isfinite(returns).all()  # over two sampler chunks


def test_bad_config_values_and_discrete_actions_raise_clear_errors():
    with pytest.raises(ValueError, match="meta_batch_size"):
        PEARLConfig(meta_batch_size=0)
    with pytest.raises(ValueError, match="num_tasks_sample"):
        PEARLConfig(num_train_tasks=3, num_tasks_sample=5)
    with pytest.raises(ValueError, match="discount"):
        PEARLConfig(discount=1.5)
    with pytest.raises(ValueError, match="kl_weight"):
        PEARLConfig(kl_weight=-1.0)
    with pytest.raises(ValueError, match="num_extra_posterior_episodes"):
        PEARLConfig(num_extra_posterior_episodes=-1)
    with pytest.raises(ValueError, match="continuous"):
        tiny_agent("bandit")


def random_returns(tasks, seed=0):
    """Mean return of uniformly random actions on Navigation2D's `tasks`."""
    env = gym.make("metarl/Navigation2D-v0").unwrapped
    env.action_space.seed(seed)
    totals = []
    for i, task in enumerate(tasks):
        env.set_task(task)
        env.reset(seed=seed + i)
        totals.append(sum(env.step(env.action_space.sample())[1] for _ in range(100)))
    return float(np.mean(totals))


@pytest.mark.slow
def test_pearl_beats_a_random_policy_on_navigation2d():
    config = PEARLConfig(
        num_train_tasks=20,
        meta_batch_size=8,
        batch_size=128,
        num_initial_episodes=4,
        num_tasks_sample=5,
        num_prior_episodes=2,
        num_extra_posterior_episodes=2,
        num_gradient_steps=100,
        hidden_sizes=(64, 64),
        encoder_hidden_sizes=(64, 64),
        num_eval_tasks=10,
        eval_every=0,
        num_workers=0,
    )
    agent = PEARL("navigation2d", config)
    try:
        for _ in range(15):
            agent.train_step()
        pearl = agent.trial_returns(agent.eval_tasks, 2)[-1].mean().item()
    finally:
        agent.close()
    random = random_returns(agent.eval_tasks)
    assert pearl > random + 15, (pearl, random)
