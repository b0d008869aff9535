"""The sampler's fast paths of issue 13 against the plain ones, bit for bit: the Gaussian MLP
actor (no vmap, no distribution objects per step) against the policy's own forward and
distribution, and the MuJoCo batch stepped in two overlapped halves against one batch."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from metarl.policies import GRUPolicy, call, make_policy, mlp, parameters
from metarl.sampling import sampler as sampler_module
from metarl.sampling.mujoco_batch_env import MujocoBatchEnv
from metarl.sampling.sampler import VectorSampler

FIELDS = ("observations", "actions", "rewards", "log_probs", "dones", "terminated", "mask")


def assert_bit_identical(a, b):
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert torch.equal(x, y), field


def perturbed_params(policy, count, seed):
    """`count` parameter sets around the policy's own, as an inner loop would adapt them."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            name: (value + 0.1 * torch.randn(value.shape, generator=generator)).detach()
            for name, value in parameters(policy).items()
        }
        for _ in range(count)
    ]


def tasks_of(env_id, count, seed=1):
    probe = gym.make(env_id).unwrapped
    probe.reset(seed=seed)
    return probe.sample_tasks(count)


@pytest.fixture(autouse=True)
def spare_core(monkeypatch):
    """The halves are taken only where a core is left beside the physics threads: let every
    machine count as one where that is so, so that the halves are what these tests step."""
    monkeypatch.setattr(sampler_module, "spare_core", lambda physics_threads: True)


@pytest.fixture
def plain(monkeypatch):
    """Make the sampler use the policy's own forward and distribution and one row group, as
    before issue 13: what the fast paths must reproduce."""

    def force_plain():
        monkeypatch.setattr(sampler_module._GaussianMLPActor, "supports", lambda *args: False)
        monkeypatch.setattr(
            sampler_module,
            "_row_groups",
            lambda batch_env, actor, num_tasks, per_task: [slice(0, num_tasks * per_task)],
        )

    return force_plain


def sample_twice(env_id, num_envs, horizon, seed, policy_fn, params_fn, tasks, per_task, **kw):
    """Two consecutive batches of one sampler, and its random state after them."""
    with VectorSampler(env_id, num_envs, horizon=horizon, seed=seed, num_workers=2) as sampler:
        policy = policy_fn(sampler)
        params = params_fn(policy)
        runs = [sampler.sample(policy, tasks, per_task, params, **kw) for _ in range(2)]
        return runs, sampler.state_dict()


def gaussian(hidden=(64, 64)):
    def build(sampler):
        torch.manual_seed(0)
        return make_policy(sampler.observation_space, sampler.action_space, hidden)

    return build


PARAMS = {
    "own": lambda policy: None,
    "shared": lambda policy: perturbed_params(policy, 1, 3)[0],
    "per-task": None,  # one set per task, filled in by the test
}


@pytest.mark.parametrize("params_kind", ["own", "shared", "per-task"])
@pytest.mark.parametrize(
    ("env_id", "num_envs", "horizon", "num_tasks", "per_task", "hidden", "kwargs"),
    [
        ("metarl/Navigation2D-v0", 12, 20, 3, 4, (64, 64), {}),
        ("metarl/Navigation2D-v0", 9, 15, 3, 3, (100, 30), {"deterministic": True}),
        ("metarl/Navigation2D-v0", 6, 10, 2, 2, (16,), {"episodes_per_trial": 3}),
        ("metarl/HalfCheetahVel-v0", 10, 12, 5, 2, (64, 64), {}),
        ("metarl/AntDir-v0", 8, 12, 2, 3, (32,), {}),  # two columns fewer than envs
    ],
)
def test_fast_actor_and_halves_give_the_plain_episodes(
    plain, params_kind, env_id, num_envs, horizon, num_tasks, per_task, hidden, kwargs
):
    tasks = tasks_of(env_id, num_tasks)
    params_fn = PARAMS[params_kind] or (lambda policy: perturbed_params(policy, num_tasks, 5))
    args = (env_id, num_envs, horizon, 11, gaussian(hidden), params_fn, tasks, per_task)
    fast_runs, fast_state = sample_twice(*args, **kwargs)
    plain()
    plain_runs, plain_state = sample_twice(*args, **kwargs)
    for fast, reference in zip(fast_runs, plain_runs, strict=True):
        assert_bit_identical(fast, reference)
    assert fast_state["numpy"] == plain_state["numpy"]
    assert torch.equal(fast_state["torch"], plain_state["torch"])


