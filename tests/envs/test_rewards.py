"""Each env's reward against an independent computation from its state (the table of
docs/architecture.md §4)."""

import gymnasium as gym
import numpy as np
import pytest

STEPS = 25


def make(env_id, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped


def contact_cost(data):
    return 5e-4 * float(np.sum(np.clip(data.cfrc_ext, -1.0, 1.0) ** 2))


def seeded_actions(env, seed):
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    return [rng.uniform(low, high) for _ in range(STEPS)]


def step_with_torso(env, action):
    """Step; return (torso xy before, after, step results): the root free joint's qpos x, y."""
    before = env.data.qpos[:2].copy()
    results = env.step(action)
    return before, env.data.qpos[:2].copy(), results


@pytest.mark.parametrize("task", [{"velocity": 0.3}, {"velocity": 2.7}, {"velocity": 5.0}])
def test_half_cheetah_vel(task):
    env = make("metarl/HalfCheetahVel-v0")
    env.reset(seed=1, options={"task": task})
    dt = env.model.opt.timestep * 5
    for action in seeded_actions(env, 1):
        x_before = env.data.qpos[0]
        _, reward, terminated, _, info = env.step(action)
        velocity = (env.data.qpos[0] - x_before) / dt
        expected = -abs(velocity - task["velocity"]) - 0.05 * np.sum(action**2)
        assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert info["reward_task"] + info["reward_ctrl"] == pytest.approx(reward)
        assert not terminated


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_half_cheetah_dir(direction):
    env = make("metarl/HalfCheetahDir-v0")
    env.reset(seed=2, options={"task": {"direction": direction}})
    dt = env.model.opt.timestep * 5
    for action in seeded_actions(env, 2):
        x_before = env.data.qpos[0]
        _, reward, _, _, _ = env.step(action)
        velocity = (env.data.qpos[0] - x_before) / dt
        assert reward == pytest.approx(direction * velocity - 0.05 * np.sum(action**2), abs=1e-9)


def ant_healthy(data):
    state = np.concatenate([data.qpos, data.qvel])
    return bool(np.all(np.isfinite(state)) and 0.2 <= data.qpos[2] <= 1.0)


@pytest.mark.parametrize(
    "env_id, task, direction",
    [
        ("metarl/AntDir-v0", {"direction": 1.0}, (1.0, 0.0)),
        ("metarl/AntDir-v0", {"direction": -1.0}, (-1.0, 0.0)),
        ("metarl/AntDir2D-v0", {"angle": 0.7}, (np.cos(0.7), np.sin(0.7))),
        ("metarl/AntDir2D-v0", {"angle": 4.0}, (np.cos(4.0), np.sin(4.0))),
    ],
)
def test_ant_directions(env_id, task, direction):
    env = make(env_id)
    env.reset(seed=3, options={"task": task})
    dt = env.model.opt.timestep * 5
    for action in seeded_actions(env, 3):
        before, after, (_, reward, terminated, _, info) = step_with_torso(env, action)
        velocity = (after - before) / dt
        healthy = ant_healthy(env.data)
        expected = (
            float(np.dot(direction, velocity))
            + 1.0 * healthy
            - 0.5 * np.sum(action**2)
            - contact_cost(env.data)
        )
        assert reward == pytest.approx(expected, abs=1e-9)
        assert terminated == (not healthy)
        assert info["reward_contact"] == pytest.approx(-contact_cost(env.data))
        if terminated:
            break


@pytest.mark.parametrize("goal", [[1.0, -2.0], [-0.5, 0.25], [6.0, 6.0]])
def test_ant_goal(goal):
    env = make("metarl/AntGoal-v0")
    obs, _ = env.reset(seed=4, options={"task": {"goal": goal}})
    assert obs.shape == (107,)  # torso x, y are observed
    for action in seeded_actions(env, 4):
        _, after, (obs, reward, terminated, _, _) = step_with_torso(env, action)
        expected = (
            -float(np.abs(after - goal).sum()) - 0.1 * np.sum(action**2) - contact_cost(env.data)
        )
        assert reward == pytest.approx(expected, abs=1e-9)
        np.testing.assert_allclose(obs[:2], env.data.qpos[:2])
        assert not terminated


def test_ant_goal_never_terminates_even_when_flipped():
    env = make("metarl/AntGoal-v0")
    env.reset(seed=0)
    qpos = env.data.qpos.copy()
    qpos[2] = 1.5  # torso far above the healthy range of AntDir
    env.set_state(qpos, env.data.qvel)
    assert not env.step(env.action_space.sample())[2]


def test_ant_dir_terminates_when_the_torso_leaves_the_healthy_range():
    env = make("metarl/AntDir-v0")
    env.reset(seed=0)
    qpos = env.data.qpos.copy()
    qpos[2] = 1.5
    env.set_state(qpos, env.data.qvel)
    _, _, terminated, _, info = env.step(np.zeros(8))
    assert terminated and info["reward_survive"] == 0.0


@pytest.mark.parametrize("goal", [[0.3, -0.2], [-0.5, 0.5]])
def test_navigation_2d(goal):
    env = make("metarl/Navigation2D-v0")
    obs, _ = env.reset(seed=5, options={"task": {"goal": goal}})
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    position = np.zeros(2)
    rng = np.random.default_rng(5)
    for _ in range(STEPS):
        action = rng.uniform(-0.3, 0.3, size=2)  # partly outside the ±0.1 box: clipped
        position = position + np.clip(action, -0.1, 0.1)
        obs, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
        np.testing.assert_allclose(obs, position, atol=1e-6)
        assert reward == pytest.approx(-np.linalg.norm(position - goal), abs=1e-6)
        assert not (terminated or truncated)


def test_bandit_pulls_are_bernoulli_with_the_arm_probability():
    probs = [0.1, 0.8, 0.5]
    env = make("metarl/Bandit-v0", k=3)
    env.reset(seed=6, options={"task": {"probs": probs}})
    n = 4000
    for arm, p in enumerate(probs):
        rewards = []
        for _ in range(n):
            obs, reward, terminated, _, info = env.step(arm)
            env.reset()
            rewards.append(reward)
            assert terminated and info["arm_prob"] == p
        assert set(rewards) <= {0.0, 1.0}
        assert np.mean(rewards) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
    np.testing.assert_array_equal(obs, [1.0])


def test_tabular_mdp_rewards_and_transitions_follow_the_task():
    env = make("metarl/TabularMDP-v0", num_states=3, num_actions=2, reward_noise_std=0.0)
    means = [[1.0, -1.0], [0.5, 2.0], [0.0, 3.0]]
    # Action 0 moves to the next state, action 1 stays: deterministic rows.
    transitions = [[[0, 1, 0], [1, 0, 0]], [[0, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 0, 1]]]
    obs, _ = env.reset(
        seed=7, options={"task": {"reward_means": means, "transitions": transitions}}
    )
    state = 0
    for action in [0, 1, 0, 0, 1, 1, 0]:
        np.testing.assert_array_equal(obs, np.eye(3)[state])
        obs, reward, terminated, _, info = env.step(action)
        assert reward == means[state][action] and not terminated
        state = int(np.argmax(transitions[state][action]))
        assert info["state"] == state


def test_tabular_mdp_samples_next_states_and_noise_from_the_task():
    env = make("metarl/TabularMDP-v0")
    env.reset(seed=8)
    task = env.get_task()
    n = 3000
    next_states, noise = [], []
    for _ in range(n):
        env.reset()
        _, reward, _, _, info = env.step(2)
        next_states.append(info["state"])
        noise.append(reward - task["reward_means"][0][2])
    frequencies = np.bincount(next_states, minlength=10) / n
    np.testing.assert_allclose(frequencies, task["transitions"][0][2], atol=0.04)
    assert np.mean(noise) == pytest.approx(0.0, abs=4 / np.sqrt(n))
    assert np.std(noise) == pytest.approx(1.0, abs=0.05)
