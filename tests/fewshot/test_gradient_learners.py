"""MAML, FO-MAML, Meta-SGD, Reptile, the pretrained and scratch baselines of `metarl.fewshot`,
against independent references: the meta-gradient by central finite differences in float64, the
first-order and Reptile updates by per-task loops written out here, the scratch baseline by one
`nn.Module` and one Adam per task."""

import copy

import pytest
import torch
from torch import nn

from metarl.fewshot.maml import MAML, MAMLConfig
from metarl.fewshot.parts.finetune import finetune_outcomes
from metarl.fewshot.pretrained import Pretrained, PretrainedConfig
from metarl.fewshot.reptile import Reptile, ReptileConfig
from metarl.fewshot.scratch import scratch_outcomes

SMALL = {"meta_batch_size": 3, "shots": 4, "queries": 5, "hidden_sizes": [6, 5]}


def maml(**values):
    return MAML("sinusoid", MAMLConfig(**{**SMALL, **values}))


def meta_loss_of(learner, batch, flat, steps):
    """The query loss after `steps` inner steps from the parameters `flat` (float64), written
    with one plain module per task and per-task autograd: the reference of `train_step`."""
    names = [name for name, _ in learner.network.named_parameters()]
    shapes = [p.shape for _, p in learner.network.named_parameters()]
    net = copy.deepcopy(learner.network).double()
    sizes = [s.numel() for s in shapes]
    flat = flat.clone().requires_grad_()  # the inner steps differentiate the task losses
    total = 0.0
    for task in range(batch.num_tasks):
        params = dict(
            zip(
                names,
                [t.view(s) for t, s in zip(flat.split(sizes), shapes, strict=True)],
                strict=True,
            )
        )
        for _ in range(steps):
            out = torch.func.functional_call(net, params, (batch.support_x[task].double(),))
            loss = (out - batch.support_y[task].double()).square().mean()
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            lr = learner.config.inner_lr
            params = {n: p - lr * g for (n, p), g in zip(params.items(), grads, strict=True)}
        out = torch.func.functional_call(net, params, (batch.query_x[task].double(),))
        total = total + (out - batch.query_y[task].double()).square().mean()
    return total / batch.num_tasks


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_matches_central_finite_differences(steps):
    learner = maml(num_inner_steps=steps, inner_lr=0.05)
    learner.network.double()
    batch = learner.problem.sample()
    batch = type(batch)(*(t.double() if t.is_floating_point() else t for t in vars(batch).values()))
    from metarl.fewshot.parts.finetune import adapt_stages
    from metarl.fewshot.parts.networks import batched_call
    from metarl.policies.functional import parameters

    stages = adapt_stages(
        learner.network,
        learner.problem,
        parameters(learner.network),
        batch,
        steps,
        lambda name: 0.05,
        create_graph=True,
    )
    loss = learner.problem.losses(
        batched_call(learner.network, stages[-1], batch.query_x), batch.query_y
    ).mean()
    analytic = torch.cat(
        [g.flatten() for g in torch.autograd.grad(loss, list(learner.network.parameters()))]
    )
    flat = torch.cat([p.detach().flatten() for p in learner.network.parameters()])
    eps = 1e-6
    numeric = torch.empty_like(flat)
    for i in range(flat.numel()):
        up, down = flat.clone(), flat.clone()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (
            meta_loss_of(learner, batch, up, steps) - meta_loss_of(learner, batch, down, steps)
        ) / (2 * eps)
    assert torch.allclose(analytic, numeric, rtol=1e-6, atol=1e-8), (analytic - numeric).abs().max()
    # and the second-order terms matter: the first-order gradient differs from it
    first = adapt_stages(
        learner.network,
        learner.problem,
        parameters(learner.network),
        batch,
        steps,
        lambda name: 0.05,
        create_graph=False,
    )
    fo_loss = learner.problem.losses(
        batched_call(learner.network, first[-1], batch.query_x), batch.query_y
    ).mean()
    fo = torch.cat(
        [g.flatten() for g in torch.autograd.grad(fo_loss, list(learner.network.parameters()))]
    )
    assert not torch.allclose(fo, analytic, rtol=1e-3)


