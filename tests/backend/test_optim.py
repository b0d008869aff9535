"""Second-order machinery against explicit Hessians, direct solves and hand-built line searches."""

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal
from torch.func import functional_call

from metarl.backend.losses import mean_kl, surrogate_loss, vpg_loss
from metarl.backend.optim import (
    backtracking_line_search,
    conjugate_gradient,
    flat,
    hessian_operator,
    trpo_step,
    unflat,
)

NET = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _params(seed: int) -> dict[str, torch.Tensor]:
    """Fresh parameters for NET, plus a state-independent log-std for the Gaussian policy."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    params = {name: p.detach() for name, p in net.named_parameters()}
    return params | {"log_std": torch.full((2,), -0.5, dtype=torch.float64)}


def _regression_loss(params, x, y):
    net_params = {k: v for k, v in params.items() if k != "log_std"}
    return ((functional_call(NET, net_params, (x,)) - y) ** 2).mean()


def _policy(params, obs) -> Independent:
    """Gaussian policy with batch shape [T, B]: tanh-MLP mean, state-independent std."""
    net_params = {k: v for k, v in params.items() if k != "log_std"}
    mean = functional_call(NET, net_params, (obs,))
    return Independent(Normal(mean, params["log_std"].exp()), 1)


def _explicit_hessian(f, params):
    return torch.autograd.functional.hessian(lambda v: f(unflat(v, params)), flat(params))


def test_flat_and_unflat_are_inverse():
    tensors = {"w": torch.randn(2, 3), "b": torch.randn(4), "s": torch.tensor(1.5)}
    vector = flat(tensors)
    assert vector.shape == (11,)
    torch.testing.assert_close(flat(list(tensors.values())), vector)
    restored = unflat(vector, tensors)
    assert list(restored) == list(tensors)
    for name, tensor in tensors.items():
        torch.testing.assert_close(restored[name], tensor)


def test_conjugate_gradient_solves_random_spd_systems():
    torch.manual_seed(0)
    for _ in range(5):
        m = torch.randn(10, 10, dtype=torch.float64)
        a = m @ m.T + 0.5 * torch.eye(10, dtype=torch.float64)
        b = torch.randn(10, dtype=torch.float64)
        x = conjugate_gradient(lambda v, a=a: a @ v, b, iterations=20)
        torch.testing.assert_close(x, torch.linalg.solve(a, b), atol=1e-6, rtol=1e-6)


def test_conjugate_gradient_of_zero_is_zero_without_matvecs():
    def matvec(v):
        raise AssertionError("no product needed")

    assert (conjugate_gradient(matvec, torch.zeros(4)) == 0).all()


def test_hessian_operator_matches_the_explicit_hessian():
    params = _params(0)
    x, y = torch.randn(2, 6, 3, dtype=torch.float64).unbind()
    y = y[:, :2]
    v = torch.randn(flat(params).numel(), dtype=torch.float64)

    def f(p):
        return _regression_loss(p, x, y) + (p["log_std"] ** 3).sum()

    expected = _explicit_hessian(f, params) @ v
    torch.testing.assert_close(hessian_operator(f, params)(v), expected)
    damped = hessian_operator(f, params, damping=0.1)(v)
    torch.testing.assert_close(damped, expected + 0.1 * v)


def test_hessian_operator_through_an_inner_sgd_step_is_second_order():
    params = {k: v.requires_grad_() for k, v in _params(1).items()}
    torch.manual_seed(1)
    x1, y1, x2, y2 = torch.randn(4, 8, 3, dtype=torch.float64).unbind()
    y1, y2 = y1[:, :2], y2[:, :2]
    v = torch.randn(flat(params).numel(), dtype=torch.float64)

    def adapted_loss(p, first_order=False):
        # f(θ) = L2(θ − α∇L1(θ)), the MAML objective with one inner step of size α = 0.5.
        grads = torch.autograd.grad(
            _regression_loss(p, x1, y1), list(p.values()), create_graph=True, allow_unused=True
        )
        adapted = {
            k: t if g is None else t - 0.5 * (g.detach() if first_order else g)
            for (k, t), g in zip(p.items(), grads, strict=True)
        }
        return _regression_loss(adapted, x2, y2)

    second_hessian = _explicit_hessian(adapted_loss, params)
    first_hessian = _explicit_hessian(lambda p: adapted_loss(p, first_order=True), params)
    product = hessian_operator(adapted_loss, params)(v)
    torch.testing.assert_close(product, second_hessian @ v)
    # The two Hessians differ, so matching the second-order one is a check the first-order
    # one would fail. Measured relative differences: 1.08 between the matrices (Frobenius),
    # 0.85 between their products with v; the bars are about half of those.
    relative = (second_hessian - first_hessian).norm() / second_hessian.norm()
    assert relative > 0.5, relative
    product_gap = (product - first_hessian @ v).norm() / product.norm()
    assert product_gap > 0.4, product_gap


def _gaussian_kl_problem(seed: int):
    params = _params(seed)
    obs = torch.randn(5, 3, 3, dtype=torch.float64)
    mask = torch.ones(5, 3, dtype=torch.bool)
    mask[3:, 1] = False
    old = _policy(params, obs)
    return params, obs, mask, old


def test_fisher_operator_is_the_psd_hessian_of_the_kl_at_the_old_policy():
    params, obs, mask, old = _gaussian_kl_problem(0)

    def kl_fn(p):
        return mean_kl(old, _policy(p, obs), mask)

    hessian = _explicit_hessian(kl_fn, params)
    assert torch.linalg.eigvalsh(hessian).min() > -1e-10
    fisher = hessian_operator(kl_fn, params, damping=1e-2)
    for _ in range(3):
        v = torch.randn(hessian.shape[0], dtype=torch.float64)
        torch.testing.assert_close(fisher(v), hessian @ v + 1e-2 * v)
        assert v @ fisher(v) > 0


def _trpo_problem(seed: int):
    """A Gaussian policy, actions sampled from it, random advantages: surrogate and KL closures."""
    params, obs, mask, old = _gaussian_kl_problem(seed)
    actions = old.sample()
    old_log_probs = old.log_prob(actions)
    advantages = torch.randn(5, 3, dtype=torch.float64)

    def loss_fn(p):
        return surrogate_loss(_policy(p, obs).log_prob(actions), old_log_probs, advantages, mask)

    def kl_fn(p):
        return mean_kl(old, _policy(p, obs), mask)

    return params, loss_fn, kl_fn


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_kl", [1e-3, 1e-2, 1e-1])
def test_trpo_step_decreases_the_loss_within_the_kl_bound(seed, max_kl):
    params, loss_fn, kl_fn = _trpo_problem(seed)
    before = {k: v.clone() for k, v in params.items()}
    new_params, info = trpo_step(loss_fn, kl_fn, params, max_kl=max_kl)
    assert info["accepted"]
    kl = kl_fn(new_params).item()
    assert 0 < kl <= max_kl
    assert info["kl"] == pytest.approx(kl)
    assert info["loss_after"] == pytest.approx(loss_fn(new_params).item())
    assert info["loss_after"] < info["loss_before"] == pytest.approx(loss_fn(params).item())
    assert all(not t.requires_grad for t in new_params.values())
    for name, tensor in params.items():
        assert torch.equal(tensor, before[name])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trpo_step_scales_the_natural_gradient_step_to_the_kl_bound(seed):
    params, loss_fn, kl_fn = _trpo_problem(seed)
    _, info = trpo_step(loss_fn, kl_fn, params, max_kl=1e-4)
    # Small steps follow the quadratic model: KL ≈ fraction²·½sᵀFs = fraction²·max_kl.
    assert info["kl"] == pytest.approx(info["step_fraction"] ** 2 * 1e-4, rel=0.05)


def test_trpo_step_goes_through_closures_that_adapt_internally():
    params, obs, mask, old = _gaussian_kl_problem(3)
    actions = old.sample()
    train_advantages, valid_advantages = torch.randn(2, 5, 3, dtype=torch.float64)

    def adapt(p):
        # One MAML inner VPG step; it needs autograd even while the line search evaluates.
        inner = vpg_loss(_policy(p, obs).log_prob(actions), train_advantages, mask)
        grads = torch.autograd.grad(inner, list(p.values()), create_graph=True)
        return {k: t - 0.1 * g for (k, t), g in zip(p.items(), grads, strict=True)}

    old_adapted = adapt({k: v.requires_grad_() for k, v in params.items()})
    old_adapted = {k: v.detach() for k, v in old_adapted.items()}
    old_dist = _policy(old_adapted, obs)
    old_log_probs = old_dist.log_prob(actions)

    def loss_fn(p):
        log_probs = _policy(adapt(p), obs).log_prob(actions)
        return surrogate_loss(log_probs, old_log_probs, valid_advantages, mask)

    def kl_fn(p):
        return mean_kl(old_dist, _policy(adapt(p), obs), mask)

    new_params, info = trpo_step(loss_fn, kl_fn, params, max_kl=1e-2)
    assert info["accepted"] and info["loss_after"] < info["loss_before"]
    assert 0 < kl_fn({k: v.requires_grad_() for k, v in new_params.items()}).item() <= 1e-2


def _quadratic_problem(gradient_scale: float):
    """loss = g·d + 10⁶‖d‖² with d = θ − θ₀ and KL = ‖d‖²: any KL-sized step overshoots."""
    torch.manual_seed(0)
    params = {"a": torch.randn(3, dtype=torch.float64), "b": torch.randn(2, dtype=torch.float64)}
    start = flat(params)
    g = gradient_scale * torch.randn(5, dtype=torch.float64)

    def loss_fn(p):
        d = flat(p) - start
        return g @ d + 1e6 * (d @ d)

    def kl_fn(p):
        d = flat(p) - start
        return d @ d

    return params, loss_fn, kl_fn


@pytest.mark.parametrize("gradient_scale", [1e-3, 0.0])
def test_trpo_step_returns_the_old_params_when_no_step_improves(gradient_scale):
    params, loss_fn, kl_fn = _quadratic_problem(gradient_scale)
    new_params, info = trpo_step(loss_fn, kl_fn, params, max_kl=1e-2)
    assert not info["accepted"]
    assert info["step_fraction"] == 0.0 and info["kl"] == 0.0
    assert info["loss_after"] == info["loss_before"]
    for name, tensor in params.items():
        assert torch.equal(new_params[name], tensor)


def _linear_problem():
    """loss = −Σθ always improves along +1; KL = ‖θ − θ₀‖²; the full step has KL = 4·max_kl."""
    params = {"w": torch.zeros(4, dtype=torch.float64)}

    def loss_fn(p):
        return -p["w"].sum()

    def kl_fn(p):
        return (p["w"] ** 2).sum()

    return params, loss_fn, kl_fn, torch.full((4,), 0.1, dtype=torch.float64)


def test_line_search_backtracks_until_the_kl_constraint_holds():
    params, loss_fn, kl_fn, full_step = _linear_problem()
    max_kl = 0.01  # KL(fraction) = 0.04·fraction² ≤ 0.01 first at fraction 0.8⁴ = 0.4096
    result = backtracking_line_search(loss_fn, kl_fn, params, full_step, 0.0, max_kl)
    assert result.accepted
    assert result.step_fraction == pytest.approx(0.8**4)
    torch.testing.assert_close(result.params["w"], 0.8**4 * full_step)
    assert result.kl == pytest.approx(0.04 * 0.8**8)
    assert result.loss == pytest.approx(-0.4 * 0.8**4)


def test_line_search_gives_up_after_max_backtracks():
    params, loss_fn, kl_fn, full_step = _linear_problem()
    result = backtracking_line_search(
        loss_fn, kl_fn, params, full_step, 0.0, max_kl=0.01, max_backtracks=4
    )
    assert not result.accepted and result.step_fraction == 0.0
    assert torch.equal(result.params["w"], params["w"])
