"""VectorSampler: shapes and masks, per-task parameters and tasks, determinism, the fast path
against the Gymnasium env, termination, recurrent carry-over, worker failures, Ctrl-C while the
workers start, the memory check."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from failing_env import FailingEnv  # its own module: spawned workers import it without torch

from metarl.policies import GRUPolicy, call, make_policy, parameters
from metarl.sampling import sampler as sampler_module
from metarl.sampling.episodes import Episodes
from metarl.sampling.sampler import VectorSampler

CHEETAH = "metarl/HalfCheetahVel-v0"


def policy_for(sampler, seed=0, **kwargs):
    torch.manual_seed(seed)
    return make_policy(sampler.observation_space, sampler.action_space, **kwargs)


def assert_same_episodes(a: Episodes, b: Episodes):
    for field in ("observations", "actions", "rewards", "log_probs", "dones", "terminated", "mask"):
        torch.testing.assert_close(getattr(a, field), getattr(b, field), rtol=0, atol=0)


def test_shapes_masks_and_task_index():
    tasks = [{"velocity": 0.5}, {"velocity": 2.5}]
    with VectorSampler(CHEETAH, 6, horizon=10) as sampler:
        episodes = sampler.sample(policy_for(sampler), tasks, episodes_per_task=3)
    assert episodes.observations.shape == (10, 6, 17)
    assert episodes.actions.shape == (10, 6, 6)
    assert episodes.rewards.shape == episodes.log_probs.shape == episodes.mask.shape == (10, 6)
    assert torch.all(episodes.mask == 1)
    assert torch.all(episodes.dones[-1]) and not torch.any(episodes.dones[:-1])
    assert not torch.any(episodes.terminated)
    assert episodes.task_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert episodes.tasks == tasks and episodes.num_env_steps == 60


def test_each_column_runs_its_own_tasks_reward():
    tasks = [{"velocity": 0.0}, {"velocity": 30.0}]
    with VectorSampler(CHEETAH, 4, horizon=5) as sampler:
        episodes = sampler.sample(policy_for(sampler), tasks, 2, deterministic=True)
    # The cheetah barely moves in 5 steps: the 30 m/s target costs about 30 per step more.
    per_column = episodes.rewards.mean(0)
    assert torch.all(per_column[2:] < per_column[:2].min() - 25)


def test_per_task_parameters_are_used_for_their_columns():
    with VectorSampler(CHEETAH, 4, horizon=3) as sampler:
        policy = policy_for(sampler)
        own = parameters(policy)
        bias = "mean.4.bias"  # the output layer of the (64, 64) mean network
        params = [
            {**own, bias: torch.full_like(own[bias], -5.0)},
            {**own, bias: torch.full_like(own[bias], 5.0)},
        ]
        tasks = [{"velocity": 1.0}] * 2
        episodes = sampler.sample(policy, tasks, 2, params, deterministic=True)
    assert torch.all(episodes.actions[:, :2] < -3) and torch.all(episodes.actions[:, 2:] > 3)
    # The log-probs are those of the parameters each column ran.
    for column, task in enumerate(episodes.task_index.tolist()):
        dist_params = call(policy, params[task], episodes.observations[:, column])
        expected = policy.action_dist.distribution(dist_params).log_prob(
            episodes.actions[:, column]
        )
        torch.testing.assert_close(episodes.log_probs[:, column], expected)


def test_same_seed_same_episodes_and_a_new_seed_differs():
    tasks = [{"velocity": 1.0}, {"velocity": 2.0}]
    runs = []
    for seed in (3, 3, 4):
        with VectorSampler(CHEETAH, 4, horizon=8, seed=seed) as sampler:
            runs.append(sampler.sample(policy_for(sampler), tasks, 2))
    assert_same_episodes(runs[0], runs[1])
    assert not torch.equal(runs[0].observations, runs[2].observations)


@pytest.mark.parametrize(
    "env_id",
    [
        CHEETAH,
        "metarl/AntDir-v0",
        "metarl/AntGoal-v0",
        "metarl/AntVel-v0",
        "metarl/HumanoidDir-v0",
        "metarl/Walker2dRandParams-v0",
        "metarl/HopperRandParams-v0",
    ],
)
def test_fast_path_equals_the_gymnasium_env(env_id):
    probe = gym.make(env_id).unwrapped
    probe.reset(seed=1)
    tasks = probe.sample_tasks(2)
    runs = []
    for fast in (True, False):
        with VectorSampler(env_id, 4, horizon=30, seed=7, fast=fast, num_workers=0) as sampler:
            runs.append(sampler.sample(policy_for(sampler), tasks, 2))
    assert_same_episodes(*runs)


def test_ant_termination_ends_the_column_and_pads_it():
    kwargs = {"healthy_z_range": (0.2, 0.7)}  # the torso drops below 0.7 within a few steps
    with VectorSampler("metarl/AntDir-v0", 4, env_kwargs=kwargs, horizon=50) as sampler:
        episodes = sampler.sample(policy_for(sampler), [{"direction": 1.0}], 4)
    lengths = episodes.mask.sum(0).long()
    assert torch.all(lengths < 50)
    for column, length in enumerate(lengths.tolist()):
        assert episodes.terminated[length - 1, column] and episodes.dones[length - 1, column]
        assert torch.all(episodes.mask[length:, column] == 0)
        assert torch.all(episodes.observations[length:, column] == 0)
    assert torch.all(episodes.episode_returns() != 0)


def test_generic_path_matches_across_worker_layouts():
    tasks = [{"goal": [0.3, 0.2]}, {"goal": [-0.4, 0.1]}, {"goal": [0.0, -0.5]}]
    runs = []
    for workers in (0, 2):
        with VectorSampler("navigation2d", 6, seed=5, num_workers=workers) as sampler:
            runs.append(sampler.sample(policy_for(sampler), tasks, 2))
    assert_same_episodes(*runs)
    assert runs[0].observations.shape == (100, 6, 2)


def test_recurrent_hidden_state_is_carried_across_a_trial_and_reset_between_trials():
    with VectorSampler("bandit", 4, seed=0, num_workers=0) as sampler:
        torch.manual_seed(0)
        policy = GRUPolicy(1, sampler.action_space, hidden_size=16)
        tasks = [{"probs": [0.9, 0.1, 0.1, 0.1, 0.1]}, {"probs": [0.1, 0.1, 0.1, 0.1, 0.9]}]
        episodes = sampler.sample(policy, tasks, 2, episodes_per_trial=5)
        again = sampler.sample(policy, tasks, 2, episodes_per_trial=5)
    assert episodes.observations.shape[:2] == (5, 4)  # 5 one-step episodes per column
    assert torch.all(episodes.dones) and episodes.episode_returns().shape == (20,)

    def replay(reset_every_episode):
        """Log-probs of the recorded actions, re-running the GRU over the trial's inputs."""
        prev = episodes.previous_step_inputs()
        hidden, log_probs = policy.initial_hidden(4), []
        for t in range(5):
            if reset_every_episode:
                hidden = policy.initial_hidden(4)
            logits, hidden = policy(episodes.observations[t], *(x[t] for x in prev), hidden)
            log_probs.append(policy.action_dist.distribution(logits).log_prob(episodes.actions[t]))
        return torch.stack(log_probs)

    torch.testing.assert_close(replay(False), episodes.log_probs)
    assert not torch.allclose(replay(True)[1:], episodes.log_probs[1:])
    # A new batch starts from a zero hidden state: its first step has the first step's inputs
    # (zeros), so the same log-prob for the same action.
    same = again.actions[0] == episodes.actions[0]
    torch.testing.assert_close(again.log_probs[0][same], episodes.log_probs[0][same])