def test_fo_maml_gradient_is_the_query_gradient_at_the_adapted_parameters():
    learner = maml(first_order=True, inner_lr=0.05)
    before = copy.deepcopy(learner.network)
    generator_state = learner.problem.generator.get_state()
    learner.train_step()
    learner.problem.generator.set_state(generator_state)
    batch = learner.problem.sample()
    expected = [torch.zeros_like(p) for p in before.parameters()]
    for task in range(batch.num_tasks):
        net = copy.deepcopy(before)
        loss = (net(batch.support_x[task]) - batch.support_y[task]).square().mean()
        grads = torch.autograd.grad(loss, list(net.parameters()))
        with torch.no_grad():
            for p, g in zip(net.parameters(), grads, strict=True):
                p -= 0.05 * g
        query = (net(batch.query_x[task]) - batch.query_y[task]).square().mean()
        for total, g in zip(
            expected, torch.autograd.grad(query, list(net.parameters())), strict=True
        ):
            total += g / batch.num_tasks
    # Adam's first step moves each entry by -lr * sign(g) (up to its epsilon)
    for p0, p1, g in zip(before.parameters(), learner.network.parameters(), expected, strict=True):
        step = (p1 - p0).detach()
        big = g.abs() > 1e-4
        assert torch.allclose(step[big], -1e-3 * g[big].sign(), rtol=1e-3)


def test_meta_sgd_learns_its_step_sizes_and_its_gradient_matches_finite_differences():
    learner = maml(learn_inner_lr=True, inner_lr=0.05)
    learner.network.double()
    for name in learner.log_step_sizes:
        learner.log_step_sizes[name] = (
            learner.log_step_sizes[name].detach().double().requires_grad_()
        )
    batch = learner.problem.sample()
    batch = type(batch)(*(t.double() for t in vars(batch).values()))
    from metarl.fewshot.parts.finetune import adapt_stages
    from metarl.fewshot.parts.networks import batched_call
    from metarl.policies.functional import parameters

    def loss_of(log_lrs):
        stages = adapt_stages(
            learner.network,
            learner.problem,
            parameters(learner.network),
            batch,
            1,
            lambda name: log_lrs[name].exp(),
            create_graph=True,
        )
        out = batched_call(learner.network, stages[-1], batch.query_x)
        return learner.problem.losses(out, batch.query_y).mean()

    name = "0.1.weight"  # the first linear layer (0.0 is the Flatten)
    analytic = torch.autograd.grad(loss_of(learner.log_step_sizes), learner.log_step_sizes[name])[0]
    for index in [(0, 0), (3, 0)]:
        shifted = {k: v.detach().clone() for k, v in learner.log_step_sizes.items()}
        up, down = copy.deepcopy(shifted), copy.deepcopy(shifted)
        up[name][index] += 1e-6
        down[name][index] -= 1e-6
        numeric = (loss_of(up) - loss_of(down)) / 2e-6
        assert analytic[index].item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-10)


def test_pre_loss_is_measured_before_the_meta_update():
    # iteration 0's pre-adaptation loss is that of the same initial weights on the same batch,
    # whatever the update that follows
    second, first = maml(), maml(first_order=True)
    assert second.train_step()["pre_loss"] == first.train_step()["pre_loss"]


def test_reptile_moves_theta_toward_the_mean_of_per_task_sgd():
    learner = Reptile(
        "sinusoid", ReptileConfig(**SMALL, iterations=4, num_inner_steps=3, outer_lr=0.1)
    )
    before = copy.deepcopy(learner.network)
    generator_state = learner.problem.generator.get_state()
    metrics = learner.train_step()
    learner.problem.generator.set_state(generator_state)
    batch = learner.problem.sample()
    adapted = []
    for task in range(batch.num_tasks):
        net = copy.deepcopy(before)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.02)
        for _ in range(3):
            optimizer.zero_grad()
            (net(batch.support_x[task]) - batch.support_y[task]).square().mean().backward()
            optimizer.step()
        adapted.append(list(net.parameters()))
    assert metrics["outer_step"] == pytest.approx(0.1)  # iteration 0 of 4: ε undecayed
    for i, (p0, p1) in enumerate(
        zip(before.parameters(), learner.network.parameters(), strict=True)
    ):
        mean = torch.stack([params[i] for params in adapted]).mean(0)
        assert torch.allclose(p1, p0 + 0.1 * (mean - p0), atol=1e-6)
    assert learner.train_step()["outer_step"] == pytest.approx(0.075)  # linear decay to 0


