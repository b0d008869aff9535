"""`trpo_step` fails loudly on a non-finite loss, gradient or step, naming it, and its line search
can run on value-only closures (issue 11): a candidate's non-finite loss is a rejection there."""

import math

import pytest
import torch

from metarl.backend.optim import trpo_step

W0 = torch.tensor([1.0, -2.0], dtype=torch.float64)


def kl_fn(params):
    """A KL with the identity as its Hessian (the Fisher), zero at W0."""
    return 0.5 * ((params["w"] - W0) ** 2).sum()


def loss_fn(params):
    return ((params["w"] - 3.0) ** 2).sum()


def params():
    return {"w": W0.clone()}


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_non_finite_loss_is_an_error_naming_the_surrogate(bad):
    with pytest.raises(FloatingPointError, match=f"surrogate loss is {bad}"):
        trpo_step(lambda p: loss_fn(p) * bad, kl_fn, params())


def test_a_non_finite_gradient_is_an_error_naming_it():
    def loss_with_inf_gradient(p):  # finite value, infinite slope: sqrt at 0
        return torch.sqrt(p["w"] - W0).sum()

    with pytest.raises(FloatingPointError, match="gradient of the surrogate loss"):
        trpo_step(loss_with_inf_gradient, kl_fn, params())


def test_a_non_finite_curvature_is_an_error_naming_the_step():
    with pytest.raises(FloatingPointError, match="natural-gradient step"):
        trpo_step(loss_fn, lambda p: kl_fn(p) * math.nan, params())


def test_the_line_search_evaluates_the_value_closures_and_rejects_non_finite_candidates():
    calls = {"loss": 0, "kl": 0, "loss_value": 0}

    def counted(name, fn):
        def wrapped(p):
            calls[name] += 1
            return fn(p)

        return wrapped

    def loss_value(p):
        calls["loss_value"] += 1
        if calls["loss_value"] == 1:  # the full step: as an overflowing ratio would give
            return loss_fn(p) * math.nan
        return loss_fn(p)

    new, info = trpo_step(
        counted("loss", loss_fn),
        counted("kl", kl_fn),
        params(),
        max_kl=0.5,
        loss_value_fn=loss_value,
        kl_value_fn=kl_fn,
    )
    # loss_fn: the loss and gradient before the step; kl_fn: the curvature only.
    assert calls == {"loss": 1, "kl": 1, "loss_value": 2}
    assert info["accepted"] and info["step_fraction"] == pytest.approx(0.8)
    _, reference_info = trpo_step(loss_fn, kl_fn, params(), max_kl=0.5)
    assert reference_info["step_fraction"] == 1.0  # without the NaN, the full step is taken
    assert info["loss_after"] < info["loss_before"] and torch.all(torch.isfinite(new["w"]))
