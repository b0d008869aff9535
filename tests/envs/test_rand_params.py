"""The dynamics-randomized envs: what a task does to the model, that it changes the physics and
nothing else, that it is reproducible, and that the fast path steps each env with its own task."""

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from metarl.envs.rand_params import SCALE_BASES
from metarl.sampling.mujoco_batch_env import MujocoBatchEnv

IDS = ["metarl/Walker2dRandParams-v0", "metarl/HopperRandParams-v0"]


def make(env_id, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped


def step_from(env, qpos, qvel, action, steps=5):
    """From a fresh `MjData` (no warm start left by earlier steps) at the state, take `action`
    `steps` times; the final qpos and qvel."""
    mujoco.mj_resetData(env.model, env.data)
    env.set_state(qpos, qvel)
    for _ in range(steps):
        env.step(action)
    return env.data.qpos.copy(), env.data.qvel.copy()


@pytest.mark.parametrize("env_id", IDS)
def test_a_task_scales_the_model_arrays_from_their_original_values(env_id):
    env = make(env_id)
    original = {name: getattr(env.model, name).copy() for name in SCALE_BASES}
    env.reset(seed=0)
    first, second = env.sample_tasks(2)
    for task in (first, second, first):  # never compounding: always from the original
        env.set_task(task)
        for name in SCALE_BASES:
            np.testing.assert_array_equal(
                getattr(env.model, name), original[name] * np.asarray(task[name])
            )
    # The derived constants follow: the subtree masses are sums of the scaled masses.
    np.testing.assert_allclose(env.model.body_subtreemass[0], env.model.body_mass.sum())


@pytest.mark.parametrize("env_id", IDS)
def test_multipliers_are_base_to_a_uniform_power_within_the_limit(env_id):
    env = make(env_id, log_scale_limit=2.0)
    env.reset(seed=1)
    tasks = env.sample_tasks(200)
    for name, base in SCALE_BASES.items():
        exponents = np.log(np.array([t[name] for t in tasks])) / math.log(base)
        assert exponents.min() >= -2.0 and exponents.max() <= 2.0
        assert exponents.min() < -1.9 and exponents.max() > 1.9  # the whole range is used
        assert abs(exponents.mean()) < 0.1  # U[-2, 2]: mean 0, s.e. ~0.01-0.03 here


@pytest.mark.parametrize("env_id", IDS)
def test_rand_params_chooses_which_arrays_a_task_scales(env_id):
    env = make(env_id, rand_params=["dof_damping"])
    env.reset(seed=2)
    mass = env.model.body_mass.copy()
    task = env.sample_tasks(1)[0]
    assert list(task) == ["dof_damping"]
    env.set_task(task)
    np.testing.assert_array_equal(env.model.body_mass, mass)


@pytest.mark.parametrize("env_id", IDS)
def test_two_tasks_give_different_dynamics_from_one_state_and_the_same_task_the_same(env_id):
    env = make(env_id)
    env.reset(seed=3)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    action = np.full(env.action_space.shape, 0.5)
    first, second = env.sample_tasks(2)
    outcomes = {}
    for name, task in [("first", first), ("second", second), ("first again", first)]:
        env.set_task(task)
        outcomes[name] = step_from(env, qpos, qvel, action)
    fresh = make(env_id)  # a task applied to a new env gives the same physics too
    fresh.reset(seed=3)
    fresh.set_task(first)
    outcomes["fresh"] = step_from(fresh, qpos, qvel, action)
    for name in ("first again", "fresh"):
        for a, b in zip(outcomes["first"], outcomes[name], strict=True):
            np.testing.assert_array_equal(a, b)
    assert np.abs(outcomes["first"][1] - outcomes["second"][1]).max() > 1e-3


@pytest.mark.parametrize("env_id", IDS)
def test_the_fast_path_steps_each_env_with_its_own_tasks_model(env_id):
    """Envs 0 and 2 run task A, env 1 task B: each column equals a Gymnasium env with its
    task, and the two envs of task A share one model."""
    template = make(env_id)
    template.reset(seed=4)
    a, b = template.sample_tasks(2)
    batch = MujocoBatchEnv(template, 3)
    tasks, seeds = [a, b, a], [10, 11, 12]
    observations = [batch.reset(np.arange(3), tasks, seeds)]
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 3, template.action_space.shape[0]))
    rewards = []
    for step_actions in actions:
        obs, reward, _, _ = batch.step(np.arange(3), step_actions)
        observations.append(obs)
        rewards.append(reward)
    assert len(batch._task_models) == 2 and batch._env_models[0] is batch._env_models[2]
    for i in range(3):
        env = make(env_id)
        obs, _ = env.reset(seed=seeds[i], options={"task": tasks[i]})
        np.testing.assert_array_equal(obs, observations[0][i])
        for t, step_actions in enumerate(actions):
            obs, reward, _, _, _ = env.step(step_actions[i])
            np.testing.assert_allclose(obs, observations[t + 1][i], rtol=0, atol=1e-9)
            assert reward == pytest.approx(rewards[t][i], abs=1e-9)
    batch.reset(np.arange(3), [b, b, b], [None] * 3)  # task A's model is let go
    assert len(batch._task_models) == 1
    batch.close()


def test_the_template_envs_task_does_not_leak_into_the_batch():
    """A task set on the template env afterwards leaves the batch's models as they were."""
    template = make(IDS[0])
    template.reset(seed=5)
    task = template.sample_tasks(1)[0]
    batch = MujocoBatchEnv(template, 1)
    batch.reset(np.arange(1), [task], [0])
    mass = batch._env_models[0].body_mass.copy()
    template.set_task(template.sample_tasks(1)[0])
    np.testing.assert_array_equal(batch._env_models[0].body_mass, mass)
    assert batch._env_models[0] is not template.model
    batch.close()


def test_a_model_per_task_is_counted_in_the_memory_estimate():
    env = make(IDS[0])
    cheetah = make("metarl/HalfCheetahVel-v0")
    state = mujoco.mj_stateSize(env.model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    task_size = len(env.task_vector(env.get_task()))
    assert MujocoBatchEnv.bytes_per_env(env) == 8 * (state + task_size) + env.model.nbuffer
    assert MujocoBatchEnv.bytes_per_env(cheetah) < cheetah.model.nbuffer
