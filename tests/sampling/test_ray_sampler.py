"""`RaySampler` against `VectorSampler`, bit for bit, whatever the number of actors; a fault
mid-batch; the one-line errors. On a local Ray instance (no network); skipped without the
extra."""

import os
import signal
import subprocess
import sys
import threading
import time

import gymnasium as gym
import pytest
import torch

from metarl.policies import GaussianMLPPolicy, GRUPolicy, parameters
from metarl.sampling.episodes import Episodes
from metarl.sampling.ray_sampler import RaySampler, split_columns
from metarl.sampling.sampler import VectorSampler

FIELDS = ("observations", "actions", "rewards", "log_probs", "dones", "terminated", "mask")


@pytest.fixture
def ray(ray_local):
    return ray_local


def assert_same(a: Episodes, b: Episodes) -> None:
    for field in (*FIELDS, "task_index"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert torch.equal(x, y), field
    assert a.tasks == b.tasks


def tasks_of(env_id, count, seed=1):
    probe = gym.make(env_id).unwrapped
    probe.reset(seed=seed)
    return probe.sample_tasks(count)


def adapted(policy, count, seed=3):
    """`count` per-task parameter sets around the policy's own, as MAML's inner step gives."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            name: (value + 0.1 * torch.randn(value.shape, generator=generator)).detach()
            for name, value in parameters(policy).items()
        }
        for _ in range(count)
    ]


def test_split_columns_covers_the_batch_in_near_equal_slices():
    for batch in range(1, 30):
        for parts in range(1, 8):
            slices = split_columns(batch, parts)
            assert len(slices) == min(parts, batch)
            assert [s.start for s in slices[1:]] == [s.stop for s in slices[:-1]]
            assert slices[0].start == 0 and slices[-1].stop == batch
            sizes = [s.stop - s.start for s in slices]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_columns_of_a_batch_join_to_the_local_batch():
    """Without Ray: `sample_columns` of three slices, joined, is `sample`'s batch, and the
    slice that ran longest ends in `sample`'s noise state (what RaySampler relies on)."""
    from metarl.sampling.sampler import ColumnRequest

    env = "metarl/HalfCheetahVel-v0"
    policy = GaussianMLPPolicy(17, 6, (16,))
    tasks, params = tasks_of(env, 3), adapted(policy, 3)
    with VectorSampler(env, 12, horizon=30, seed=4) as local:
        start = local.state_dict()
        expected = local.sample(policy, tasks, 4, params)
        after = local.state_dict()["torch"]
        local.load_state_dict(start)
        seeds = local._rng.integers(2**31, size=12).tolist()
        parts = [
            local.sample_columns(
                policy, tasks, 4, params, ColumnRequest(cols, seeds[cols], start["torch"])
            )
            for cols in split_columns(12, 3)
        ]
    assert_same(Episodes.concat_columns([p.episodes for p in parts], tasks), expected)
    longest = max(parts, key=lambda p: p.steps)
    assert torch.equal(longest.generator_state, after)


CASES = {
    # MAML's batches: per-task parameter sets on the fast Gaussian actor, Navigation2D's numpy
    # batch (episodes end at different steps); shared parameters on MuJoCo's threads.
    "navigation2d per-task": ("metarl/Navigation2D-v0", {}, None, "per-task", 5, 4, {}),
    "halfcheetah shared": ("metarl/HalfCheetahVel-v0", {}, 40, "shared", 4, 3, {}),
    # RL²'s trials: a GRU over the whole batch, categorical actions, 10 episodes per column.
    "bandit trials": (
        "metarl/Bandit-v0",
        {"k": 5},
        None,
        "gru",
        None,
        7,
        {"episodes_per_trial": 10},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_episodes_whatever_the_actors(ray, case):
    env, env_kwargs, horizon, kind, num_tasks, per_task, extra = CASES[case]
    probe = gym.make(env, **env_kwargs)
    obs_dim = probe.observation_space.shape[0]
    torch.manual_seed(0)
    if kind == "gru":
        policy, params = GRUPolicy(obs_dim, probe.action_space, 16), None
    else:
        policy = GaussianMLPPolicy(obs_dim, probe.action_space.shape[0], (32, 32))
        params = adapted(policy, num_tasks) if kind == "per-task" else None
    tasks = None if num_tasks is None else tasks_of(env, num_tasks)
    batch = (num_tasks or 1) * per_task
    options = {"env_kwargs": env_kwargs, "horizon": horizon, "seed": 5}
    with VectorSampler(env, batch, **options) as local:
        expected = [local.sample(policy, tasks, per_task, params, **extra) for _ in range(2)]
        expected_state = local.state_dict()
    for workers in (1, 2, 3) if case == "navigation2d per-task" else (2,):
        with RaySampler(env, batch, ray_workers=workers, num_workers=1, **options) as remote:
            for episodes in expected:  # two calls: the second starts where the first left
                assert_same(remote.sample(policy, tasks, per_task, params, **extra), episodes)
            state = remote.state_dict()
        assert state["numpy"] == expected_state["numpy"]
        assert torch.equal(state["torch"], expected_state["torch"])


def test_an_actor_killed_mid_batch_is_replaced_and_its_slice_sampled_again(ray):
    env = "metarl/HalfCheetahVel-v0"
    policy = GaussianMLPPolicy(17, 6, (16,))
    tasks = tasks_of(env, 3)
    options = {"horizon": 1000, "seed": 2}
    with VectorSampler(env, 120, **options) as local:
        expected = local.sample(policy, tasks, 40)
    with RaySampler(env, 120, ray_workers=3, num_workers=1, **options) as remote:
        victim = ray.get(remote.actors[1].pid.remote())
        killer = threading.Timer(0.3, os.kill, (victim, signal.SIGKILL))
        killer.start()
        started = time.monotonic()
        episodes = remote.sample(policy, tasks, 40)
        killer.join()
        assert remote.replaced == 1, "the kill landed after the batch: lengthen it"
        assert time.monotonic() - started > 0.3
        assert_same(episodes, expected)


def test_batch_larger_than_the_sampler_is_refused(ray):
    policy = GaussianMLPPolicy(2, 2, (8,))
    with RaySampler("metarl/Navigation2D-v0", 4, ray_workers=2, num_workers=1) as remote:
        with pytest.raises(ValueError, match="need 6 envs; this sampler has 4"):
            remote.sample(policy, tasks_of("metarl/Navigation2D-v0", 3), 2)


def test_more_cpus_than_the_cluster_has_is_one_line(ray):
    with pytest.raises(ValueError, match=r"need \d+ CPUs but the local Ray instance has"):
        RaySampler("metarl/Navigation2D-v0", 4, ray_workers=4, num_workers=64)


def run_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "metarl", *args], capture_output=True, text=True, timeout=timeout
    )


def test_unreachable_cluster_is_a_one_line_error_within_seconds(tmp_path):
    pytest.importorskip("ray")
    started = time.monotonic()
    done = run_cli(
        "train", "maml-trpo", "--env", "navigation2d", "--iterations", "1",
        "--sampler", "ray", "--ray-address", "127.0.0.1:9", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("metarl: error: no Ray cluster answers at 127.0.0.1:9")
    assert done.stderr.count("\n") == 1
    assert time.monotonic() - started < 60  # the interpreter's start-up, then seconds


def test_without_the_extra_ray_is_a_one_line_error_naming_the_install(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # `import ray` now raises ImportError
        "from metarl.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "maml-trpo", "--env", "navigation2d",
         "--sampler", "ray", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == 'metarl: error: --sampler ray needs Ray: pip install -e ".[ray]"\n'
    assert not (tmp_path / "run").exists()
