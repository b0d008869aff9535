"""Prototypical Networks and Matching Networks (metarl.fewshot.protonet, .matching_net): their
math against hand computations and numpy loops, the per-task embedding, bit-identical resumes
and the one-line error on a regression distribution. No learning tests here."""

import math
import re

import numpy as np
import pytest
import torch

from metarl.fewshot.matching_net import (
    LOG_FLOOR,
    MatchingNet,
    MatchingNetConfig,
    attention,
    label_distribution,
    log_likelihoods,
    nll,
)
from metarl.fewshot.protonet import (
    ProtoNet,
    ProtoNetConfig,
    cosine_similarities,
    embed_tasks,
    prototypes,
    squared_distances,
)

TINY = {
    "meta_batch_size": 2,
    "shots": 2,
    "queries": 2,
    "backbone": "mlp",
    "hidden_sizes": [16],
    "device": "cpu",
}
DIGITS = {"ways": 3}


def tiny(config_class, **overrides):
    return config_class(**{**TINY, **overrides})


# --- the math, by hand ---------------------------------------------------------------------


def test_prototypes_are_class_means_by_hand():
    embeddings = torch.tensor(
        [
            [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [4.0, 6.0]],
            [[1.0, 1.0], [3.0, -1.0], [-1.0, 5.0], [0.0, 0.0]],
        ]
    )
    labels = torch.tensor([[0, 1, 0, 1], [2, 2, 0, 1]])
    result = prototypes(embeddings, labels, 3)
    # task 0: class 0 = mean([0,0],[2,0]); class 1 = mean([2,2],[4,6]); class 2 has no example.
    # task 1: class 0 = [-1,5]; class 1 = [0,0]; class 2 = mean([1,1],[3,-1]) = [2,0].
    expected = torch.tensor(
        [
            [[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]],
            [[-1.0, 5.0], [0.0, 0.0], [2.0, 0.0]],
        ]
    )
    assert result.shape == (2, 3, 2)
    torch.testing.assert_close(result, expected)


def test_squared_distances_by_hand():
    queries = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [0.0, 0.0]]])
    centres = torch.tensor([[[1.0, 0.0], [3.0, 4.0]]])
    # (1,1): to (1,0) 0+1 = 1, to (3,4) 4+9 = 13; (3,3): 4+9 = 13, 0+1 = 1; (0,0): 1, 9+16 = 25
    expected = torch.tensor([[[1.0, 13.0], [13.0, 1.0], [1.0, 25.0]]])
    torch.testing.assert_close(squared_distances(queries, centres), expected)


def test_squared_distances_against_numpy_loops():
    generator = torch.Generator().manual_seed(1)
    queries = torch.randn(3, 4, 5, generator=generator, dtype=torch.float64)
    centres = torch.randn(3, 2, 5, generator=generator, dtype=torch.float64)
    q, c = queries.numpy(), centres.numpy()
    expected = np.zeros((3, 4, 2))
    for task in range(3):
        for i in range(4):
            for k in range(2):
                expected[task, i, k] = sum((q[task, i, j] - c[task, k, j]) ** 2 for j in range(5))
    np.testing.assert_allclose(squared_distances(queries, centres).numpy(), expected, rtol=1e-12)


def test_cosine_similarities_by_hand():
    queries = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    centres = torch.tensor([[[2.0, 0.0], [0.0, -3.0]]])
    half = 1 / math.sqrt(2)
    expected = torch.tensor([[[1.0, 0.0], [half, -half]]])
    torch.testing.assert_close(cosine_similarities(queries, centres), expected)


def numpy_attention(queries, supports):
    """Softmax over the supports of explicit cosines, one query at a time."""
    n, num_queries, _ = queries.shape
    result = np.zeros((n, num_queries, supports.shape[1]))
    for task in range(n):
        for i in range(num_queries):
            q = queries[task, i]
            cosines = np.array([q @ s / (np.sqrt(q @ q) * np.sqrt(s @ s)) for s in supports[task]])
            weights = np.exp(cosines)
            result[task, i] = weights / weights.sum()
    return result


