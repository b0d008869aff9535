"""The task-env contract of docs/architecture.md §3/§4, checked on every registered env."""

import json
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from metarl.envs import ENVS

# Meta-World's with its extra, but not ML45: Meta-World builds its goals in ~90 s per process
# and seed (test_metaworld.py checks its splits once).
ENV_IDS = [e.id for e in ENVS if e.installed and e.id != "metarl/ML45-v0"]
# Advice the checkers print for every unbounded Box / non-unit action range; anything else fails.
KNOWN_ADVICE = (
    "observation space minimum value is -infinity",
    "maximum value is infinity",
    "symmetric and normalized Box action space",
    # Meta-World's goal-hidden observations hold the goal's 3 entries at 0, and its space says
    # so with low = high = 0 there.
    "maximum and minimum values are equal",
)


def make(env_id, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped


def rollout(env, seed, steps):
    """Observations and rewards of `steps` seeded random-action steps, resetting on episode end."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.array(observations), np.array(rewards)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checkers_pass(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(make(env_id), skip_render_check=True)
        sb3_check_env(make(env_id))
    unexpected = [
        str(w.message) for w in caught if not any(a in str(w.message) for a in KNOWN_ADVICE)
    ]
    assert unexpected == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_after_import_metarl_has_the_registered_horizon(env_id):
    entry = next(e for e in ENVS if e.id == env_id)
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == entry.max_episode_steps
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        done = terminated or truncated
    assert steps <= entry.max_episode_steps


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_gives_same_tasks_and_trajectories(env_id):
    first, second = make(env_id), make(env_id)
    for env in (first, second):
        env.reset(seed=7)
    tasks = first.sample_tasks(4)
    assert tasks == second.sample_tasks(4)
    for env in (first, second):
        env.set_task(tasks[-1])
    obs_1, rew_1 = rollout(first, seed=3, steps=30)
    obs_2, rew_2 = rollout(second, seed=3, steps=30)
    np.testing.assert_array_equal(obs_1, obs_2)
    np.testing.assert_array_equal(rew_1, rew_2)
    first.reset(seed=8)
    assert first.sample_tasks(4) != tasks


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_first_tasks_drawn_do_not_depend_on_how_many_are_drawn(env_id):
    env = make(env_id)
    env.reset(seed=11)
    few = env.sample_tasks(3)
    env.reset(seed=11)
    assert env.sample_tasks(7)[:3] == few


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sampling_after_a_seeded_reset_ignores_whether_the_env_had_a_task(env_id):
    fresh, used = make(env_id), make(env_id)
    used.reset(seed=0)
    used.set_task(used.sample_tasks(2)[1])
    for env in (fresh, used):
        env.reset(seed=4)
    assert fresh.sample_tasks(5) == used.sample_tasks(5)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_tasks_are_json_dicts_that_survive_reset(env_id):
    env = make(env_id)
    env.reset(seed=0)
    task = json.loads(json.dumps(env.sample_tasks(3)))[1]
    env.set_task(task)
    env.reset()
    env.reset(seed=123)
    env.step(env.action_space.sample())
    assert env.get_task() == task
    assert json.loads(json.dumps(env.get_task())) == task


def env_with_task(env_id):
    """A freshly reset env, its task and the task's first field."""
    env = make(env_id)
    env.reset(seed=0)
    task = env.get_task()
    return env, task, next(iter(task))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_get_task_returns_a_deep_copy(env_id):
    env, task, field = env_with_task(env_id)
    if isinstance(task[field], list):
        task[field][0] = "changed"
    else:
        task[field] = "changed"
    assert env.get_task() != task


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_option_sets_the_task_and_info_reports_it(env_id):
    env = make(env_id)
    env.reset(seed=1)
    task = env.sample_tasks(1)[0]
    _, info = env.reset(options={"task": task})
    assert env.get_task() == task and info["task"] == task
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["task"] == task


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_tasks_give_different_rewards_for_the_same_actions(env_id):
    env = make(env_id)
    env.reset(seed=0)
    tasks = env.sample_tasks(20)
    other = next(t for t in tasks[1:] if t != tasks[0])
    rewards = []
    for task in (tasks[0], other):
        env.set_task(task)
        rewards.append(rollout(env, seed=5, steps=60)[1])
    assert not np.allclose(rewards[0], rewards[1])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_malformed_tasks_raise_value_error_naming_the_field(env_id):
    env, task, field = env_with_task(env_id)
    value = task[field]
    bad_values = {
        "non-finite": np.full(np.shape(value), math.nan).tolist(),
        "wrong shape": [value, value],
        "a string": "0.5",
        "None": None,
    }
    for why, bad in bad_values.items():
        with pytest.raises(ValueError, match=field):
            env.set_task({**task, field: bad})
        assert env.get_task() == task, why
    with pytest.raises(ValueError, match=field):
        env.set_task({k: v for k, v in task.items() if k != field})
    with pytest.raises(ValueError, match="colour"):
        env.set_task({**task, "colour": 1})
    with pytest.raises(ValueError, match="dict"):
        env.set_task([value])
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": {"colour": 1}})


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("n", [-1, 1.5, True, "3"])
def test_sample_tasks_rejects_a_bad_count(env_id, n):
    env = make(env_id)
    with pytest.raises(ValueError, match="sample_tasks"):
        env.sample_tasks(n)


@pytest.mark.parametrize(
    "env_id, task",
    [
        ("metarl/HalfCheetahVel-v0", {"velocity": 7.5}),
        ("metarl/HalfCheetahDir-v0", {"direction": 0.5}),
        ("metarl/AntDir-v0", {"direction": -2.0}),
        ("metarl/AntDir2D-v0", {"angle": 10.0}),
        ("metarl/AntGoal-v0", {"goal": [8.0, -9.0]}),
        ("metarl/Navigation2D-v0", {"goal": [3, 4]}),
    ],
)
def test_tasks_outside_the_training_range_are_allowed(env_id, task):
    env = make(env_id)
    env.reset(seed=0, options={"task": task})
    assert env.get_task() == {k: np.asarray(v, dtype=float).tolist() for k, v in task.items()}


@pytest.mark.parametrize(
    "env_id, task, field",
    [
        ("metarl/Bandit-v0", {"probs": [0.1, 0.2, 1.5, 0.3, 0.4]}, "probs"),
        ("metarl/Bandit-v0", {"probs": [0.5, 0.5]}, "probs"),
    ],
)
def test_tasks_outside_their_domain_raise(env_id, task, field):
    with pytest.raises(ValueError, match=field):
        make(env_id).set_task(task)


def test_tabular_mdp_rejects_transitions_that_are_not_distributions():
    env = make("metarl/TabularMDP-v0")
    env.reset(seed=0)
    task = env.get_task()
    transitions = np.array(task["transitions"])
    transitions[0, 0] *= 2
    with pytest.raises(ValueError, match="transitions"):
        env.set_task({**task, "transitions": transitions.tolist()})
    transitions[0, 0] = -transitions[0, 0] / 2
    with pytest.raises(ValueError, match="transitions"):
        env.set_task({**task, "transitions": transitions.tolist()})


@pytest.mark.parametrize(
    "env_id, kwargs, name",
    [
        ("metarl/HalfCheetahVel-v0", {"velocity_range": (3.0, 0.0)}, "velocity_range"),
        ("metarl/HalfCheetahVel-v0", {"velocity_range": (0.0, math.inf)}, "velocity_range"),
        ("metarl/HalfCheetahVel-v0", {"velocity_range": 3.0}, "velocity_range"),
        ("metarl/HalfCheetahVel-v0", {"ctrl_cost_weight": -0.1}, "ctrl_cost_weight"),
        ("metarl/HalfCheetahDir-v0", {"directions": ()}, "directions"),
        ("metarl/HalfCheetahDir-v0", {"directions": (1.0, math.nan)}, "directions"),
        ("metarl/AntDir-v0", {"contact_cost_weight": -1.0}, "contact_cost_weight"),
        ("metarl/AntDir-v0", {"healthy_z_range": (1.0, 0.2)}, "healthy_z_range"),
        ("metarl/AntDir2D-v0", {"angle_range": (1.0, 0.0)}, "angle_range"),
        ("metarl/AntGoal-v0", {"goal_radius": -3.0}, "goal_radius"),
        ("metarl/AntGoal-v0", {"ctrl_cost_weight": math.nan}, "ctrl_cost_weight"),
        ("metarl/Navigation2D-v0", {"goal_range": (0.5, -0.5)}, "goal_range"),
        ("metarl/Navigation2D-v0", {"max_action": 0.0}, "max_action"),
        ("metarl/Bandit-v0", {"k": 0}, "k"),
        ("metarl/Bandit-v0", {"k": 2.5}, "k"),
        ("metarl/Bandit-v0", {"prob_range": (0.0, 2.0)}, "prob_range"),
        ("metarl/TabularMDP-v0", {"num_states": 0}, "num_states"),
        ("metarl/TabularMDP-v0", {"dirichlet_alpha": 0.0}, "dirichlet_alpha"),
        ("metarl/TabularMDP-v0", {"reward_noise_std": -1.0}, "reward_noise_std"),
        ("metarl/TabularMDP-v0", {"start_state": 10}, "start_state"),
    ],
)
def test_invalid_constructor_kwargs_raise_value_error_naming_them(env_id, kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make(env_id, **kwargs)


# AsyncVectorEnv reports a worker's exception as a warning before raising it here.
@pytest.mark.filterwarnings("ignore:.*ERROR:")
@pytest.mark.parametrize("vector_env", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_take_per_env_tasks_through_set_attr(vector_env):
    envs = vector_env([lambda: gym.make("metarl/Navigation2D-v0")] * 2)
    try:
        envs.reset(seed=0)
        tasks = [{"goal": [0.5, 0.5]}, {"goal": [-0.5, -0.5]}]
        envs.set_attr("task", tasks)
        assert list(envs.get_attr("task")) == tasks
        _, rewards, *_ = envs.step(np.full((2, 2), 0.1, dtype=np.float32))
        np.testing.assert_allclose(rewards, [-np.hypot(0.4, 0.4), -np.hypot(0.6, 0.6)], rtol=1e-6)
        with pytest.raises(ValueError, match="goal"):
            envs.set_attr("task", [{"goal": [0.0]}, {"goal": [0.0, 0.0]}])
    finally:
        envs.close()
