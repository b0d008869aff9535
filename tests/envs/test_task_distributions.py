"""Sampled tasks follow the distributions of docs/architecture.md §4 (moments within sampling
error)."""

import math

import gymnasium as gym
import numpy as np
import pytest


def sample(env_id, n, seed=0, **kwargs):
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=seed)
    return env.sample_tasks(n)


def test_bandit_arm_probabilities_are_uniform_on_0_1():
    probs = np.array([t["probs"] for t in sample("metarl/Bandit-v0", 2000)])
    assert probs.shape == (2000, 5)
    assert probs.min() >= 0 and probs.max() <= 1
    assert probs.mean() == pytest.approx(0.5, abs=4 * math.sqrt(1 / 12 / probs.size))
    assert probs.var() == pytest.approx(1 / 12, abs=0.005)
    k10 = sample("metarl/Bandit-v0", 10, k=10)
    assert all(len(t["probs"]) == 10 for t in k10)


def test_tabular_mdp_means_are_normal_and_transitions_dirichlet_1():
    tasks = sample("metarl/TabularMDP-v0", 400)
    means = np.array([t["reward_means"] for t in tasks])
    transitions = np.array([t["transitions"] for t in tasks])
    assert means.shape == (400, 10, 5) and transitions.shape == (400, 10, 5, 10)
    assert means.mean() == pytest.approx(1.0, abs=4 / math.sqrt(means.size))
    assert means.std() == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(transitions.sum(-1), 1.0)
    # Dirichlet(1, …, 1) over 10 states: each entry is Beta(1, 9), mean 0.1, variance 9 / 1100.
    assert transitions.mean() == pytest.approx(0.1, abs=1e-9)
    assert transitions.var() == pytest.approx(9 / 1100, rel=0.05)


def test_half_cheetah_velocities_are_uniform_on_0_3():
    v = np.array([t["velocity"] for t in sample("metarl/HalfCheetahVel-v0", 4000)])
    assert v.min() >= 0 and v.max() <= 3
    assert v.mean() == pytest.approx(1.5, abs=4 * math.sqrt(0.75 / v.size))
    paper = np.array(
        [t["velocity"] for t in sample("metarl/HalfCheetahVel-v0", 500, velocity_range=(0, 2))]
    )
    assert paper.max() <= 2


@pytest.mark.parametrize("env_id", ["metarl/HalfCheetahDir-v0", "metarl/AntDir-v0"])
def test_directions_are_plus_or_minus_one_with_equal_odds(env_id):
    d = np.array([t["direction"] for t in sample(env_id, 4000)])
    assert set(d) == {-1.0, 1.0}
    assert d.mean() == pytest.approx(0.0, abs=4 / math.sqrt(d.size))


def test_ant_dir2d_angles_are_uniform_on_the_circle():
    a = np.array([t["angle"] for t in sample("metarl/AntDir2D-v0", 4000)])
    assert a.min() >= 0 and a.max() < 2 * math.pi
    assert a.mean() == pytest.approx(math.pi, abs=4 * math.sqrt(math.pi**2 / 3 / a.size))


def test_ant_goals_are_uniform_in_the_disk_of_radius_3():
    goals = np.array([t["goal"] for t in sample("metarl/AntGoal-v0", 4000)])
    radius = np.linalg.norm(goals, axis=1)
    assert radius.max() <= 3
    # Uniform in area: P(r <= R/2) = 1/4, and the mean point is the centre.
    assert np.mean(radius <= 1.5) == pytest.approx(0.25, abs=4 * math.sqrt(0.1875 / goals.shape[0]))
    np.testing.assert_allclose(goals.mean(0), 0.0, atol=4 * 3 / 2 / math.sqrt(goals.shape[0]))


def test_navigation_goals_are_uniform_in_the_square():
    goals = np.array([t["goal"] for t in sample("metarl/Navigation2D-v0", 4000)])
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    np.testing.assert_allclose(goals.mean(0), 0.0, atol=4 * math.sqrt(1 / 12 / goals.shape[0]))
