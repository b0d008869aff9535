"""ProMP beside MAML: the same inner loop and initial weights, its own outer loop and checkpoint
state (old checkpoints, which also held MAML's Fisher RNG, still load); the inner objective's
importance weights against the sampling policy; the adaptive inner-KL coefficients; loud
non-finite losses; value-only graphs; and a learning test."""

import copy
import math

import pytest
import torch
from adaptation import TINY_NAVIGATION, synthetic_stack, train_and_measure, zero_action_return

import metarl.agents.promp as promp_module
from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.promp import ProMP, ProMPConfig, adapt_inner_kl_coeffs
from metarl.backend.losses import vpg_loss
from metarl.backend.optim import leaves
from metarl.policies import call
from metarl.sampling.tasks import held_out_tasks

TINY = dict(meta_batch_size=2, episodes_per_task=2, horizon=8, hidden_sizes=(5,), num_workers=0)


def test_promp_is_a_sibling_of_maml_with_its_own_outer_loop():
    assert not issubclass(ProMP, MAML)
    for trpo_only in ("outer_loss", "outer_kl", "_exploration_loss", "_exploration_credit"):
        assert not hasattr(ProMP, trpo_only)


def test_maml_and_promp_start_from_the_same_weights():
    maml, promp = (
        MAML("navigation2d", MAMLConfig(**TINY)),
        ProMP("navigation2d", ProMPConfig(**TINY)),
    )
    try:
        for (name, a), (_, b) in zip(
            maml.policy.state_dict().items(), promp.policy.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name
    finally:
        maml.close()
        promp.close()


def test_promp_resumes_from_its_state_and_from_a_checkpoint_with_a_fisher_rng():
    first, second = (
        ProMP("navigation2d", ProMPConfig(**TINY)),
        ProMP("navigation2d", ProMPConfig(**TINY, seed=5)),
    )
    try:
        first.train_step()
        state = copy.deepcopy(first.state_dict())  # as a checkpoint file holds it
        assert set(state) == {
            "policy",
            "log_inner_lrs",
            "task_rng",
            "sampler",
            "optimizer",
            "inner_kl_coeffs",
        }
        old_style = {**state, "fisher_rng": torch.Generator().get_state()}
        del old_style["inner_kl_coeffs"]  # older still: before the adaptive coefficients
        second.load_state_dict(old_style)
        assert first.train_step() == second.train_step()
    finally:
        first.close()
        second.close()


def test_maml_checkpoints_keep_their_keys():
    agent = MAML("navigation2d", MAMLConfig(**TINY))
    try:
        assert list(agent.state_dict()) == [
            "policy",
            "log_inner_lrs",
            "task_rng",
            "sampler",
            "fisher_rng",
        ]
    finally:
        agent.close()


# ----- the inner objective (issue 11, item 2) ---------------------------------------------------


def inner_gradients(agent, theta, stack):
    """The inner step's gradient per task, read off θ' = θ − α g: g = (θ − θ') / α."""
    adapted = agent.inner_loop.adapt(leaves(theta), [stack])
    alpha = agent.config.inner_lr
    return {n: (theta[n] - adapted[n].detach()) / alpha for n in theta}


def test_the_inner_gradient_away_from_the_sampling_policy_is_importance_weighted():
    agent = ProMP("navigation2d", ProMPConfig(**TINY))
    try:
        agent.policy.double()
        stack = synthetic_stack(agent.policy, 0)  # sampled by θo
        theta_o = {n: p.detach().clone() for n, p in agent.inner_loop.meta_parameters().items()}
        g = torch.Generator().manual_seed(3)
        theta = {
            n: p + 0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype)
            for n, p in theta_o.items()
        }
        # At θo the inner gradient is the policy gradient (LVC's is VPG's there).
        at_o = inner_gradients(agent, theta_o, stack)
        got = inner_gradients(agent, theta, stack)
        for i in range(stack.num_tasks):
            at = leaves(theta_o)
            dist = agent.policy.action_dist.distribution(
                call(agent.policy, at, stack.observations[i])
            )
            vpg = vpg_loss(dist.log_prob(stack.actions[i]), stack.advantages[i], stack.mask[i])
            expected = torch.autograd.grad(vpg, list(at.values()))
            for name, e in zip(at, expected, strict=True):
                torch.testing.assert_close(at_o[name][i], e, rtol=1e-6, atol=1e-9, msg=name)

            # At θ: −mean over θo's episodes of π_θ/π_θo · A · ∇ log π_θ, by hand.
            at = leaves(theta)
            dist = agent.policy.action_dist.distribution(
                call(agent.policy, at, stack.observations[i])
            )
            log_probs = dist.log_prob(stack.actions[i])
            weights = torch.exp(log_probs - stack.log_probs[i]).detach()
            valid = stack.mask[i].bool()
            assert weights[valid].min() < 0.8 and weights[valid].max() > 1.25  # not ≈ 1
            objective = -(weights * stack.advantages[i] * log_probs * stack.mask[i]).sum()
            objective = objective / stack.mask[i].sum()
            expected = torch.autograd.grad(objective, list(at.values()))
            for name, e in zip(at, expected, strict=True):
                torch.testing.assert_close(got[name][i], e, rtol=1e-6, atol=1e-9, msg=name)
    finally:
        agent.close()


