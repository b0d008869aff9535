"""Meta-World as metarl task distributions: without the extra, a one-line error naming the
install; with it (CI's second environment), Meta-World's own splits, its own physics, reward and
success step for step, and success rates recorded by the sampler."""

import pickle

import gymnasium as gym
import numpy as np
import pytest

from metarl.cli import main
from metarl.envs import ENVS
from metarl.envs import metaworld as metaworld_env

META_WORLD_IDS = [e.id for e in ENVS if e.extra == "metaworld"]


@pytest.mark.parametrize("env_id", META_WORLD_IDS)
def test_without_the_extra_a_meta_world_env_is_one_line_naming_the_install(env_id, monkeypatch):
    monkeypatch.setattr(metaworld_env.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError) as error:
        gym.make(env_id)
    message = str(error.value)
    assert ".[metaworld]" in message and "\n" not in message


def test_the_cli_reports_the_missing_extra_as_a_usage_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(metaworld_env.importlib.util, "find_spec", lambda name: None)
    run = tmp_path / "run"
    assert main(["train", "maml-trpo", "--env", "ml1", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("metarl: error:") and ".[metaworld]" in err and "\n" not in err
    assert not run.exists()


def test_list_names_the_extra_of_envs_it_cannot_make(monkeypatch, capsys):
    monkeypatch.setattr(type(ENVS[0]), "installed", property(lambda e: e.extra is None))
    assert main(["list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "metarl/ML1-v0" in line)
    assert 'needs pip install -e ".[metaworld]"' in line


# --- With the extra ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metaworld():
    return pytest.importorskip("metaworld")


def test_ml1_splits_are_meta_worlds_fifty_train_and_fifty_test_goals(metaworld):
    ml1 = metaworld.ML1("push-v3", seed=0)
    env = gym.make("metarl/ML1-v0", env_name="push-v3").unwrapped
    train, test = env.task_distribution.train, env.task_distribution.test
    assert len(train) == len(test) == 50
    for ours, theirs in ((train, ml1.train_tasks), (test, ml1.test_tasks)):
        for (name, rand_vec), task in zip(ours, theirs, strict=True):
            assert name == task.env_name == "push-v3"
            np.testing.assert_array_equal(rand_vec, pickle.loads(task.data)["rand_vec"])
    assert not {vec for _, vec in train} & {vec for _, vec in test}
    env.reset(seed=0)
    train_vecs = {vec for _, vec in train}
    assert all(tuple(t["rand_vec"]) in train_vecs for t in env.sample_tasks(20))
    assert not any(tuple(t["rand_vec"]) in train_vecs for t in env.sample_test_tasks(20))


def test_ml10_trains_on_its_ten_classes_and_tests_on_the_other_five(metaworld):
    ml10 = metaworld.ML10(seed=0)
    env = gym.make("metarl/ML10-v0").unwrapped
    env.reset(seed=1)
    assert {t["env_name"] for t in env.sample_tasks(200)} == set(ml10.train_classes)
    assert {t["env_name"] for t in env.sample_test_tasks(200)} == set(ml10.test_classes)
    assert len(env.task_distribution.train) == 500 and len(env.task_distribution.test) == 250


def test_ml45_trains_on_its_45_classes_and_tests_on_the_other_five(metaworld):
    """One build of ML45 (Meta-World makes its goals in ~90 s), checked against its own class
    lists; the generic env suites leave ML45 out for that time."""
    env = gym.make("metarl/ML45-v0").unwrapped
    env.reset(seed=2)
    train = {name for name, _ in env.task_distribution.train}
    test = {name for name, _ in env.task_distribution.test}
    assert train == set(metaworld.env_dict.ML45_V3["train"])
    assert test == set(metaworld.env_dict.ML45_V3["test"])
    assert len(train) == 45 and len(test) == 5 and len(env.task_distribution.train) == 45 * 50
    task = env.sample_test_tasks(1)[0]
    obs, _ = env.reset(options={"task": task})
    assert obs.shape == (39,) and env.step(np.zeros(4))[4]["task"] == task


@pytest.mark.parametrize("env_name", ["reach-v3", "push-v3"])
def test_an_episode_is_meta_worlds_own_step_for_step(metaworld, env_name):
    """The same task in Meta-World's env, set with Meta-World's own Task object: the same
    observations, rewards and success flags for the same actions."""
    ml1 = metaworld.ML1(env_name, seed=0)
    theirs = ml1.train_classes[env_name]()
    theirs.set_task(ml1.train_tasks[7])
    ours = gym.make("metarl/ML1-v0", env_name=env_name)
    task = ours.unwrapped.task_distribution.train[7]
    obs_a, info = ours.reset(seed=0, options={"task": {"env_name": task[0], "rand_vec": task[1]}})
    obs_b, _ = theirs.reset()
    np.testing.assert_array_equal(obs_a, obs_b)
    assert info["task"]["env_name"] == env_name
    actions = np.random.default_rng(0).uniform(-1, 1, size=(60, 4))
    for action in actions:
        obs_a, reward_a, _, _, info_a = ours.step(action)
        obs_b, reward_b, _, _, info_b = theirs.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b and info_a["success"] == info_b["success"]


def test_meta_worlds_scripted_policy_succeeds_where_random_actions_do_not(metaworld):
    """Meta-World's own expert policy for reach-v3, shown the goal the observation hides,
    reaches it: `info["success"]` turns 1 within the episode; zero actions never do."""
    from metaworld.policies import SawyerReachV3Policy

    env = gym.make("metarl/ML1-v0")
    env.reset(seed=0)
    task = env.unwrapped.sample_test_tasks(1)[0]
    expert = SawyerReachV3Policy()

    def shown_the_goal(obs):
        return expert.get_action(np.concatenate([obs[:-3], task["rand_vec"][3:]]))

    for act, should_succeed in ((shown_the_goal, True), (lambda obs: np.zeros(4), False)):
        obs, _ = env.reset(options={"task": task})
        succeeded = False
        for _ in range(200):
            obs, _, _, _, info = env.step(np.clip(act(obs), -1, 1))
            succeeded |= bool(info["success"])
        assert succeeded == should_succeed


def test_only_the_benchmarks_own_goals_are_tasks(metaworld):
    env = gym.make("metarl/ML1-v0").unwrapped
    env.reset(seed=0)
    task = env.sample_tasks(1)[0]
    for bad, field in [
        ({**task, "rand_vec": [0.0, 0.6, 0.02, 0.0, 0.6, 0.2]}, "rand_vec"),  # would hang reset
        ({**task, "rand_vec": task["rand_vec"][:-1]}, "rand_vec"),
        ({**task, "env_name": "push-v3"}, "env_name"),
    ]:
        with pytest.raises(ValueError, match=field):
            env.set_task(bad)


@pytest.mark.parametrize("agent", ["maml-trpo", "pearl", "rl2-trpo"])
def test_agents_report_success_rates_in_their_rows_and_evaluation(metaworld, agent, tmp_path):
    import csv
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from tiny_runs import tiny

    run = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny(agent).items()]
    args = ["train", agent, "--env", "ml1", "--out", str(run), "--iterations", "1", *sets]
    assert main(args) == 0
    with open(run / "progress.csv", newline="") as file:
        (row,) = csv.DictReader(file)
    columns = {
        "maml-trpo": ["pre_success", "post_success"],
        "pearl": ["prior_success", "posterior_success", "test_success"],
        "rl2-trpo": ["first_episode_success", "last_episode_success"],
    }[agent]
    values = [float(row[column]) for column in columns]  # NaN: not measured in a tiny run
    assert all(0.0 <= v <= 1.0 for v in values if v == v) and any(v == v for v in values)
    out = run / "eval"  # where evaluate writes a run's result
    assert main(["evaluate", str(run), "--tasks", "2"]) == 0
    result = json.loads((out / "adaptation.json").read_text())
    assert len(result["success_rate"]) == len(result["mean_return"])
    assert "success_rate" in (out / "adaptation.csv").read_text()
