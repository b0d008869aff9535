"""Learning tests of the few-shot learners (issue 19): each, trained briefly with a fixed seed,
must beat the non-meta baselines measured on the very same held-out tasks: the scratch baseline
(a fresh network trained by Adam on the task's K shots, `metarl.fewshot.scratch`) and the learner
itself at iteration 0, each by a margin set from measured values (in the comments, measured on
this 2-core machine with these budgets)."""

import pytest
import torch

from metarl.fewshot.registry import fewshot_spec
from metarl.training.config import build_config
from metarl.training.fewshot_evaluation import fewshot_summary

pytestmark = pytest.mark.learning

HELD_OUT = 200
"""Held-out tasks of every evaluation here (the task seed is fixed: 10000)."""


def trained(name, env, iterations, env_kwargs=None, steps=1, **values):
    """The held-out evaluation (after 0..`steps` steps) of the learner at iteration 0 (without
    the scratch baseline) and after `iterations` iterations."""
    spec = fewshot_spec(name)
    config = build_config(spec.config_class, {**spec.overrides, **values, "iterations": iterations})
    learner = spec.agent_class(env, config, env_kwargs=env_kwargs or {})
    before = fewshot_summary(learner, HELD_OUT, steps, 10000, None, scratch=False)
    for _ in range(iterations):
        learner.train_step()
    return before, fewshot_summary(learner, HELD_OUT, steps, 10000, None)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Sinusoid, K = 10, MSE after one inner step on 200 held-out tasks. Measured: the scratch
# baseline 2.08; each learner at iteration 0 about 3.3 (its untrained net, one step); after 2000
# iterations MAML 0.85, FO-MAML 1.19, Meta-SGD 0.67, Reptile (ε = 1) 1.13.
SINUSOID = {
    "maml": (2000, {}, 1.4),
    "fo-maml": (2000, {}, 1.6),
    "meta-sgd": (2000, {}, 1.3),
    "reptile": (2000, {}, 1.6),
}


@pytest.mark.parametrize("name", sorted(SINUSOID))
def test_gradient_learners_beat_scratch_on_the_sinusoid(name):
    iterations, values, threshold = SINUSOID[name]
    before, after = trained(name, "sinusoid", iterations, **values)
    one_step, scratch = after["mean_loss"][1], after["scratch"]["mean_loss"][0]
    assert one_step < threshold < scratch - 0.4, (one_step, scratch)
    assert one_step < before["mean_loss"][1] - 1.5, (one_step, before["mean_loss"])


# Digits, 5-way 1-shot with images shifted by up to a pixel (`shift: 1`, the nuisance one
# support image cannot teach a learner from scratch), 32-filter conv net, 8 tasks per iteration,
# query accuracy on 200 held-out-class tasks. Measured after 300 iterations: the scratch baseline
# 49.4%; ProtoNets 42.6% at iteration 0 → 69.3%, Matching Networks 44.4% → 65.8%.
DIGITS = {"protonet": 0.62, "matching-net": 0.60}
SHIFTED_DIGITS = {"ways": 5, "shift": 1}
SMALL_CONV = {"shots": 1, "queries": 5, "meta_batch_size": 8, "conv_channels": 32}


@pytest.mark.parametrize("name", sorted(DIGITS))
def test_metric_learners_beat_scratch_on_shifted_digits(name):
    before, after = trained(name, "digits", 300, SHIFTED_DIGITS, **SMALL_CONV)
    accuracy, scratch = after["mean_accuracy"][0], after["scratch"]["mean_accuracy"][0]
    assert accuracy > DIGITS[name] > scratch + 0.08, (accuracy, scratch)
    assert accuracy > before["mean_accuracy"][0] + 0.15, (accuracy, before["mean_accuracy"])


def test_the_lstm_meta_learner_beats_scratch_on_the_sinusoid():
    # The loss after its T = 5 updates (the number it is trained for), 20-20 net, 10 tasks per
    # iteration, Adam 3e-3. Measured after 800 iterations: 1.30, against the scratch baseline's
    # 2.31 (this net) and 4.5 at iteration 0; after 1000 at 5 tasks and Adam 1e-3 only 1.90.
    values = {"meta_batch_size": 10, "outer_lr": 3e-3, "hidden_sizes": [20, 20]}
    before, after = trained("meta-lstm", "sinusoid", 800, steps=5, **values)
    loss, scratch = after["mean_loss"][5], after["scratch"]["mean_loss"][0]
    assert loss < 1.8 < scratch - 0.4, (loss, scratch)
    assert loss < before["mean_loss"][5] - 1.5, (loss, before["mean_loss"])
