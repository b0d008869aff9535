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


@pytest.mark.parametrize("task", [{"velocity": 0.4}, {"velocity": 2.5}])
def test_ant_vel(task):
    env = make("metarl/AntVel-v0")
    env.reset(seed=5, options={"task": task})
    dt = env.model.opt.timestep * 5
    for action in seeded_actions(env, 5):
        before, after, (_, reward, terminated, _, _) = step_with_torso(env, action)
        velocity = (after[0] - before[0]) / dt
        healthy = ant_healthy(env.data)
        expected = (
            -abs(velocity - task["velocity"])
            + 1.0 * healthy
            - 0.5 * np.sum(action**2)
            - contact_cost(env.data)
        )
        assert reward == pytest.approx(expected, abs=1e-9)
        assert terminated == (not healthy)
        if terminated:
            break


@pytest.mark.parametrize("angle", [0.0, 2.0, 5.5])
def test_humanoid_dir(angle):
    from gymnasium.envs.mujoco.humanoid_v5 import mass_center

    env = make("metarl/HumanoidDir-v0")
    env.reset(seed=6, options={"task": {"angle": angle}})
    direction = np.array([np.cos(angle), np.sin(angle)])
    for action in seeded_actions(env, 6):
        before = mass_center(env.model, env.data)
        _, reward, terminated, _, info = env.step(action)
        velocity = (mass_center(env.model, env.data) - before) / env.dt
        healthy = 1.0 < env.data.qpos[2] < 2.0
        contact = min(5e-7 * float(np.sum(env.data.cfrc_ext**2)), 10.0)
        expected = (
            1.25 * float(direction @ velocity) + 5.0 * healthy - 0.1 * np.sum(action**2) - contact
        )
        assert reward == pytest.approx(expected, abs=1e-9)
        assert info["reward_contact"] == pytest.approx(-contact)
        assert terminated == (not healthy)
        if terminated:
            break


def test_humanoid_dir_along_x_is_gymnasiums_humanoid():
    """θ = 0 turns the task's reward into v5's own forward reward: same observations, rewards
    and terminations as `Humanoid-v5` from the same seed."""
    ours, theirs = make("metarl/HumanoidDir-v0"), make("Humanoid-v5")
    obs_a, _ = ours.reset(seed=7, options={"task": {"angle": 0.0}})
    obs_b, _ = theirs.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in seeded_actions(ours, 7):
        obs_a, reward_a, done_a, _, _ = ours.step(action)
        obs_b, reward_b, done_b, _, _ = theirs.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == pytest.approx(reward_b, abs=1e-12)
        assert done_a == done_b
        if done_a:
            break


@pytest.mark.parametrize(
    "env_id, base_id, healthy",
    [
        (
            "metarl/Walker2dRandParams-v0",
            "Walker2d-v5",
            lambda q, v: 0.8 < q[1] < 2.0 and -1.0 < q[2] < 1.0,
        ),
        (
            "metarl/HopperRandParams-v0",
            "Hopper-v5",
            lambda q, v: (
                0.7 < q[1]
                and -0.2 < q[2] < 0.2
                and bool(np.all(np.abs(np.concatenate([q[2:], v])) < 100))
            ),
        ),
    ],
)
def test_rand_params_rewards_are_the_base_envs(env_id, base_id, healthy):
    """The reward is v5's forward + healthy − control, whatever the task; with every multiplier
    1 the env is the base env itself, step for step (to rounding)."""
    env, base = make(env_id), make(base_id)
    env.reset(seed=8)
    unit = {name: np.ones_like(values).tolist() for name, values in env.get_task().items()}
    for task in (env.get_task(), unit):
        env.reset(seed=8, options={"task": task})
        base.reset(seed=8)
        dt = env.model.opt.timestep * 4
        for action in seeded_actions(env, 8):
            x_before = env.data.qpos[0]
            obs, reward, terminated, _, info = env.step(action)
            velocity = (env.data.qpos[0] - x_before) / dt
            is_healthy = healthy(env.data.qpos, env.data.qvel)
            assert reward == pytest.approx(
                velocity + 1.0 * is_healthy - 1e-3 * np.sum(action**2), abs=1e-9
            )
            assert info["reward_forward"] == pytest.approx(velocity)
            assert terminated == (not is_healthy)
            np.testing.assert_array_equal(obs[-env.model.nv :], np.clip(env.data.qvel, -10, 10))
            if task is unit:  # bit for bit on mujoco 4; 3.3's mj_setConst rounds differently
                base_obs, base_reward, base_done, _, _ = base.step(action)
                np.testing.assert_allclose(obs, base_obs, rtol=0, atol=1e-12)
                assert reward == pytest.approx(base_reward, abs=1e-12)
                assert terminated == base_done
            if terminated:
                break