# ----- the adaptive inner-KL coefficients (issue 11, item 3) ------------------------------------


def test_the_adaptive_rule_halves_below_the_band_and_doubles_above_it():
    target = 0.01  # the band is (target / 1.5, target · 1.5)
    kls = torch.tensor([0.001, target / 1.5, 0.01, target * 1.5, 0.02], dtype=torch.float64)
    coeffs = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64)
    new = adapt_inner_kl_coeffs(coeffs, kls, target)
    assert new.tolist() == [0.5, 2.0, 4.0, 8.0, 32.0]
    assert coeffs.tolist() == [1.0, 2.0, 4.0, 8.0, 16.0]  # a new tensor


def test_the_defaults_are_the_official_run_scripts():
    config = ProMPConfig()
    assert (config.adaptive_inner_kl, config.target_inner_kl, config.inner_kl_coeff) == (
        False,
        0.01,
        5e-4,
    )


@pytest.mark.parametrize("adaptive", [True, False], ids=["adaptive", "fixed"])
def test_each_inner_step_has_a_coefficient_adapted_by_the_rule_logged_and_checkpointed(adaptive):
    config = ProMPConfig(
        **TINY, num_inner_steps=2, adaptive_inner_kl=adaptive, target_inner_kl=1e-4
    )
    agent, twin = ProMP("navigation2d", config), ProMP("navigation2d", config)
    try:
        assert agent.inner_kl_coeffs.tolist() == [5e-4, 5e-4]
        history = []
        for _ in range(3):
            before = agent.inner_kl_coeffs.clone()
            metrics = agent.train_step()
            kls = torch.tensor([metrics["inner_kl_1"], metrics["inner_kl_2"]], dtype=torch.float64)
            expected = adapt_inner_kl_coeffs(before, kls, 1e-4) if adaptive else before
            assert agent.inner_kl_coeffs.tolist() == expected.tolist()
            assert metrics["inner_kl"] == pytest.approx(kls.mean().item())
            if adaptive:
                coeffs = [metrics["inner_kl_coeff_1"], metrics["inner_kl_coeff_2"]]
                assert coeffs == expected.tolist()
                assert metrics["inner_kl_coeff"] == pytest.approx(expected.mean().item())
            else:  # constant: the config's η (the columns of a fixed-η run stay as they were)
                assert not any(key.startswith("inner_kl_coeff") for key in metrics)
            history.append(expected.tolist())
        if adaptive:
            assert history[-1] != [5e-4, 5e-4]
        twin.load_state_dict(copy.deepcopy(agent.state_dict()))
        assert twin.inner_kl_coeffs.tolist() == agent.inner_kl_coeffs.tolist()
        assert twin.train_step() == agent.train_step()
    finally:
        agent.close()
        twin.close()


def test_the_penalty_is_the_mean_over_inner_steps_of_coefficient_times_kl():
    agent = ProMP("navigation2d", ProMPConfig(**TINY, num_inner_steps=2))
    try:
        batch = agent.inner_loop.sample_meta_batch()
        params = agent.inner_loop.meta_parameters()
        old = agent._old_stage_dists(params, batch.inner)
        shifted = {n: (p.detach() + 0.05).requires_grad_() for n, p in params.items()}
        agent.inner_kl_coeffs = torch.tensor([0.3, 7.0], dtype=torch.float64)
        loss, clipped, kls = agent._outer_objective(shifted, batch.inner, batch.post, old)
        assert kls.shape == (2,) and torch.all(kls > 0)
        expected = clipped + (0.3 * kls[0] + 7.0 * kls[1]) / 2
        torch.testing.assert_close(loss, expected)
    finally:
        agent.close()