def test_deterministic_sampling_takes_the_mean():
    with VectorSampler("navigation2d", 2, horizon=5, num_workers=0) as sampler:
        policy = policy_for(sampler)
        episodes = sampler.sample(policy, [{"goal": [0.1, 0.1]}], 2, deterministic=True)
    expected = call(policy, None, episodes.observations)[0]
    torch.testing.assert_close(episodes.actions, expected)


def test_bad_batch_sizes_and_parameter_sets_raise():
    with VectorSampler("navigation2d", 4, horizon=5, num_workers=0) as sampler:
        policy = policy_for(sampler)
        with pytest.raises(ValueError, match="need 6 envs"):
            sampler.sample(policy, [{"goal": [0, 0]}] * 3, 2)
        with pytest.raises(ValueError, match="parameter sets"):
            sampler.sample(policy, [{"goal": [0, 0]}] * 2, 2, [parameters(policy)])
        with pytest.raises(ValueError, match="goal"):
            sampler.sample(policy, [{"goal": [0, 0, 0]}], 2)
    with pytest.raises(ValueError, match="horizon"):
        VectorSampler(lambda: gym.make("Pendulum-v1").unwrapped, 2, num_workers=0)


def test_a_worker_exception_surfaces_and_close_leaves_no_process():
    sampler = VectorSampler(FailingEnv, 2, horizon=10, num_workers=2)
    try:
        policy = policy_for(sampler)
        with pytest.raises(RuntimeError, match="physics exploded"):
            sampler.sample(policy, None, 2)
    finally:
        sampler.close()
    assert multiprocessing.active_children() == []


