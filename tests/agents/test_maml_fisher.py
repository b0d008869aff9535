"""MAML's Fisher-vector product, the Gauss-Newton form JᵀMJ through the inner steps, against the
KL's Hessian-vector product by double back-propagation (`hessian_operator`, the previous and
independent computation) to 1e-6 relative, for every variant of the inner loop; and the action
distributions' closed-form M against the KL's explicit Hessian in the distribution parameters."""

import pytest
import torch
from adaptation import synthetic_stack
from torch.distributions import kl_divergence

from metarl.agents.maml import MAML, MAMLConfig
from metarl.backend.losses import kl_metric, mean_kl, vpg_loss
from metarl.backend.optim import flat, gauss_newton_operator, hessian_operator, leaves, unflat
from metarl.policies import call
from metarl.policies.distributions import CategoricalActions, DiagGaussian
from metarl.policies.networks import CategoricalMLPPolicy

VARIANTS = {
    "maml": {},
    "two inner steps": {"num_inner_steps": 2},
    "meta-sgd": {"learn_inner_lr": True},
    "fo-maml": {"first_order": True},
}


def relative_error(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_gauss_newton_product_equals_the_kl_hessian_through_the_inner_steps(variant):
    config = MAMLConfig(
        meta_batch_size=2, episodes_per_task=3, hidden_sizes=(5,), num_workers=0, **variant
    )
    agent = MAML("navigation2d", config)
    try:
        loop = agent.inner_loop
        agent.policy.double()
        loop.log_step_sizes = {n: lr.double() for n, lr in loop.log_step_sizes.items()}
        inner = [synthetic_stack(agent.policy, seed) for seed in range(config.num_inner_steps)]
        post = synthetic_stack(agent.policy, 9)
        meta_params = loop.meta_parameters()
        # The anchor: the adapted policies themselves.
        adapted = loop.adapt(leaves(meta_params), inner, create_graph=False)
        old = tuple(x.detach() for x in loop.dist_params(adapted, post.observations))
        at = leaves(meta_params)
        new = loop.dist_params(loop.adapt(at, inner), post.observations)
        gauss_newton = loop.kl_fisher(at, new, post, old, damping=1e-3)
        hessian = hessian_operator(
            lambda p: agent.outer_kl(p, inner, post, old), meta_params, damping=1e-3
        )
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            v = torch.randn(flat(meta_params).numel(), generator=g, dtype=torch.float64)
            assert relative_error(gauss_newton(v), hessian(v)) < 1e-6
    finally:
        agent.close()


def test_the_gauss_newton_product_of_a_categorical_policy_after_an_sgd_step():
    torch.manual_seed(0)
    policy = CategoricalMLPPolicy(3, 4, (6,)).double()
    obs_inner, obs_post = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    actions = torch.randint(0, 4, (7, 5))
    advantages = torch.randn(7, 5, dtype=torch.float64)
    mask = torch.ones(7, 5, dtype=torch.float64)
    mask[-3:, 1] = 0
    dist = policy.action_dist

    def adapted_logits(params):
        log_probs = dist.distribution(call(policy, params, obs_inner)).log_prob(actions)
        grads = torch.autograd.grad(
            vpg_loss(log_probs, advantages, mask), list(params.values()), create_graph=True
        )
        stepped = {n: p - 0.5 * g for (n, p), g in zip(params.items(), grads, strict=True)}
        return call(policy, stepped, obs_post)

    params = dict(policy.named_parameters())
    old = adapted_logits(leaves(params)).detach()
    at = leaves(params)
    metric = kl_metric(dist.fisher_product, old, mask / mask.sum())
    gauss_newton = gauss_newton_operator(adapted_logits(at), at, metric)

    def kl(p):
        return mean_kl(dist.distribution(old), dist.distribution(adapted_logits(p)), mask)

    hessian = hessian_operator(kl, params)
    v = torch.randn(flat(params).numel(), dtype=torch.float64)
    assert relative_error(gauss_newton(v), hessian(v)) < 1e-6


def test_outputs_that_do_not_depend_on_the_inputs_give_only_the_damping():
    x = torch.ones(3, requires_grad=True)
    outputs = torch.zeros(2) * x.sum().detach()
    operator = gauss_newton_operator(outputs, {"x": x}, lambda t: t, damping=0.5)
    v = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(operator(v), 0.5 * v)


def kl_hessian(distribution, dist_params):
    """The explicit Hessian of KL(p ‖ q) in q's flat parameters at q = p (autograd)."""
    shapes = [x.shape for x in dist_params]
    fixed = tuple(x.detach() for x in dist_params)

    def kl(flat_q):
        pieces = unflat(flat_q, {str(i): x for i, x in enumerate(fixed)}).values()
        return kl_divergence(distribution(fixed), distribution(tuple(pieces))).sum()

    assert len(shapes) == len(fixed)
    return torch.autograd.functional.hessian(kl, flat(list(fixed)))


def test_the_gaussian_fisher_is_the_kl_hessian_in_mean_and_log_std():
    gaussian = DiagGaussian()
    g = torch.Generator().manual_seed(1)
    params = (torch.randn(4, 3, generator=g, dtype=torch.float64),) * 1 + (
        torch.randn(4, 3, generator=g, dtype=torch.float64),
    )
    tangent = tuple(torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(2))
    expected = kl_hessian(gaussian.distribution, params) @ flat(list(tangent))
    torch.testing.assert_close(flat(list(gaussian.fisher_product(params, tangent))), expected)


def test_the_categorical_fisher_is_the_kl_hessian_in_the_logits():
    categorical = CategoricalActions()
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64)
    tangent = torch.randn(5, 4, generator=g, dtype=torch.float64)
    expected = kl_hessian(lambda p: categorical.distribution(p[0]), (logits,)) @ tangent.flatten()
    torch.testing.assert_close(categorical.fisher_product(logits, tangent).flatten(), expected)
