"""`metarl sweep`: the grid, the run folders, Ray tasks that train them, and a sweep that
continues as it began."""

import json

import pytest
import yaml
from tiny_runs import tiny

from metarl.cli import main
from metarl.training.logger import read_progress
from metarl.training.sweep import combinations, folder_name, parse_grid, parse_seeds
from metarl.training.trainer import new_run, train


def test_seeds_ranges_and_lists():
    assert parse_seeds("0..4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3") == [3]
    assert parse_seeds(" 0, 3,7") == [0, 3, 7]
    for bad, message in (("4..1", "ends before"), ("a", "FIRST..LAST"), ("1,1", "repeats")):
        with pytest.raises(ValueError, match=message):
            parse_seeds(bad)


def test_grid_values_are_yaml_and_brackets_keep_their_commas():
    grid = parse_grid(["hidden_sizes=[32,32],[64]", "discount=0.9,0.99"])
    assert grid == {"hidden_sizes": [[32, 32], [64]], "discount": [0.9, 0.99]}
    points = combinations([0, 1], grid)
    assert len(points) == 8 and points[0] == {"hidden_sizes": [32, 32], "discount": 0.9, "seed": 0}
    assert points[1]["seed"] == 1  # the seed varies fastest
    assert folder_name(points[0]) == "hidden_sizes=32x32,discount=0.9,seed=0"
    for bad, message in (("seed=1,2", "--seeds"), ("novalue", "key=v1,v2")):
        with pytest.raises(ValueError, match=message):
            parse_grid([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["discount=0.9", "discount=0.8"])


def rows(folder):
    return [
        {k: v for k, v in row.items() if k != "wall_time"}
        for row in read_progress(folder / "progress.csv")
    ]


def test_sweep_trains_every_combination_as_ray_tasks_and_continues_an_interrupted_one(
    ray_local, tmp_path, capsys
):
    values = tiny("maml-trpo", iterations=2)
    spec = tmp_path / "nav.yaml"
    spec.write_text(yaml.safe_dump({"agent": "maml-trpo", "env": "navigation2d", "config": values}))
    out = tmp_path / "sweep"
    # One run was interrupted after its first iteration: the sweep continues it.
    interrupted = out / "discount=0.9,seed=1"
    new_run("maml-trpo", "navigation2d", {**values, "discount": 0.9, "seed": 1}, interrupted)
    train(interrupted, 1)
    args = ["sweep", str(spec), "--seeds", "0..1", "--set", "discount=0.9,0.99", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert [run["status"] for run in summary["runs"]] == ["finished"] * 4
    assert [run["values"] for run in summary["runs"]][1] == {"discount": 0.9, "seed": 1}
    straight = tmp_path / "straight"
    new_run("maml-trpo", "navigation2d", {**values, "discount": 0.9, "seed": 1}, straight)
    train(straight)
    assert rows(interrupted) == rows(straight)
    assert len({json.dumps(rows(out / f"discount=0.99,seed={s}")) for s in (0, 1)}) == 2
    assert "4 finished, 0 failed" in capsys.readouterr().out
    # Run again, it has nothing left to do; with another setting in the same folder, it refuses.
    assert main(args) == 0
    spec.write_text(
        yaml.safe_dump(
            {"agent": "maml-trpo", "env": "navigation2d", "config": {**values, "horizon": 5}}
        )
    )
    assert main(args) == 2
    assert "holds a run of another setting: horizon 10 (wanted: 5)" in capsys.readouterr().err


def test_a_bad_value_fails_before_anything_trains(tmp_path, capsys):
    pytest.importorskip("ray")
    spec = tmp_path / "nav.yaml"
    spec.write_text(yaml.safe_dump({"agent": "maml-trpo", "env": "navigation2d"}))
    assert main(["sweep", str(spec), "--set", "discount=2", "--out", str(tmp_path / "s")]) == 2
    assert "config key 'discount' must lie in (0, 1], got 2" in capsys.readouterr().err
    assert not list((tmp_path / "s").glob("*/progress.csv"))


def test_sweep_file_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"agent": "maml-trpo", "envs": "navigation2d"}))
    assert main(["sweep", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metarl: error: sweep file") and err.count("\n") == 1