def test_attention_by_hand():
    queries = torch.tensor([[[1.0, 0.0]]])
    supports = torch.tensor([[[5.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]])
    # cosines 1, 0, −1 → softmax (e, 1, 1/e) / (e + 1 + 1/e)
    total = math.e + 1 + 1 / math.e
    expected = torch.tensor([[[math.e / total, 1 / total, 1 / math.e / total]]])
    torch.testing.assert_close(attention(queries, supports), expected)


def test_attention_against_numpy():
    generator = torch.Generator().manual_seed(2)
    queries = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    supports = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64)
    expected = numpy_attention(queries.numpy(), supports.numpy())
    np.testing.assert_allclose(attention(queries, supports).numpy(), expected, rtol=1e-12)


def test_label_distribution_by_hand():
    weights = torch.tensor([[[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]])
    labels = torch.tensor([[0, 1, 0]])
    # class 0 gets supports 0 and 2, class 1 support 1, class 2 none.
    expected = torch.tensor([[[0.7, 0.3, 0.0], [0.9, 0.1, 0.0]]])
    torch.testing.assert_close(label_distribution(weights, labels, 3), expected)


def test_nll_by_hand_and_clamped_log():
    distribution = torch.tensor([[[0.7, 0.3, 0.0], [0.9, 0.1, 0.0]]])
    log_probs = log_likelihoods(distribution)
    assert log_probs[0, 0, 2] == LOG_FLOOR  # log 0 clamped, not −∞
    labels = torch.tensor([[1, 0]])
    expected = -(math.log(0.3) + math.log(0.9)) / 2
    torch.testing.assert_close(nll(log_probs, labels), torch.tensor([expected]))


# --- the learners --------------------------------------------------------------------------


def per_task_embeddings(network, batch):
    """Each task's support and query embedded by the network itself, one task at a time."""
    support, query = [], []
    for task in range(batch.num_tasks):
        out = network(torch.cat([batch.support_x[task], batch.query_x[task]]))
        support.append(out[: batch.support_x.shape[1]])
        query.append(out[batch.support_x.shape[1] :])
    return torch.stack(support), torch.stack(query)


def test_embedding_normalizes_each_task_with_its_own_batch_norm_statistics():
    config = tiny(ProtoNetConfig, backbone="conv", conv_channels=4, conv_blocks=2)
    learner = ProtoNet("fewshot/digits", config, env_kwargs=DIGITS)
    batch = learner.problem.sample()
    with torch.no_grad():
        support, query = embed_tasks(learner.network, batch)
        ref_support, ref_query = per_task_embeddings(learner.network, batch)
        flat = learner.network(torch.cat([batch.support_x, batch.query_x], 1).flatten(0, 1))
    torch.testing.assert_close(support, ref_support)
    torch.testing.assert_close(query, ref_query)
    # the check can tell: normalizing all tasks together gives other embeddings
    assert not torch.allclose(flat[: support.shape[1]], ref_support[0], atol=1e-4)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of each task, numpy, one example at a time."""
    losses = []
    for task_logits, task_labels in zip(logits, labels, strict=True):
        total = 0.0
        for row, label in zip(task_logits, task_labels, strict=True):
            total += np.log(np.exp(row).sum()) - row[label]
        losses.append(total / len(task_labels))
    return np.array(losses)


def test_protonet_query_outcomes_against_numpy():
    learner = ProtoNet("fewshot/digits", tiny(ProtoNetConfig), env_kwargs=DIGITS)
    batch = learner.problem.sample()
    outcomes = learner.query_outcomes(batch, steps=5)
    assert outcomes.losses.shape == (1, 2) and outcomes.accuracies.shape == (1, 2)
    with torch.no_grad():
        support, query = (e.double().numpy() for e in per_task_embeddings(learner.network, batch))
    labels, query_labels = batch.support_y.numpy(), batch.query_y.numpy()
    logits = np.zeros((2, query.shape[1], 3))
    for task in range(2):
        for k in range(3):
            centre = support[task][labels[task] == k].mean(0)
            logits[task, :, k] = -((query[task] - centre) ** 2).sum(-1)
    expected = softmax_cross_entropy(logits, query_labels)
    np.testing.assert_allclose(outcomes.losses[0].numpy(), expected, rtol=1e-4)
    accuracy = (logits.argmax(-1) == query_labels).mean(1)
    np.testing.assert_allclose(outcomes.accuracies[0].numpy(), accuracy)


def test_protonet_cosine_distance_uses_cosine_logits():
    learner = ProtoNet("digits", tiny(ProtoNetConfig, distance="cosine"), env_kwargs=DIGITS)
    batch = learner.problem.sample()
    with torch.no_grad():
        support, query = per_task_embeddings(learner.network, batch)
        centres = prototypes(support, batch.support_y, 3)
        expected = cosine_similarities(query, centres)
        torch.testing.assert_close(learner.logits(batch), expected)


def test_matching_net_query_outcomes_against_numpy():
    learner = MatchingNet("fewshot/digits", tiny(MatchingNetConfig), env_kwargs=DIGITS)
    batch = learner.problem.sample()
    outcomes = learner.query_outcomes(batch, steps=3)
    assert outcomes.losses.shape == (1, 2) and outcomes.accuracies.shape == (1, 2)
    with torch.no_grad():
        support, query = (e.double().numpy() for e in per_task_embeddings(learner.network, batch))
    weights = numpy_attention(query, support)
    labels, query_labels = batch.support_y.numpy(), batch.query_y.numpy()
    distribution = np.zeros((2, query.shape[1], 3))
    for task in range(2):
        for i in range(query.shape[1]):
            for j, label in enumerate(labels[task]):
                distribution[task, i, label] += weights[task, i, j]
    picked = np.take_along_axis(distribution, query_labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(outcomes.losses[0].numpy(), -np.log(picked).mean(1), rtol=1e-4)
    accuracy = (distribution.argmax(-1) == query_labels).mean(1)
    np.testing.assert_allclose(outcomes.accuracies[0].numpy(), accuracy)


@pytest.mark.parametrize(
    "learner_class, config_class", [(ProtoNet, ProtoNetConfig), (MatchingNet, MatchingNetConfig)]
)
def test_train_step_metrics(learner_class, config_class):
    learner = learner_class("fewshot/digits", tiny(config_class), env_kwargs=DIGITS)
    before = [p.detach().clone() for p in learner.network.parameters()]
    metrics = learner.train_step()
    assert set(metrics) == {"examples", "post_loss", "post_accuracy"}
    assert metrics["examples"] == 2 * (3 * 2 + 3 * 2)
    assert math.isfinite(metrics["post_loss"]) and 0 <= metrics["post_accuracy"] <= 1
    assert any(
        not torch.equal(a, b) for a, b in zip(before, learner.network.parameters(), strict=True)
    )
    learner.close()


@pytest.mark.parametrize(
    "learner_class, config_class", [(ProtoNet, ProtoNetConfig), (MatchingNet, MatchingNetConfig)]
)
def test_resume_continues_bit_identically(learner_class, config_class):
    config = tiny(config_class)
    uninterrupted = learner_class("fewshot/digits", config, env_kwargs=DIGITS)
    run = [uninterrupted.train_step() for _ in range(3)]
    first = learner_class("fewshot/digits", config, env_kwargs=DIGITS)
    first.train_step()
    first.train_step()
    state = first.state_dict()
    resumed = learner_class("fewshot/digits", config, env_kwargs=DIGITS)
    resumed.load_state_dict(state)
    assert resumed.train_step() == run[2]


@pytest.mark.parametrize(
    "learner_class, config_class, name",
    [
        (ProtoNet, ProtoNetConfig, "protonet"),
        (MatchingNet, MatchingNetConfig, "matching_net"),
    ],
)
def test_regression_distribution_is_a_one_line_error(learner_class, config_class, name):
    message = (
        f"{name} needs a classification task distribution (digits, images), got fewshot/sinusoid"
    )
    for env in ("fewshot/sinusoid", "sinusoid"):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            learner_class(env, tiny(config_class))


def test_bad_distance_is_a_config_error():
    with pytest.raises(ValueError, match="config key 'distance' must be 'euclidean' or 'cosine'"):
        ProtoNetConfig(distance="manhattan")
