"""MAML's meta-gradient against finite differences (exact second order, the first-order switch),
Meta-SGD's log-parameterized step sizes, E-MAML's extra term and its batch check, the trust
region checked from the policies themselves, loud non-finite losses, value-only graphs in the
line search and the sampling path, and a Meta-SGD learning test."""

import copy
import dataclasses
import math

import pytest
import torch
from adaptation import TINY_NAVIGATION, synthetic_stack, train_and_measure, zero_action_return
from torch.distributions import kl_divergence

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.parts.inner_loop import LOG_LR_PREFIX
from metarl.backend.optim import flat, leaves, unflat
from metarl.cli import main
from metarl.policies import call
from metarl.sampling.tasks import held_out_tasks
from metarl.training.checkpoint import load_checkpoint
from metarl.training.logger import read_progress

TINY = dict(meta_batch_size=2, episodes_per_task=2, horizon=10, hidden_sizes=(8,), num_workers=0)


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


# ----- Meta-SGD ---------------------------------------------------------------------------------


def test_meta_sgd_meta_learns_log_step_sizes_whose_gradients_reach_every_parameter(agent):
    agent.config.learn_inner_lr = True
    loop = agent.inner_loop
    loop.log_step_sizes = {n: lr.double() for n, lr in loop.log_step_sizes.items()}
    inner, post = problem(agent)
    params = loop.meta_parameters()
    logs = {n: p for n, p in params.items() if n.startswith(LOG_LR_PREFIX)}
    assert len(logs) == len(list(agent.policy.parameters()))
    for name, value in logs.items():  # α = exp(log α), starting at inner_lr
        torch.testing.assert_close(value.exp(), torch.full_like(value, agent.config.inner_lr))
        torch.testing.assert_close(loop.step_sizes[name.removeprefix(LOG_LR_PREFIX)], value.exp())
    leaves = leaves_of(params)
    grads = torch.autograd.grad(agent.outer_loss(leaves, inner, post), list(leaves.values()))
    lr_grads = [g for name, g in zip(leaves, grads, strict=True) if name in logs]
    assert lr_grads and all(torch.any(g != 0) for g in lr_grads)


def test_meta_sgd_step_sizes_stay_positive_under_training():
    # Before the log parameterization, seed 0 took a weight's α from 0.1 to -0.21 in 3 steps.
    config = MAMLConfig(**{**TINY, "meta_batch_size": 4, "episodes_per_task": 5})
    agent = MAML("navigation2d", dataclasses.replace(config, learn_inner_lr=True))
    try:
        for _ in range(3):
            assert agent.train_step()["accepted"] == 1.0
            step_sizes = torch.cat([a.flatten() for a in agent.inner_loop.step_sizes.values()])
            assert torch.all(step_sizes > 0), step_sizes.min()
    finally:
        agent.close()


def test_meta_sgd_training_enlarges_step_sizes_that_are_too_small():
    # With α = 0.01 one inner step barely moves the policy, so a larger α is clearly better:
    # above all the output bias's, which shifts the action mean towards the task's goal.
    # Measured over seeds 0-2 after 3 iterations: that bias's log α rose by 0.66, 0.52, 0.86,
    # and 89%, 93%, 82% of all the α grew.
    config = MAMLConfig(
        **{**TINY, "meta_batch_size": 4, "episodes_per_task": 5},
        learn_inner_lr=True,
        inner_lr=0.01,
    )
    agent = MAML("navigation2d", config)
    try:
        for _ in range(3):
            agent.train_step()
        log_lrs = {n: v.detach() for n, v in agent.inner_loop.log_step_sizes.items()}
    finally:
        agent.close()
    change = {n: v - math.log(0.01) for n, v in log_lrs.items()}
    output_bias = [n for n in change if n.endswith("bias")][-1]
    assert change[output_bias].mean() > 0.25, change[output_bias]
    grew = torch.cat([c.flatten() for c in change.values()]) > 0
    assert grew.float().mean() > 0.65, grew.float().mean()


def test_meta_sgd_checkpoints_round_trip_log_step_sizes_and_old_ones_still_load():
    config = MAMLConfig(**TINY, learn_inner_lr=True)
    agent, other = MAML("navigation2d", config), MAML("navigation2d", config)
    try:
        with torch.no_grad():
            for log_lr in agent.inner_loop.log_step_sizes.values():
                log_lr.add_(torch.linspace(-1, 1, log_lr.numel()).reshape(log_lr.shape))
        state = copy.deepcopy(agent.state_dict())
        assert "log_inner_lrs" in state and "inner_lrs" not in state
        other.load_state_dict(state)
        for name, value in other.inner_loop.log_step_sizes.items():
            assert torch.equal(value, agent.inner_loop.log_step_sizes[name])  # exact resume
        # A checkpoint of the unconstrained Meta-SGD stored α itself, under "inner_lrs".
        old = {k: v for k, v in state.items() if k != "log_inner_lrs"}
        old["inner_lrs"] = {
            n: torch.full_like(a, 0.25) for n, a in agent.inner_loop.step_sizes.items()
        }
        other.load_state_dict(old)
        for value in other.inner_loop.step_sizes.values():
            torch.testing.assert_close(value, torch.full_like(value, 0.25))
        old["inner_lrs"][next(iter(old["inner_lrs"]))][0] = -0.1
        with pytest.raises(ValueError, match="step size"):
            other.load_state_dict(old)
    finally:
        agent.close()
        other.close()


