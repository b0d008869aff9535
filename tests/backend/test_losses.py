"""Policy-gradient losses and KL against hand calculations and closed forms."""

import torch
from torch.autograd.functional import hessian
from torch.distributions import Categorical, Independent, Normal

from metarl.backend.losses import (
    clipped_surrogate_loss,
    masked_mean,
    mean_kl,
    surrogate_loss,
    vpg_loss,
)


def test_masked_mean_ignores_padding_even_when_it_is_not_finite():
    x = torch.tensor([[1.0, float("nan")], [3.0, float("inf")]])
    mask = torch.tensor([[True, False], [True, False]])
    assert masked_mean(x, mask).item() == 2.0
    assert masked_mean(x, mask.float()).item() == 2.0


def _categorical_batch():
    """Logits of a 3-action softmax policy, actions and advantages for 4 steps, one padded."""
    logits = torch.tensor([0.2, -0.5, 1.0], dtype=torch.float64, requires_grad=True)
    actions = torch.tensor([[0, 2], [1, 0]])
    advantages = torch.tensor([[1.5, -2.0], [0.5, 7.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    return logits, actions, advantages, mask


def test_vpg_gradient_matches_the_hand_computed_score_function():
    logits, actions, advantages, mask = _categorical_batch()
    log_probs = torch.log_softmax(logits, -1)[actions]
    vpg_loss(log_probs, advantages, mask).backward()
    # ∇ log softmax(θ)[a] = onehot(a) − softmax(θ); the loss averages −A·∇log π over 3 valid steps.
    probs = torch.softmax(logits.detach(), -1)
    expected = (
        -sum(
            advantages[t, b] * (torch.eye(3, dtype=torch.float64)[actions[t, b]] - probs)
            for t, b in [(0, 0), (0, 1), (1, 0)]
        )
        / 3
    )
    torch.testing.assert_close(logits.grad, expected)


def test_surrogate_at_the_old_policy_has_the_vpg_value_and_gradient():
    logits, actions, advantages, mask = _categorical_batch()
    log_probs = torch.log_softmax(logits, -1)[actions]
    surrogate = surrogate_loss(log_probs, log_probs, advantages, mask)
    (surrogate_grad,) = torch.autograd.grad(surrogate, logits, retain_graph=True)
    (vpg_grad,) = torch.autograd.grad(vpg_loss(log_probs, advantages, mask), logits)
    torch.testing.assert_close(surrogate.item(), -(1.5 - 2.0 + 0.5) / 3)
    torch.testing.assert_close(surrogate_grad, vpg_grad)


def test_clipped_surrogate_matches_hand_calculation_with_clipping_active_and_not():
    ratios = torch.tensor([1.5, 0.5, 1.1, 0.7, 9.0], dtype=torch.float64)
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0, 100.0], dtype=torch.float64)
    mask = torch.tensor([True, True, True, True, False])
    old_log_probs = torch.zeros(5, dtype=torch.float64)
    log_probs = ratios.log().requires_grad_()
    loss = clipped_surrogate_loss(log_probs, old_log_probs, advantages, mask, clip=0.2)
    # min(r·A, clip(r)·A): 1.2 (clipped), 0.5, −1.1, −0.8 (clipped); the padded step is ignored.
    torch.testing.assert_close(loss.item(), -(1.2 + 0.5 - 1.1 - 0.8) / 4)
    loss.backward()
    # d(−r·A/N)/d log r = −r·A/N where unclipped, 0 where the clipped branch is the min.
    expected = torch.tensor([0.0, -0.5 / 4, 1.1 / 4, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(log_probs.grad, expected)


def test_mean_kl_is_zero_for_identical_distributions():
    torch.manual_seed(0)
    mean, std = torch.randn(4, 3, 2), torch.rand(4, 3, 2) + 0.1
    dist = Independent(Normal(mean, std), 1)
    assert mean_kl(dist, dist, torch.ones(4, 3)).item() == 0.0


def test_mean_kl_matches_the_closed_form_gaussian_kl():
    torch.manual_seed(0)
    mu1, mu2 = torch.randn(2, 4, 3, 2, dtype=torch.float64)
    s1, s2 = torch.rand(2, 4, 3, 2, dtype=torch.float64) + 0.2
    mask = torch.rand(4, 3) > 0.3
    per_step = (torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5).sum(-1)
    old, new = Independent(Normal(mu1, s1), 1), Independent(Normal(mu2, s2), 1)
    torch.testing.assert_close(mean_kl(old, new, mask), per_step[mask].mean())


def test_mean_kl_matches_the_categorical_formula():
    torch.manual_seed(0)
    logits1, logits2 = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    mask = torch.rand(4, 3) > 0.3
    p1, p2 = torch.softmax(logits1, -1), torch.softmax(logits2, -1)
    per_step = (p1 * (p1 / p2).log()).sum(-1)
    kl = mean_kl(Categorical(logits=logits1), Categorical(logits=logits2), mask)
    torch.testing.assert_close(kl, per_step[mask].mean())


def test_the_surrogate_at_the_sampling_policy_has_vpg_gradient_and_lvc_hessian():
    """ProMP's inner objective (Rothfuss et al. 2019, eq. 9) is the surrogate −mean(π_θ/π_θo · A)
    with θo the sampling policy: at θ = θo its gradient is VPG's, and its Hessian is the
    low-variance curvature −mean((∇² log π + ∇ log π ∇ log πᵀ) · A), not VPG's."""
    torch.manual_seed(0)
    obs = torch.randn(5, 3, 2, dtype=torch.float64)
    actions = torch.randn(5, 3, dtype=torch.float64)
    advantages = torch.randn(5, 3, dtype=torch.float64)
    mask = torch.ones(5, 3, dtype=torch.float64)
    theta = torch.randn(2, dtype=torch.float64)

    def log_probs(w):
        mean = torch.tanh(obs @ w)
        return torch.distributions.Normal(mean, 0.5).log_prob(actions)

    sampling = log_probs(theta).detach()

    def surrogate(w):
        return surrogate_loss(log_probs(w), sampling, advantages, mask)

    def vpg(w):
        return vpg_loss(log_probs(w), advantages, mask)

    w = theta.clone().requires_grad_()
    torch.testing.assert_close(
        torch.autograd.grad(surrogate(w), w)[0], torch.autograd.grad(vpg(w), w)[0]
    )
    # Per-sample ∇ log π [15, 2] and ∇² log π [15, 2, 2], by autograd of each sample alone.
    scores = torch.autograd.functional.jacobian(log_probs, theta).reshape(-1, 2)
    curvatures = torch.stack(
        [hessian(lambda w, k=k: log_probs(w).flatten()[k], theta) for k in range(15)]
    )
    a = advantages.flatten()[:, None, None]
    lvc = -(a * (curvatures + scores[:, :, None] * scores[:, None, :])).mean(0)
    torch.testing.assert_close(hessian(surrogate, theta), lvc)
    assert not torch.allclose(hessian(vpg, theta), lvc, rtol=0.1)
