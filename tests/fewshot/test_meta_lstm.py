"""The LSTM meta-learner (metarl.fewshot.meta_lstm): the input preprocessing on hand values, the
first updates against a numpy reimplementation of both layers, the learner's gradients as
inputs (no second derivatives), evaluation curves and bit-identical resumes. No learning tests
here."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metarl.fewshot.meta_lstm import MetaLSTM, MetaLSTMConfig, preprocess
from metarl.fewshot.parts.networks import batched_call

TINY = {
    "meta_batch_size": 2,
    "shots": 2,
    "queries": 2,
    "backbone": "mlp",
    "hidden_sizes": [16],
    "num_inner_steps": 2,
    "lstm_hidden": 6,
    "device": "cpu",
}
DIGITS = {"ways": 3}


def tiny(**overrides):
    return MetaLSTMConfig(**{**TINY, **overrides})


def digits_learner(**overrides):
    return MetaLSTM("fewshot/digits", tiny(**overrides), env_kwargs=DIGITS)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_preprocess(x, p=10.0):
    out = np.zeros((*x.shape, 2))
    for index, value in np.ndenumerate(x):
        if abs(value) >= math.exp(-p):
            out[index] = (math.log(abs(value)) / p, math.copysign(1.0, value))
        else:
            out[index] = (-1.0, math.exp(p) * value)
    return out


def per_task_support(learner, batch, flat):
    """Each task's support loss and gradient at its row of `flat`, one task at a time through
    the network's own modules (the reference for the batched, vmapped computation)."""
    losses, grads = [], []
    for task in range(batch.num_tasks):
        row = flat[task].detach().clone().requires_grad_()
        params = {name: p[0] for name, p in learner.unflatten(row[None]).items()}
        out = functional_call(learner.network, params, (batch.support_x[task],))
        loss = F.cross_entropy(out, batch.support_y[task])
        (grad,) = torch.autograd.grad(loss, [row])
        losses.append(loss.detach())
        grads.append(grad)
    return torch.stack(losses), torch.stack(grads)


def query_losses(learner, batch, flat):
    outputs = learner.query_outputs(flat, batch)
    return learner.problem.losses(outputs, batch.query_y)


# --- preprocessing -------------------------------------------------------------------------