def test_halves_with_early_terminations_give_the_one_batch_episodes(plain):
    """Ant columns fall at different steps, so one half ends before the other: the noise of a
    step is still drawn once for the whole batch, and the padding is the same."""
    env_id, tasks = "metarl/AntDir-v0", [{"direction": 1.0}, {"direction": -1.0}]
    kwargs = {"healthy_z_range": (0.2, 0.7)}

    def run():
        with VectorSampler(env_id, 8, env_kwargs=kwargs, horizon=60, seed=2) as sampler:
            policy = gaussian()(sampler)
            params = perturbed_params(policy, 2, 7)
            return sampler.sample(policy, tasks, 4, params), sampler.state_dict()

    (split, split_state), groups = run(), []
    original = sampler_module._row_groups
    sampler_module._row_groups = lambda *args: groups.append(original(*args)) or groups[-1]
    try:
        run()
    finally:
        sampler_module._row_groups = original
    assert groups == [[slice(0, 4), slice(4, 8)]]  # this batch does take the overlapped halves
    lengths = split.mask.sum(0)
    assert lengths.min() < lengths.max() < 60
    plain()
    one, one_state = run()
    assert_bit_identical(split, one)
    assert torch.equal(split_state["torch"], one_state["torch"])


def test_the_fast_mean_equals_the_policy_forward_to_float_tolerance():
    """Also for an activation that `make_policy` never builds (ReLU) and for per-task and
    shared parameter sets; the log-probs are the policy distribution's."""
    torch.manual_seed(0)
    policy = make_policy(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(-1, 1, (3,)), (32, 32))
    policy.mean = mlp([5, 32, 32, 3], activation=nn.ReLU)
    obs = torch.randn(12, 5)
    generator = torch.Generator().manual_seed(0)
    for params in (None, perturbed_params(policy, 1, 1)[0], perturbed_params(policy, 4, 2)):
        assert sampler_module._GaussianMLPActor.supports(policy, params)
        num_tasks = len(params) if isinstance(params, list) else 1
        actor = sampler_module._GaussianMLPActor(policy, params, num_tasks, obs, generator, False)
        actions, log_probs = actor.act(obs, slice(0, 12), step=0)
        if isinstance(params, list):
            expected = [call(policy, params[i // 3], obs[i : i + 1]) for i in range(12)]
        else:
            expected = [call(policy, params, obs[i : i + 1]) for i in range(12)]
        mean = torch.cat([e[0] for e in expected])
        log_std = torch.cat([e[1] for e in expected])
        torch.testing.assert_close(actor._mean(obs, actor._parts(slice(0, 12)).layers), mean)
        density = policy.action_dist.distribution((mean, log_std)).log_prob(actions)
        torch.testing.assert_close(log_probs, density)


def test_the_fast_actor_is_taken_only_where_it_computes_what_the_policy_does():
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (2,))
    policy = make_policy(box, box)
    assert sampler_module._GaussianMLPActor.supports(policy, None)
    partial = [{"mean.0.weight": parameters(policy)["mean.0.weight"]}]
    assert not sampler_module._GaussianMLPActor.supports(policy, partial)
    assert not sampler_module._GaussianMLPActor.supports(GRUPolicy(2, box, 8), None)
    categorical = make_policy(box, gym.spaces.Discrete(3))
    assert not sampler_module._GaussianMLPActor.supports(categorical, None)
    policy.mean = nn.Sequential(nn.Linear(2, 8), nn.ELU(), nn.Linear(8, 2))
    assert not sampler_module._GaussianMLPActor.supports(policy, None)


def test_step_async_steps_disjoint_envs_while_the_caller_works():
    """Two steps in flight, as the sampler's halves: each gives what one `step` of the same envs
    gives."""
    cheetah = ("metarl/HalfCheetahVel-v0", {"velocity": 1.5})
    ant = ("metarl/AntDir-v0", {"direction": 1.0})
    cases = [cheetah, ant]
    for env_id, task in cases:
        outcomes = []
        for overlapped in (False, True):
            env = gym.make(env_id).unwrapped
            batch = MujocoBatchEnv(env, 6, num_threads=2)
            ids = np.arange(6)
            batch.reset(ids, [task] * 6, list(range(6)))
            actions = np.random.default_rng(0).uniform(-1, 1, (6, env.action_space.shape[0]))
            if overlapped:
                first = batch.step_async(ids[:3], actions[:3])
                second = batch.step_async(ids[3:], actions[3:])
                parts = [first(), second()]
                outcomes.append([np.concatenate([p[k] for p in parts]) for k in range(4)])
            else:
                outcomes.append(list(batch.step(ids, actions)))
            batch.close()
        for one, halves in zip(*outcomes, strict=True):
            np.testing.assert_array_equal(one, halves)


def test_the_halves_need_a_core_beside_the_physics_threads(monkeypatch):
    monkeypatch.setattr(sampler_module, "spare_core", lambda physics_threads: False)
    with VectorSampler("metarl/HalfCheetahVel-v0", 4, horizon=2, num_workers=2) as sampler:
        policy = gaussian()(sampler)
        actor = sampler_module._GaussianMLPActor(
            policy, perturbed_params(policy, 2, 0), 2, torch.zeros(4, 17), torch.Generator(), False
        )
        assert sampler_module._row_groups(sampler.batch_env, actor, 2, 2) == [slice(0, 4)]
    monkeypatch.undo()
    cores = sampler_module.spare_core(1_000_000), sampler_module.spare_core(0)
    assert cores == (False, True)