# ----- E-MAML -----------------------------------------------------------------------------------


def test_e_mamls_extra_term_is_the_credit_weighted_pre_update_policy_gradient(agent):
    agent.config.exploration_weight = 0.5
    inner, post = problem(agent)
    pre = inner[0]
    credit = torch.tensor([1.5, -0.7], dtype=torch.float64)
    params = agent.inner_loop.meta_parameters()
    extra = gradient(lambda p: agent.outer_loss(p, inner, post, credit), params) - gradient(
        lambda p: agent.outer_loss(p, inner, post), params
    )

    # By hand: −w · Σ_i credit_i Σ_t,e mask ∇ log π_θ(a|s) / Σ mask, task by task without vmap.
    at = leaves_of(params)
    total = 0.0
    for i in range(pre.num_tasks):
        dist = agent.policy.action_dist.distribution(call(agent.policy, at, pre.observations[i]))
        total = total + credit[i] * (dist.log_prob(pre.actions[i]) * pre.mask[i]).sum()
    expected = -0.5 * total / pre.mask.sum()
    expected_grad = flat(torch.autograd.grad(expected, list(at.values())))
    torch.testing.assert_close(extra, expected_grad, rtol=1e-8, atol=1e-12)
    value = agent.outer_loss(params, inner, post, credit) - agent.outer_loss(params, inner, post)
    # The likelihood ratio is 1 at the sampling θ, so the term's value is −w·mean(credit).
    steps = pre.mask.sum((1, 2))
    assert value.item() == pytest.approx(-0.5 * (credit * steps).sum().item() / steps.sum().item())


def test_e_mamls_credit_is_the_post_update_return_standardized_across_tasks():
    agent = MAML("navigation2d", MAMLConfig(**TINY, exploration_weight=0.1))
    try:
        batch = agent.inner_loop.sample_meta_batch()
    finally:
        agent.close()
    returns = batch.stages[-1].episode_returns().reshape(2, 2).mean(1)
    credit = agent._exploration_credit(batch.stages[-1])
    torch.testing.assert_close(credit, (returns - returns.mean()) / returns.std())
    assert credit[0] == -credit[1]


def test_e_maml_needs_two_tasks_per_batch():
    with pytest.raises(ValueError, match=r"exploration_weight.*meta_batch_size"):
        MAMLConfig(meta_batch_size=1, exploration_weight=0.1)
    MAMLConfig(meta_batch_size=1)  # plain MAML adapts on one task
    MAMLConfig(meta_batch_size=2, exploration_weight=0.1)


def test_a_nan_exploration_term_is_an_error_that_names_it():
    # One task per batch, past the config check: the std of one standardized return is NaN.
    agent = MAML("navigation2d", MAMLConfig(**TINY, exploration_weight=0.1))
    agent.config.meta_batch_size = 1
    try:
        with (
            pytest.warns(UserWarning, match="degrees of freedom"),
            pytest.raises(FloatingPointError, match="E-MAML exploration term is nan"),
        ):
            agent.train_step()
    finally:
        agent.close()