def test_restoring_the_state_dict_repeats_the_next_batch():
    tasks = [{"goal": [0.2, 0.2]}]
    with VectorSampler("navigation2d", 2, horizon=5, seed=1, num_workers=0) as sampler:
        policy = policy_for(sampler)
        sampler.sample(policy, tasks, 2)
        state = sampler.state_dict()
        first = sampler.sample(policy, tasks, 2)
        sampler.load_state_dict(state)
        assert_same_episodes(first, sampler.sample(policy, tasks, 2))


SIGINT_SCRIPT = """
import os
import sys

if __name__ == "__main__":
    os.environ["METARL_SLOW_ENV_PARENT"] = str(os.getpid())  # slow in the workers only
    sys.path.insert(0, {tests!r})
    from slow_env import SlowEnv
    from metarl.sampling.gym_batch_env import GymBatchEnv

    GymBatchEnv(SlowEnv, 4, num_workers=2)
"""


def _running(pid):
    """Whether `pid` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_during_worker_start_up_reports_only_in_the_parent(tmp_path):
    """A terminal's Ctrl-C goes to the whole process group: the workers must stay silent, the
    parent raises KeyboardInterrupt and stops them at once (not after their 120 s start-up)."""
    script = tmp_path / "start.py"
    script.write_text(SIGINT_SCRIPT.format(tests=str(Path(__file__).parent)))
    markers = tmp_path / "markers"
    markers.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, "METARL_SLOW_ENV_DIR": str(markers)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a job
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 2:  # both workers are in their slow start-up
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode != 0
    assert stderr.count("Traceback") == 1 and stderr.rstrip().endswith("KeyboardInterrupt")
    assert "spawn_main" not in stderr and "Process SpawnProcess" not in stderr, stderr
    workers = [int(marker.name) for marker in markers.iterdir()]
    assert not any(_running(pid) for pid in workers)


@pytest.fixture
def no_batch_envs(monkeypatch):
    """Any batch env the sampler builds fails the test: the memory check comes first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the sampler built its envs before checking their memory")

    for name in ("MujocoBatchEnv", "ToyBatchEnv", "GymBatchEnv"):
        monkeypatch.setattr(getattr(sampler_module, name), "__init__", refuse)


@pytest.mark.parametrize("env", ["navigation2d", "bandit", CHEETAH, lambda: FailingEnv()])
def test_a_batch_too_big_for_memory_fails_fast_before_allocating(env, no_batch_envs):
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"needs about .* GiB of memory but .* is available") as e:
        VectorSampler(env, 10**12, horizon=100 if callable(env) else None)
    assert time.monotonic() - start < 10
    message = str(e.value)
    assert "\n" not in message and "10^12" not in message and "1000000000000 envs" in message
    assert "num_envs = tasks × episodes per task" in message and "meta_batch_size" in message


def test_the_memory_estimate_counts_steps_and_physics_state(monkeypatch):
    monkeypatch.setattr(sampler_module, "available_memory", lambda: 100 * 2**20)
    # 200 steps × (17 + 6 + 4) float32 and the cheetah's 160 bytes of physics state per env
    # (19 state numbers and its task's 1; no contact forces, which it does not read).
    with pytest.raises(
        ValueError,
        match=r"5000 envs × 200 steps needs about 103\.8 MiB of memory but 100\.0 MiB is available",
    ):
        VectorSampler(CHEETAH, 5000)
    with VectorSampler("navigation2d", 64, num_workers=0) as sampler:
        policy = policy_for(sampler)
        with pytest.raises(ValueError, match="or episodes_per_trial"):
            sampler.sample(policy, None, 64, episodes_per_trial=10**4)
    monkeypatch.setattr(sampler_module, "available_memory", lambda: None)  # unknown: no check
    with VectorSampler("navigation2d", 10**4, horizon=1) as sampler:
        assert sampler.num_envs == 10**4


def test_the_available_memory_is_read():
    available = sampler_module.available_memory()
    assert available is not None and 0 < available < 2**50


@pytest.mark.parametrize("num_envs", [0, -3, 2.0, 1e9, True])
def test_num_envs_must_be_a_positive_integer(num_envs):
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
        VectorSampler("navigation2d", num_envs)
