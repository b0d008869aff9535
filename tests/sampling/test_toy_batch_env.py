"""ToyBatchEnv, the in-process path of Navigation2D, Bandit and TabularMDP: its episodes against
the generic path's (`fast=False`, the Gymnasium envs), bit for bit, random draws included; which
envs take it; and a script without a `__main__` guard."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from metarl.envs.navigation import Navigation2DEnv
from metarl.envs.trial import RL2Trial
from metarl.policies import GRUPolicy, make_policy
from metarl.sampling.gym_batch_env import GymBatchEnv
from metarl.sampling.mujoco_batch_env import MujocoBatchEnv
from metarl.sampling.sampler import VectorSampler
from metarl.sampling.toy_batch_env import ToyBatchEnv

FIELDS = ("observations", "actions", "rewards", "log_probs", "dones", "terminated", "mask")


def policy_for(sampler, recurrent, seed=0):
    torch.manual_seed(seed)
    if recurrent:
        return GRUPolicy(sampler.observation_space.shape[0], sampler.action_space, hidden_size=8)
    return make_policy(sampler.observation_space, sampler.action_space, hidden_sizes=(16,))


def collect(env, fast, seed, batches, *, num_workers=0, recurrent=False, **sample_kwargs):
    """`batches` consecutive `sample` calls of one sampler (sample_kwargs: `num_envs`,
    `env_kwargs`, `horizon` go to the sampler; `tasks`, `episodes_per_task`, `episodes_per_trial`
    to each call)."""
    sampler_kwargs = {k: sample_kwargs.pop(k, None) for k in ("env_kwargs", "horizon")}
    num_envs = sample_kwargs.pop("num_envs")
    with VectorSampler(
        env, num_envs, seed=seed, fast=fast, num_workers=num_workers, **sampler_kwargs
    ) as sampler:
        assert isinstance(sampler.batch_env, ToyBatchEnv if fast else GymBatchEnv)
        policy = policy_for(sampler, recurrent)
        return [sampler.sample(policy, **sample_kwargs) for _ in range(batches)]


def assert_bit_identical(fast_runs, generic_runs):
    assert len(fast_runs) == len(generic_runs)
    for fast, generic in zip(fast_runs, generic_runs, strict=True):
        for field in FIELDS:
            a, b = getattr(fast, field), getattr(generic, field)
            assert a.dtype == b.dtype and a.shape == b.shape, field
            assert torch.equal(a, b), field
        assert torch.equal(fast.task_index, generic.task_index) and fast.tasks == generic.tasks


NAV_TASKS = [{"goal": [0.3, 0.2]}, {"goal": [-0.4, 0.1]}, {"goal": [0.0, -0.5]}]
BANDIT_TASKS = [{"probs": [0.9, 0.1, 0.5]}, {"probs": [0.2, 0.3, 0.25]}]

CASES = {
    # Navigation2D: given tasks, the registered 100-step horizon, two batches in a row.
    "nav-tasks": dict(
        env="navigation2d", num_envs=6, tasks=NAV_TASKS, episodes_per_task=2, horizon=None
    ),
    # Own settings; no tasks, so each env draws its own from its seeded `np_random` (and keeps
    # it for the second batch); half the sampler's envs in each batch.
    "nav-kwargs-own-tasks": dict(
        env="metarl/Navigation2D-v0",
        num_envs=8,
        env_kwargs={"goal_range": (-2.0, 2.0), "max_action": 0.3},
        tasks=None,
        episodes_per_task=4,
        horizon=25,
    ),
    # TimeLimit cuts each episode at 7 steps of a 10-step horizon; RL² trials of 3 episodes.
    "nav-truncation-trials": dict(
        env="navigation2d",
        num_envs=4,
        env_kwargs={"max_episode_steps": 7, "max_action": 0.05},
        tasks=NAV_TASKS[:2],
        episodes_per_task=2,
        horizon=10,
        episodes_per_trial=3,
        recurrent=True,
    ),
    # Bandit: RL² trials of 10 one-pull episodes (one random() per pull from each env's stream).
    "bandit-trials": dict(
        env="bandit",
        num_envs=6,
        env_kwargs={"k": 3, "prob_range": (0.2, 0.8)},
        tasks=BANDIT_TASKS,
        episodes_per_task=3,
        horizon=None,
        episodes_per_trial=10,
        recurrent=True,
    ),
    "bandit-own-tasks": dict(
        env="metarl/Bandit-v0",
        num_envs=8,
        env_kwargs=None,
        tasks=None,
        episodes_per_task=8,
        horizon=None,
        episodes_per_trial=4,
        recurrent=True,
    ),
    # TabularMDP: a normal, then a uniform per step from each env's stream.
    "mdp-kwargs-trials": dict(
        env="tabular-mdp",
        num_envs=16,
        env_kwargs={
            "num_states": 4,
            "num_actions": 3,
            "reward_noise_std": 0.5,
            "dirichlet_alpha": 0.5,
            "start_state": 2,
        },
        tasks=None,
        episodes_per_task=16,
        horizon=None,
        episodes_per_trial=5,
        recurrent=True,
    ),
    "mdp-default-mlp": dict(
        env="metarl/TabularMDP-v0",
        num_envs=12,
        env_kwargs=None,
        tasks="sampled",
        episodes_per_task=4,
        horizon=15,  # beyond the registered 10: TimeLimit ends the episodes
    ),
}


@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("case", list(CASES))
def test_in_process_path_equals_the_generic_path_bit_for_bit(case, seed):
    kwargs = dict(CASES[case])
    if kwargs["tasks"] == "sampled":
        probe = gym.make(kwargs["env"]).unwrapped
        probe.reset(seed=seed)
        kwargs["tasks"] = probe.sample_tasks(3)
    fast = collect(fast=True, seed=seed, batches=2, **dict(kwargs))
    generic = collect(fast=False, seed=seed, batches=2, **dict(kwargs))
    assert_bit_identical(fast, generic)
    if kwargs.get("episodes_per_trial", 1) > 1:
        assert fast[0].dones.sum() == kwargs["num_envs"] * kwargs["episodes_per_trial"]
    assert not torch.equal(fast[0].rewards, fast[1].rewards)  # a new batch, new draws


def test_in_process_path_equals_the_worker_processes():
    kwargs = dict(CASES["mdp-kwargs-trials"], num_envs=6, episodes_per_task=6)
    fast = collect(fast=True, seed=3, batches=2, **dict(kwargs))
    workers = collect(fast=False, seed=3, batches=2, num_workers=2, **dict(kwargs))
    assert_bit_identical(fast, workers)


class Navigation2DSubclass(Navigation2DEnv):
    """A subclass may step differently: it takes the generic path."""


@pytest.mark.parametrize(
    ("env", "fast", "expected"),
    [
        ("navigation2d", True, ToyBatchEnv),
        ("bandit", True, ToyBatchEnv),
        ("tabular-mdp", True, ToyBatchEnv),
        (lambda: gym.make("metarl/Bandit-v0"), True, ToyBatchEnv),
        ("navigation2d", False, GymBatchEnv),
        ("tabular-mdp", False, GymBatchEnv),
        (lambda: RL2Trial(gym.make("metarl/Bandit-v0"), 2), True, GymBatchEnv),
        (lambda: gym.wrappers.TimeLimit(Navigation2DSubclass(), 5), True, GymBatchEnv),
        ("halfcheetah-vel", True, MujocoBatchEnv),
    ],
)
def test_which_envs_take_the_in_process_path(env, fast, expected):
    with VectorSampler(env, 2, horizon=5, num_workers=0, fast=fast) as sampler:
        assert type(sampler.batch_env) is expected


def test_bad_use_raises_as_the_envs_do():
    batch = ToyBatchEnv(gym.make("metarl/TabularMDP-v0"), 3)
    with pytest.raises(gym.error.ResetNeeded):
        batch.step(np.arange(3), np.zeros(3, dtype=np.int64))
    batch.reset(np.arange(3), [None] * 3, [0, 1, 2])
    for bad in (np.array([0, 5, 1]), np.array([0, -1, 1]), np.array([0.0, 1.0, 2.0])):
        with pytest.raises(ValueError, match="action must be an integer"):
            batch.step(np.arange(3), bad)
    with pytest.raises(ValueError, match="transitions"):
        batch.reset(np.array([0]), [{"reward_means": [[0.0] * 5] * 10, "transitions": 1}], [0])
    with pytest.raises(TypeError, match="in-process path"):
        ToyBatchEnv(gym.make("metarl/HalfCheetahVel-v0"), 2)


NO_GUARD_SCRIPT = """
from metarl.policies import GRUPolicy, make_policy
from metarl.sampling import VectorSampler

for env in ("navigation2d", "bandit", "tabular-mdp"):
    with VectorSampler(env, num_envs=4, seed=0) as sampler:  # num_workers: the default 2
        obs_size = sampler.observation_space.shape[0]
        policy = GRUPolicy(obs_size, sampler.action_space, hidden_size=8)
        episodes = sampler.sample(policy, None, episodes_per_task=4, episodes_per_trial=2)
        print(env, episodes.num_env_steps)
"""


def test_a_script_without_a_main_guard_runs(tmp_path):
    """No worker processes, so nothing re-imports the script (spawn would run it again in each
    worker and fail)."""
    script = tmp_path / "no_guard.py"
    script.write_text(NO_GUARD_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["navigation2d", "800", "bandit", "8", "tabular-mdp", "80"]
    assert result.stderr == ""
