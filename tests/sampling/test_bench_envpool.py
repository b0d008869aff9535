"""`metarl bench sampler`'s optional envpool method: the robots it maps to, its record where
envpool is installed, and the one-line note that stands in for it where it is not; the toy-env
measurement of `benchmarks/sampler.py --toy`."""

import json

import pytest

from metarl.cli import bench

TINY = bench.Workload(
    "metarl/HalfCheetahVel-v0", num_tasks=2, episodes_per_task=2, horizon=10, async_envs=2
)


@pytest.fixture
def stub_other_methods(monkeypatch):
    """Every method but envpool's returns a canned timing at once."""
    canned = bench.Timing(1000.0, 40)
    monkeypatch.setattr(bench, "_metarl_in_fresh_process", lambda workload: (canned, 100.0))
    monkeypatch.setattr(bench, "raw_mujoco_steps_per_s", lambda workload: canned)
    monkeypatch.setattr(bench, "gymnasium_steps_per_s", lambda workload, asynchronous: canned)
    monkeypatch.setattr(bench, "quick_workload", lambda env: TINY)


def test_metarl_mujoco_envs_map_to_envpools_robots():
    assert bench.envpool_id("metarl/HalfCheetahVel-v0") == "HalfCheetah-v5"
    assert bench.envpool_id("metarl/HalfCheetahDir-v0") == "HalfCheetah-v5"
    assert bench.envpool_id("metarl/AntDir-v0") == "Ant-v5"
    assert bench.envpool_id("metarl/AntGoal-v0") == "Ant-v5"


def test_without_envpool_the_report_says_how_to_install_it_in_one_line(
    stub_other_methods, monkeypatch
):
    monkeypatch.setattr(bench, "envpool_installed", lambda: False)
    logged = []
    text = bench.sampler_report(["halfcheetah-vel"], quick=True, log=logged.append)
    assert text.endswith("\n\n" + bench.ENVPOOL_MISSING)
    assert "\n" not in bench.ENVPOOL_MISSING and "pip install envpool" in bench.ENVPOOL_MISSING
    assert bench.ENVPOOL_MISSING in logged
    records = json.loads(bench.sampler_report(["halfcheetah-vel"], quick=True, as_json=True))
    assert [r["method"] for r in records] == [
        "metarl",
        "mujoco-raw-1thread",
        "gymnasium-sync",
        "gymnasium-async",
    ]


def test_with_envpool_its_record_follows_the_others(stub_other_methods):
    pytest.importorskip("envpool")
    records = json.loads(bench.sampler_report(["halfcheetah-vel"], quick=True, as_json=True))
    assert [r["method"] for r in records][-1] == "envpool"
    envpool_record = records[-1]
    assert envpool_record["env_steps_per_s"] > 0 and envpool_record["num_envs"] == 4
    assert envpool_record["env_steps"] >= TINY.env_steps
    text = bench.sampler_report(["halfcheetah-vel"], quick=True)
    assert bench.ENVPOOL_MISSING not in text and "envpool" in text


def test_the_toy_measurement_times_every_batch():
    assert bench.toy_workload().num_envs == 400 and bench.toy_workload().env_steps == 40_000
    tiny = bench.Workload("metarl/Navigation2D-v0", num_tasks=2, episodes_per_task=3, horizon=7)
    timings = bench.toy_steps_per_s(tiny, repeats=2)
    assert [t.env_steps for t in timings] == [42, 42]
    assert all(t.env_steps_per_s > 0 for t in timings)