def test_preprocess_on_hand_values():
    e = math.e
    x = torch.tensor([1.0, -1.0, e**-5, -(e**5), e**-12, -1e-6, 0.0], dtype=torch.float64)
    expected = torch.tensor(
        [
            [0.0, 1.0],  # log 1 / 10, sign
            [0.0, -1.0],
            [-0.5, 1.0],  # log e^−5 / 10 = −0.5 (|x| >= e^−10)
            [0.5, -1.0],
            [-1.0, e**-2],  # |x| < e^−10: (−1, e^10 · e^−12)
            [-1.0, -(e**10) * 1e-6],
            [-1.0, 0.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(preprocess(x), expected)
    # the threshold itself takes the logarithmic branch
    torch.testing.assert_close(
        preprocess(torch.tensor([e**-10], dtype=torch.float64)),
        torch.tensor([[-1.0, 1.0]], dtype=torch.float64),
    )


def test_preprocess_against_numpy_reference():
    x = torch.tensor([3.0, -0.2, 4e-5, -5e-5, 1e-9, 123.0], dtype=torch.float64)
    np.testing.assert_allclose(preprocess(x).numpy(), numpy_preprocess(x.numpy()), rtol=1e-12)


# --- the meta-learner's updates ------------------------------------------------------------


def test_initialization_follows_the_paper():
    learner = digits_learner()
    cell = learner.meta_learner.cell
    assert 4 <= cell.forget_gate.bias.item() <= 6
    assert -5 <= cell.input_gate.bias.item() <= -4
    for gate in (cell.input_gate, cell.forget_gate):
        assert gate.weight.shape == (1, 6 + 2)
        assert gate.weight.abs().max() <= 0.01


def test_support_gradients_are_each_tasks_own():
    learner = digits_learner()
    batch = learner.problem.sample()
    flat = learner.initial(batch.num_tasks)
    losses, grads = learner.support_gradients(flat, batch)
    ref_losses, ref_grads = per_task_support(learner, batch, flat)
    torch.testing.assert_close(losses, ref_losses)
    torch.testing.assert_close(grads, ref_grads)
    assert not losses.requires_grad and not grads.requires_grad


def test_first_update_with_known_gates():
    learner = digits_learner()
    cell = learner.meta_learner.cell
    with torch.no_grad():
        for gate in (cell.input_gate, cell.forget_gate):
            gate.weight.zero_()
        cell.input_gate.bias.fill_(math.log(0.1 / 0.9))  # i = 0.1
        cell.forget_gate.bias.fill_(0.0)  # f = 0.5
    batch = learner.problem.sample()
    c0 = learner.initial(batch.num_tasks)
    c1, state = learner.update(c0, batch, None)
    _, grads = per_task_support(learner, batch, c0)
    torch.testing.assert_close(c1, 0.5 * c0 - 0.1 * grads)
    torch.testing.assert_close(state.input_gate, torch.full_like(state.input_gate, 0.1))
    torch.testing.assert_close(state.forget_gate, torch.full_like(state.forget_gate, 0.5))


def test_first_two_updates_against_numpy():
    learner = digits_learner()
    meta = learner.meta_learner
    hidden = 6
    batch = learner.problem.sample()
    c0 = learner.initial(batch.num_tasks)
    with torch.no_grad():
        c1, state1 = learner.update(c0, batch, None)
        c2, state2 = learner.update(c1, batch, state1)

    weights = {name: p.detach().double().numpy() for name, p in meta.named_parameters()}
    # the batched (loss, gradient) inputs, which equal per_task_support's up to float rounding
    # (test_support_gradients_are_each_tasks_own); the log of tiny gradients would amplify it
    losses, grads = (t.double().numpy() for t in learner.support_gradients(c0, batch))
    c0 = c0.detach().double().numpy().reshape(-1)
    grads = grads.reshape(-1)
    coordinate_losses = np.repeat(losses, grads.size // losses.size)
    inputs = np.concatenate([numpy_preprocess(coordinate_losses), numpy_preprocess(grads)], axis=1)
    # first layer, from h = c = 0: PyTorch's LSTMCell gate order is (input, forget, cell, output)
    pre = inputs @ weights["lstm.weight_ih"].T + weights["lstm.bias_ih"] + weights["lstm.bias_hh"]
    gi, _, gg, go = np.split(pre, 4, axis=1)  # the forget gate multiplies c = 0
    lstm_cell = sigmoid(gi) * np.tanh(gg)
    h1 = sigmoid(go) * np.tanh(lstm_cell)
    np.testing.assert_allclose(state1.hidden.double().numpy(), h1, rtol=1e-4, atol=1e-6)
    # the meta-learner cell, from i_0 = f_0 = 0
    w_i, b_i = weights["cell.input_gate.weight"][0], weights["cell.input_gate.bias"][0]
    w_f, b_f = weights["cell.forget_gate.weight"][0], weights["cell.forget_gate.bias"][0]
    i1 = sigmoid(h1 @ w_i[:hidden] + c0 * w_i[hidden] + b_i)
    f1 = sigmoid(h1 @ w_f[:hidden] + c0 * w_f[hidden] + b_f)
    np.testing.assert_allclose(state1.input_gate.double().numpy(), i1, rtol=1e-5)
    np.testing.assert_allclose(state1.forget_gate.double().numpy(), f1, rtol=1e-5)
    np.testing.assert_allclose(c1.double().numpy().reshape(-1), f1 * c0 - i1 * grads, atol=1e-6)
    # second update: the gates see c_1 and their own previous values
    _, grads2 = learner.support_gradients(c1, batch)
    grads2 = grads2.double().numpy().reshape(-1)
    c1 = c1.double().numpy().reshape(-1)
    h2 = state2.hidden.double().numpy()
    i2 = sigmoid(h2 @ w_i[:hidden] + c1 * w_i[hidden] + i1 * w_i[hidden + 1] + b_i)
    f2 = sigmoid(h2 @ w_f[:hidden] + c1 * w_f[hidden] + f1 * w_f[hidden + 1] + b_f)
    np.testing.assert_allclose(state2.input_gate.double().numpy(), i2, rtol=1e-5)
    np.testing.assert_allclose(state2.forget_gate.double().numpy(), f2, rtol=1e-5)
    np.testing.assert_allclose(c2.double().numpy().reshape(-1), f2 * c1 - i2 * grads2, atol=1e-6)


def meta_gradients(learner):
    return [p.grad.clone() for p in learner.optimizer.param_groups[0]["params"]]


def unrolled_meta_gradients(learner, batch, support):
    """The meta-gradients of the query loss after two updates whose (loss, gradient) inputs come
    from `support(flat)`."""
    learner.optimizer.zero_grad()
    flat, state = learner.initial(batch.num_tasks), None
    for _ in range(2):
        losses, grads = support(flat)
        coordinate_losses = losses[:, None].expand_as(grads).reshape(-1)
        updated, state = learner.meta_learner(
            coordinate_losses, grads.reshape(-1), flat.reshape(-1), state
        )
        flat = updated.view_as(flat)
    query_losses(learner, batch, flat).mean().backward()
    return meta_gradients(learner)


def test_meta_gradient_treats_the_learners_gradients_as_inputs():
    learner = digits_learner()
    batch = learner.problem.sample()
    # the learner's own unroll
    learner.optimizer.zero_grad()
    flat, state = learner.initial(batch.num_tasks), None
    for _ in range(2):
        flat, state = learner.update(flat, batch, state)
    query_losses(learner, batch, flat).mean().backward()
    actual = meta_gradients(learner)

    # constants by construction: computed task by task from a copy, then fed in
    def constant(flat):
        losses, grads = per_task_support(learner, batch, flat)
        return torch.tensor(losses.numpy()), torch.tensor(grads.numpy())

    expected = unrolled_meta_gradients(learner, batch, constant)
    for a, b in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, b)
    assert all(g.abs().sum() > 0 for g in actual)

    # the check can tell: differentiating through ∇_t and L_t changes θ_0's meta-gradient
    def second_order(flat):
        params = learner.unflatten(flat)
        losses = learner.problem.losses(
            batched_call(learner.network, params, batch.support_x), batch.support_y
        )
        (grads,) = torch.autograd.grad(losses.sum(), [flat], create_graph=True)
        return losses, grads

    differentiated = unrolled_meta_gradients(learner, batch, second_order)
    num_network = len(list(learner.network.parameters()))
    pairs = zip(actual[:num_network], differentiated[:num_network], strict=True)
    assert any(not torch.allclose(a, b) for a, b in pairs)


# --- the learner ---------------------------------------------------------------------------


def test_train_step_metrics_and_updates():
    learner = digits_learner()
    before = [p.detach().clone() for p in learner.optimizer.param_groups[0]["params"]]
    metrics = learner.train_step()
    assert set(metrics) == {"examples", "pre_loss", "pre_accuracy", "post_loss", "post_accuracy"}
    assert metrics["examples"] == 2 * (3 * 2 + 3 * 2)
    after = learner.optimizer.param_groups[0]["params"]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    learner.close()


def test_query_outcomes_curve():
    learner = digits_learner()
    batch = learner.problem.sample()
    outcomes = learner.query_outcomes(batch, steps=3)
    assert outcomes.losses.shape == (4, 2) and outcomes.accuracies.shape == (4, 2)
    with torch.no_grad():
        start = learner.initial(2)
        torch.testing.assert_close(outcomes.losses[0], query_losses(learner, batch, start))
        flat, state = start, None
        for step in range(1, 4):
            flat, state = learner.update(flat, batch, state)
            torch.testing.assert_close(outcomes.losses[step], query_losses(learner, batch, flat))
    assert learner.query_outcomes(batch, steps=0).losses.shape == (1, 2)


def test_regression():
    learner = MetaLSTM("fewshot/sinusoid", tiny())
    metrics = learner.train_step()
    assert set(metrics) == {"examples", "pre_loss", "post_loss"}
    assert all(math.isfinite(v) for v in metrics.values())
    outcomes = learner.query_outcomes(learner.problem.sample(), steps=2)
    assert outcomes.losses.shape == (3, 2) and outcomes.accuracies is None


def test_resume_continues_bit_identically():
    config = tiny()
    uninterrupted = MetaLSTM("fewshot/digits", config, env_kwargs=DIGITS)
    run = [uninterrupted.train_step() for _ in range(3)]
    first = MetaLSTM("fewshot/digits", config, env_kwargs=DIGITS)
    first.train_step()
    first.train_step()
    state = first.state_dict()
    resumed = MetaLSTM("fewshot/digits", config, env_kwargs=DIGITS)
    resumed.load_state_dict(state)
    assert resumed.train_step() == run[2]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_inner_steps", 0, "config key 'num_inner_steps' must be an integer >= 1, got 0"),
        ("lstm_hidden", 2.5, "config key 'lstm_hidden' must be an integer >= 1, got 2.5"),
    ],
)
def test_config_checks(key, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        MetaLSTMConfig(**{key: value})
