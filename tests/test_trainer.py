"""Run folders: config parsing, checkpoints, resume reproducing the same rows, evaluate, plot,
and the train/evaluate/plot commands end to end."""

import json

import pytest

from metarl.agents.maml import MAMLConfig
from metarl.agents.registry import REGISTRY
from metarl.checkpoint import load_checkpoint, save_checkpoint
from metarl.cli import main
from metarl.config import build_config, parse_sets
from metarl.envs import ENVS
from metarl.evaluate import evaluate
from metarl.logger import read_progress
from metarl.plot import plot
from metarl.trainer import new_run, train

TINY = {
    "meta_batch_size": 2,
    "episodes_per_task": 2,
    "horizon": 10,
    "hidden_sizes": [8],
    "num_workers": 0,
}


def test_config_values_are_parsed_checked_and_unknown_keys_named():
    config = build_config(MAMLConfig, parse_sets(["hidden_sizes=[32, 32]", "first_order=true"]))
    assert config.hidden_sizes == (32, 32) and config.first_order is True
    with pytest.raises(ValueError, match=r"unknown config key.*colour.*inner_lr"):
        build_config(MAMLConfig, {"colour": 1})
    with pytest.raises(ValueError, match="inner_lr"):
        build_config(MAMLConfig, {"inner_lr": "fast"})
    with pytest.raises(ValueError, match="meta_batch_size"):
        build_config(MAMLConfig, {"meta_batch_size": 0})
    with pytest.raises(ValueError, match="key=value"):
        parse_sets(["inner_lr"])


def test_checkpoints_round_trip_and_bad_files_are_named(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"iteration": 3})
    assert load_checkpoint(path)["iteration"] == 3
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def rows_without_time(run_dir):
    return [
        {k: v for k, v in row.items() if k != "wall_time"}
        for row in read_progress(run_dir / "progress.csv")
    ]


@pytest.mark.parametrize("agent", ["maml-trpo", "promp"])
def test_resume_after_an_interrupt_gives_the_rows_of_an_uninterrupted_run(
    tmp_path, agent, monkeypatch
):
    straight = tmp_path / "straight"
    new_run(agent, "navigation2d", {**TINY, "iterations": 4}, straight)
    train(straight)

    interrupted = tmp_path / "interrupted"
    new_run(agent, "navigation2d", {**TINY, "iterations": 4}, interrupted)
    spec = REGISTRY[agent].agent_class
    original, calls = spec.train_step, []

    def stop_at_the_third(self):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(spec, "train_step", stop_at_the_third)
    train(interrupted)
    assert len(read_progress(interrupted / "progress.csv")) == 2
    monkeypatch.setattr(spec, "train_step", original)
    train(interrupted)
    assert rows_without_time(interrupted) == rows_without_time(straight)
    assert len(rows_without_time(straight)) == 4


def test_train_evaluate_and_plot_commands_write_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items()]
    assert (
        main(
            [
                "train",
                "fo-maml",
                "--env",
                "navigation2d",
                "--iterations",
                "2",
                "--out",
                str(run),
                *sets,
            ]
        )
        == 0
    )
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "progress.csv",
        "tensorboard",
        "checkpoints",
    }
    capsys.readouterr()
    args = ["evaluate", str(run), "--tasks", "3", "--adapt-steps", "2", "--episodes", "3"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["adapt_steps"] == [0, 1, 2] and len(result["ci95"]) == 3
    assert result["episodes_per_task"] == 3 and result["task_seed"] == 10_000
    assert {p.name for p in (run / "eval").iterdir()} == {
        "adaptation.json",
        "adaptation.csv",
        "adaptation.png",
    }
    assert main(["plot", str(run), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert main(["train", "fo-maml", "--env", "navigation2d", "--out", str(run)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--iterations", "3"]) == 0
    assert len(read_progress(run / "progress.csv")) == 3


def test_plot_and_evaluate_refuse_folders_that_are_not_runs(tmp_path):
    with pytest.raises(ValueError, match="not a metarl run folder"):
        evaluate(tmp_path)
    with pytest.raises(ValueError, match=r"no progress\.csv"):
        plot([tmp_path], tmp_path / "x.png")


@pytest.mark.parametrize("agent", sorted(REGISTRY))
@pytest.mark.parametrize("env", [entry.short_name for entry in ENVS])
def test_one_iteration_of_every_agent_runs_on_every_env(tmp_path, agent, env):
    values = {**TINY, "iterations": 1, "horizon": 5}
    if agent in ("trpo", "ppo"):
        values = {"iterations": 1, "horizon": 5, "episodes_per_task": 2, "hidden_sizes": [8]}
    new_run(agent, env, values, tmp_path)
    train(tmp_path)
    (row,) = read_progress(tmp_path / "progress.csv")
    assert row["env_steps"] > 0