# ----- loud non-finite losses; value-only graphs -----------------------------------------------


def test_a_nan_outer_loss_is_an_error_naming_the_term_before_any_adam_step(monkeypatch):
    agent = ProMP("navigation2d", ProMPConfig(**TINY))
    monkeypatch.setattr(
        promp_module, "clipped_surrogate_loss", lambda *args: args[0].sum() * math.nan
    )
    try:
        before = copy.deepcopy(agent.policy.state_dict())
        with pytest.raises(FloatingPointError, match="clipped surrogate loss is nan"):
            agent.train_step()
        for name, value in agent.policy.state_dict().items():
            assert torch.equal(value, before[name]), name
    finally:
        agent.close()


def test_only_the_adam_steps_build_second_order_graphs(monkeypatch):
    agent = ProMP("navigation2d", ProMPConfig(**TINY, num_inner_steps=2))
    flags = []
    original = torch.autograd.grad

    def spy(*args, **kwargs):
        flags.append(bool(kwargs.get("create_graph", False)))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    try:
        agent.train_step()
    finally:
        agent.close()
    # 5 Adam steps × 2 inner steps; sampling, the old stage policies and loss_after add none.
    assert sum(flags) == 5 * 2, flags


def test_the_value_only_outer_objective_equals_the_second_order_one():
    agent = ProMP("navigation2d", ProMPConfig(**TINY, num_inner_steps=2))
    try:
        batch = agent.inner_loop.sample_meta_batch()
        params = agent.inner_loop.meta_parameters()
        old = agent._old_stage_dists(params, batch.inner)
        shifted = {n: (p.detach() + 0.01).requires_grad_() for n, p in params.items()}
        for p in (params, shifted):
            graph = agent._outer_objective(p, batch.inner, batch.post, old)
            value = agent._outer_objective(p, batch.inner, batch.post, old, create_graph=False)
            for a, b in zip(graph, value, strict=True):
                assert torch.equal(a, b)
    finally:
        agent.close()


# ----- learning ---------------------------------------------------------------------------------


# Fixed held-out tasks for every seed; the zero-action policy stays at the origin and gets
# −‖g‖ every step: −6.44 per 20-step episode on these tasks.
HELD_OUT = held_out_tasks("navigation2d", {}, 10_000, 20)


@pytest.mark.learning
def test_promp_learns_to_adapt_on_navigation():
    # 10 tasks × 10 episodes × 20 steps (1/40 of the paper's batch), 30 iterations: about 15 s
    # of CPU. Adam's step is 3e-3 for this small batch (the default 1e-3 needs 60 iterations
    # to get as far: post -4.51 / -4.99 / -4.14 / -4.27 for seeds 0-3).
    config = ProMPConfig(**TINY_NAVIGATION, seed=0, outer_lr=3e-3)
    agent = ProMP("navigation2d", config)
    post_at_0, pre, post = train_and_measure(agent, 30, HELD_OUT)
    zero = zero_action_return(HELD_OUT, 20)
    assert zero == pytest.approx(-6.44, abs=0.01)
    # Measured, seeds 0 / 1 / 2 / 3 (this test: seed 0). Untrained (iteration 0): post-update
    # -9.75 / -11.59 / -10.00 / -11.10, and 6 re-evaluations of each spread over at most 1.1;
    # after 30 iterations: post -4.21 / -4.13 / -4.11 / -4.21, pre -7.66 / -7.42 / -7.14 / -6.88.
    assert post > post_at_0 + 3.0, (post_at_0, post)  # learned: +5.5 / 7.5 / 5.9 / 6.9
    # A policy that does not adapt gets about the zero-action return at best (the goals are
    # spread around the origin); the untrained agent is 3.3-5.2 below it. Learned: +2.2 / 2.3 /
    # 2.3 / 2.2 above it.
    assert post > zero + 1.0, (zero, post)
    # One inner step gains 3.5 / 3.3 / 3.0 / 2.7 after training; the untrained agent's step,
    # over the 24 evaluations above, -0.1 to 1.85.
    assert post > pre + 2.0, (pre, post)
