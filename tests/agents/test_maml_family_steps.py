"""Every agent of the MAML family (and Reptile, on the same inner loop), as the CLI builds it,
trains with two inner steps (issue 11: ProMP crashed there, and no test trained any agent with
more than one)."""

import math

import pytest
import torch

from metarl.agents.parts.inner_loop import InnerLoopAgent
from metarl.agents.registry import REGISTRY
from metarl.training.config import build_config

FAMILY = ["maml-trpo", "fo-maml", "meta-sgd", "e-maml", "promp", "reptile"]
TINY = dict(
    meta_batch_size=2,
    episodes_per_task=2,
    horizon=10,
    hidden_sizes=[8],
    num_workers=0,
    num_inner_steps=2,
)


def test_the_family_is_every_agent_on_the_gradient_inner_loop():
    on_the_inner_loop = {
        name for name, spec in REGISTRY.items() if issubclass(spec.agent_class, InnerLoopAgent)
    }
    # and the multitask baseline, which the inner loop only fine-tunes (no inner step in training)
    assert on_the_inner_loop == {*FAMILY, "multitask"}


@pytest.mark.parametrize("name", FAMILY)
def test_two_iterations_with_two_inner_steps(name):
    spec = REGISTRY[name]
    agent = spec.agent_class(
        "navigation2d", build_config(spec.config_class, {**spec.overrides, **TINY})
    )
    try:
        before = {n: p.detach().clone() for n, p in agent.inner_loop.meta_parameters().items()}
        history = [agent.train_step() for _ in range(2)]
        after = agent.inner_loop.meta_parameters()
        returns = agent.adaptation_returns([{"goal": [0.3, -0.2]}], 2)
    finally:
        agent.close()
    assert list(history[0]) == list(history[1])
    for metrics in history:
        assert all(math.isfinite(v) for v in metrics.values()), metrics
        assert metrics["env_steps"] == 3 * 2 * 2 * 10  # stages × tasks × episodes × horizon
    assert set(after) == set(before)
    assert all(torch.isfinite(p).all() for p in after.values())
    moved = [n for n in before if not torch.equal(before[n], after[n].detach())]
    if name in ("promp", "reptile") or any(m.get("accepted") for m in history):
        assert moved, history
        if name == "meta-sgd":
            assert any(n.startswith("log_inner_lr.") for n in moved), moved
    assert returns.shape == (3, 1) and torch.isfinite(returns).all()
