"""`RL2Trial`: the RL² observation, trial boundaries, tasks, and training with sb3-contrib."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

from metarl.envs.trial import RL2Trial


def bandit_trial(k=3, episodes=5):
    return RL2Trial(gym.make("metarl/Bandit-v0", k=k), episodes_per_trial=episodes)


# Expected: the reward input is unbounded, and the checked env is (by design) a wrapper.
@pytest.mark.filterwarnings("ignore:.*(infinity|different from the unwrapped)")
@pytest.mark.parametrize("env_id", ["metarl/Bandit-v0", "metarl/Navigation2D-v0"])
def test_the_wrapper_passes_gymnasium_and_sb3_checks(env_id):
    env = RL2Trial(gym.make(env_id), episodes_per_trial=2)
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)  # its advice (normalized Box actions) is about the env


def test_the_observation_holds_the_previous_action_reward_and_done():
    env = bandit_trial(k=3, episodes=5)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # [obs, one-hot action, reward, done]
    task = env.unwrapped.get_task()
    for step, action in enumerate([2, 0, 2, 1, 1]):
        obs, reward, terminated, truncated, info = env.step(action)
        one_hot = np.eye(3)[action]
        assert obs.tolist() == [1.0, *one_hot, reward, 1.0]  # every bandit episode is one pull
        assert info["episode_index"] == step and info["episode_done"]
        assert terminated == (step == 4) and not truncated
        assert env.unwrapped.get_task() == task  # the task persists through the trial


def test_continuous_episodes_restart_inside_the_trial_with_the_done_flag():
    env = RL2Trial(gym.make("metarl/Navigation2D-v0"), episodes_per_trial=2)
    obs, _ = env.reset(seed=3)
    action = np.array([0.05, -0.02], dtype=np.float32)
    flags = []
    for _ in range(200):
        obs, reward, terminated, _, _ = env.step(action)
        assert obs[2:4].tolist() == pytest.approx(action.tolist())
        assert obs[4] == pytest.approx(reward)
        flags.append(obs[5])
    assert terminated and [i for i, f in enumerate(flags) if f] == [99, 199]


def test_each_trial_draws_a_task_seeded_or_given():
    env = bandit_trial()
    env.reset(seed=5)
    first = env.unwrapped.get_task()
    env.reset()
    assert env.unwrapped.get_task() != first  # a new trial, a new task
    env.reset(seed=5)
    assert env.unwrapped.get_task() == first  # reproducible from the seed
    given = {"probs": [0.1, 0.2, 0.9]}
    env.reset(options={"task": given})
    assert env.unwrapped.get_task() == given


def test_bad_wrapper_arguments_are_named():
    with pytest.raises(ValueError, match="episodes_per_trial"):
        bandit_trial(episodes=0)
    with pytest.raises(ValueError, match="task env"):
        RL2Trial(gym.make("Pendulum-v1"), episodes_per_trial=2)


def trial_reward(model, trials=200, seed=1):
    """Mean total reward of `trials` 10-pull trials with the model's recurrent state carried."""
    env, total = RL2Trial(gym.make("metarl/Bandit-v0", k=2), episodes_per_trial=10), 0.0
    for i in range(trials):
        obs, _ = env.reset(seed=seed + i)
        state, start, done = None, np.ones(1, dtype=bool), False
        while not done:
            action, state = model.predict(obs, state, start, deterministic=True)
            obs, reward, done, _, _ = env.step(action)
            total, start = total + reward, np.zeros(1, dtype=bool)
    return total / trials


def recurrent_ppo():
    def make():
        return RL2Trial(gym.make("metarl/Bandit-v0", k=2), episodes_per_trial=10)

    return RecurrentPPO(
        "MlpLstmPolicy",
        make_vec_env(make, n_envs=8, seed=0),
        n_steps=40,
        batch_size=80,
        n_epochs=4,
        learning_rate=3e-3,
        seed=0,
        policy_kwargs={"lstm_hidden_size": 32, "net_arch": []},
    )


def test_recurrent_ppo_from_sb3_contrib_trains_on_the_wrapper():
    model = recurrent_ppo()
    model.learn(640)
    assert model.num_timesteps == 640
    assert 0 <= trial_reward(model, trials=5) <= 10


@pytest.mark.slow
def test_recurrent_ppo_learns_two_armed_bandits_through_the_wrapper():
    """10 pulls of 2 arms: random pulls average 5.0; knowing the better arm, 6.67."""
    model = recurrent_ppo()
    before = trial_reward(model)
    model.learn(20_000)
    assert before < 5.4 and trial_reward(model) > 5.9  # per-estimate std error ~0.1