def test_reptile_trains_on_train_shots_and_adapts_on_shots():
    learner = Reptile("sinusoid", ReptileConfig(**SMALL, iterations=2, train_shots=9))
    state = learner.problem.generator.get_state()
    metrics = learner.train_step()
    learner.problem.generator.set_state(state)
    assert learner.problem.sample(shots=9).support_x.shape[1] == 9
    assert metrics["examples"] == 3 * (9 + 5)  # 9 training shots and 5 queries per task
    with pytest.raises(ValueError, match="train_shots"):
        ReptileConfig(**SMALL, train_shots=0)


def test_finetune_outcomes_step_by_step_equal_plain_sgd():
    learner = Pretrained("sinusoid", PretrainedConfig(**SMALL, inner_lr=0.03))
    batch = learner.problem.sample()
    outcomes = finetune_outcomes(learner.network, learner.problem, batch, 2, lambda n: 0.03)
    assert outcomes.losses.shape == (3, 3) and outcomes.accuracies is None
    for task in range(batch.num_tasks):
        net = copy.deepcopy(learner.network)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.03)
        for step in range(3):
            query = (net(batch.query_x[task]) - batch.query_y[task]).square().mean()
            assert outcomes.losses[step, task].item() == pytest.approx(query.item(), rel=1e-5)
            optimizer.zero_grad()
            (net(batch.support_x[task]) - batch.support_y[task]).square().mean().backward()
            optimizer.step()


def test_scratch_baseline_is_one_independent_adam_per_task():
    learner = Pretrained("sinusoid", PretrainedConfig(**SMALL))
    batch = learner.problem.sample()
    outcomes = scratch_outcomes(learner.problem, batch, seed=7, steps=5, lr=0.01)
    from metarl.agents.parts.seeding import InitRNG

    fresh = learner.problem.network(init=InitRNG(7))
    for task in range(batch.num_tasks):
        net = copy.deepcopy(fresh)
        optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(5):
            optimizer.zero_grad()
            (net(batch.support_x[task]) - batch.support_y[task]).square().mean().backward()
            optimizer.step()
        query = (net(batch.query_x[task]) - batch.query_y[task]).square().mean()
        assert outcomes.losses[0, task].item() == pytest.approx(query.item(), rel=1e-4)


@pytest.mark.parametrize(
    "build",
    [
        lambda: maml(),
        lambda: maml(learn_inner_lr=True),
        lambda: Reptile("sinusoid", ReptileConfig(**SMALL, iterations=5)),
        lambda: Pretrained("sinusoid", PretrainedConfig(**SMALL)),
        lambda: MAML(
            "digits",
            MAMLConfig(meta_batch_size=2, shots=1, queries=2, conv_channels=4, conv_blocks=2),
        ),
    ],
)
def test_a_restored_learner_continues_bit_identically(build):
    straight = build()
    rows = [straight.train_step() for _ in range(3)]
    stopped = build()
    stopped.train_step()
    stopped.train_step()
    state = copy.deepcopy(stopped.state_dict())
    resumed = build()
    resumed.load_state_dict(state)
    assert resumed.train_step() == rows[2]


def test_bad_maml_values_are_one_line_errors():
    with pytest.raises(ValueError, match="config key 'inner_lr' must be > 0 with learn_inner_lr"):
        MAMLConfig(learn_inner_lr=True, inner_lr=0)
    with pytest.raises(ValueError, match="config key 'shots' must be an integer >= 1, got 0"):
        MAMLConfig(shots=0)
    with pytest.raises(ValueError, match="'conv' needs image inputs"):
        maml(backbone="conv")
    assert isinstance(maml().network[0], nn.Sequential)