def test_a_nan_loss_stops_training_with_one_line_naming_the_iteration_and_the_term(
    tmp_path, capsys, monkeypatch
):
    import metarl.agents.maml as maml_module

    calls = []
    original = maml_module.surrogate_loss

    def nan_in_the_second_iteration(*args):
        loss = original(*args)
        return loss * math.nan if len(calls) >= 1 else loss

    def count_steps(self, _original=MAML.train_step):
        try:
            return _original(self)
        finally:
            calls.append(1)

    monkeypatch.setattr(maml_module, "surrogate_loss", nan_in_the_second_iteration)
    monkeypatch.setattr(MAML, "train_step", count_steps)
    run = tmp_path / "run"
    sets = [f"--set={k}={list(v) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    args = ["train", "maml-trpo", "--env", "navigation2d", "--out", str(run), *sets]
    assert main([*args, "--iterations", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("metarl: error: iteration 2: surrogate loss is nan (iteration 1's")
    assert f"--restart {run} --set KEY=VALUE" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert len(read_progress(run / "progress.csv")) == 1
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 1


# ----- the trust region, from the policies ------------------------------------------------------


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
    loop = agent.inner_loop
    batches, infos = [], []
    sample = loop.sample_meta_batch
    loop.sample_meta_batch = lambda: batches.append(sample()) or batches[-1]
    try:
        for _ in range(3):
            old_policy = copy.deepcopy(agent.policy)
            info = agent.train_step()
            infos.append(info)
            batch = batches[-1]
            # KL(old ‖ new) of the adapted policies on the post-update episodes, task by task:
            # the old ones sampled them; the new ones adapt the new θ on the same inner episodes.
            new_adapted = loop.adapt(leaves(loop.meta_parameters()), batch.inner)
            old_adapted = loop.adapt(leaves(dict(old_policy.named_parameters())), batch.inner)
            kls = []
            for i in range(len(batch.tasks)):
                obs, valid = batch.post.observations[i], batch.post.mask[i].bool()
                with torch.no_grad():
                    dists = [
                        agent.policy.action_dist.distribution(
                            call(agent.policy, {n: p[i] for n, p in adapted.items()}, obs)
                        )
                        for adapted in (old_adapted, new_adapted)
                    ]
                kls.append(kl_divergence(*dists)[valid].mean())
            kl = torch.stack(kls).mean().item()
            assert kl <= config.max_kl * (1 + 1e-4)
            assert kl == pytest.approx(info["kl"], rel=1e-4, abs=1e-9)
            assert (kl > 0) == bool(info["accepted"])
    finally:
        agent.close()
    assert any(info["accepted"] for info in infos), infos


# ----- value-only graphs (issue 11, item 8) -----------------------------------------------------


def spy_on_create_graph(monkeypatch):
    """The `create_graph` flag of every `torch.autograd.grad` call from now on."""
    flags = []
    original = torch.autograd.grad

    def spy(*args, **kwargs):
        flags.append(bool(kwargs.get("create_graph", False)))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    return flags


def test_only_the_differentiated_closures_build_second_order_graphs(monkeypatch):
    agent = MAML("navigation2d", MAMLConfig(**TINY, num_inner_steps=2))
    try:
        flags = spy_on_create_graph(monkeypatch)
        batch = agent.inner_loop.sample_meta_batch()
        assert not any(flags)  # sampling only needs the adapted parameters' values
        agent.inner_loop.sample_meta_batch = lambda: batch
        flags.clear()
        info = agent.train_step()
    finally:
        agent.close()
    # One graph through the 2 inner steps serves the loss's gradient and the KL's curvature;
    # the Gauss-Newton product adds one (Jᵀu, linear in u); the line search's candidates none.
    assert sum(flags) == 2 + 1, (flags, info)


def test_the_value_only_paths_give_the_values_of_the_second_order_ones():
    agent = MAML("navigation2d", MAMLConfig(**TINY, num_inner_steps=2))
    try:
        loop = agent.inner_loop
        batch = loop.sample_meta_batch()
        at = leaves(loop.meta_parameters())
        second_order = loop.adapt(at, batch.inner)
        for name, value in batch.adapted.items():  # what the sampler ran
            assert torch.equal(value, second_order[name].detach()), name
        old = loop.dist_params(batch.adapted, batch.post.observations)
        for fn in (
            lambda p, **kw: agent.outer_loss(p, batch.inner, batch.post, **kw),
            lambda p, **kw: agent.outer_kl(p, batch.inner, batch.post, old, **kw),
        ):
            shifted = {n: p + 0.01 for n, p in at.items()}  # a line-search candidate
            for p in (at, shifted):
                assert torch.equal(fn(p, create_graph=False), fn(p, create_graph=True))
    finally:
        agent.close()


# ----- learning ---------------------------------------------------------------------------------


# Fixed held-out tasks for every seed; the zero-action policy stays at the origin and gets
# −‖g‖ every step: −6.44 per 20-step episode on these tasks.
HELD_OUT = held_out_tasks("navigation2d", {}, 10_000, 20)


@pytest.mark.learning
def test_meta_sgd_learns_to_adapt_on_navigation():
    # 10 tasks × 10 episodes × 20 steps, 20 iterations: about 20 s of CPU.
    config = MAMLConfig(**TINY_NAVIGATION, seed=0, learn_inner_lr=True)
    agent = MAML("navigation2d", config)
    post_at_0, pre, post = train_and_measure(agent, 20, HELD_OUT)
    zero = zero_action_return(HELD_OUT, 20)
    assert zero == pytest.approx(-6.44, abs=0.01)
    # Measured, seeds 0 / 1 / 2 / 3 (this test: seed 0). Untrained (iteration 0): post-update
    # -9.75 / -11.59 / -10.00 / -11.10, and 6 re-evaluations of each spread over at most 1.1;
    # after 20 iterations: post -3.93 / -4.99 / -4.07 / -4.16, pre -7.46 / -7.46 / -6.76 / -7.06.
    assert post > post_at_0 + 3.0, (post_at_0, post)  # learned: +5.8 / 6.6 / 5.9 / 6.9
    # A policy that does not adapt gets about the zero-action return at best (the goals are
    # spread around the origin); the untrained agent is 3.3-5.2 below it. Learned: +2.5 / 1.5 /
    # 2.4 / 2.3 above it.
    assert post > zero + 1.0, (zero, post)
    # One inner step gains 2.5 / 3.5 / 2.7 / 2.9 after training; the untrained agent's step,
    # over the 24 evaluations above, -0.1 to 1.85.
    assert post > pre + 2.0, (pre, post)
