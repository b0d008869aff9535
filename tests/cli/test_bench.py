"""`metarl bench sampler`: the record format of every method (envpool's where it is installed),
on a tiny workload."""

import json

import pytest

from metarl.cli import bench, main


def test_bench_sampler_json_has_every_method_with_positive_rates(capsys, monkeypatch):
    tiny = bench.Workload(
        "metarl/HalfCheetahVel-v0", num_tasks=2, episodes_per_task=2, horizon=10, async_envs=2
    )
    monkeypatch.setattr(bench, "quick_workload", lambda env: tiny)
    assert main(["bench", "sampler", "--env", "halfcheetah-vel", "--quick", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in records] == [
        "metarl",
        "mujoco-raw-1thread",
        "gymnasium-sync",
        "gymnasium-async",
    ] + (["envpool"] if bench.envpool_installed() else [])
    for record in records:
        assert record["env"] == "metarl/HalfCheetahVel-v0"
        assert record["env_steps_per_s"] > 0 and record["env_steps"] >= 2 * 2 * 10
    envpool = [4] if bench.envpool_installed() else []
    assert [r["num_envs"] for r in records] == [4, 1, 4, 2, *envpool]
    assert records[0]["peak_rss_mib"] > 0


def test_table_shows_speedups_over_each_method():
    workload = bench.Workload("metarl/AntDir-v0")
    records = [
        bench.Record(workload.env_id, method, rate, env_steps=100, num_envs=1)
        for method, rate in [("metarl", 300.0), ("mujoco-raw-1thread", 200.0)]
    ]
    table = bench.format_table(workload, records)
    assert "40 tasks × 20 episodes × 200 steps" in table
    assert "1.50×" in table and "1.00×" in table


def test_bench_sampler_rejects_a_non_mujoco_env(capsys):
    assert main(["bench", "sampler", "--env", "bandit"]) == 2
    assert "needs a MuJoCo env" in capsys.readouterr().err


@pytest.mark.parametrize("quick", [False, True])
def test_workloads_are_maml_batches(quick):
    workload = (bench.quick_workload if quick else bench.full_workload)("halfcheetah-vel")
    assert workload.env_id == "metarl/HalfCheetahVel-v0" and workload.hidden_sizes == (64, 64)
    assert workload.env_steps == (4_000 if quick else 160_000)
