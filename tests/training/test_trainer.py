"""Run folders: config parsing, checkpoints, resume reproducing the same rows, evaluate, plot,
and the train/evaluate/plot commands end to end."""

import json
import random

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from tiny_runs import tiny

from metarl.agents.maml import MAMLConfig
from metarl.agents.registry import REGISTRY
from metarl.cli import main
from metarl.cli.plot import plot
from metarl.envs import ENVS, resolve_env_id
from metarl.training.checkpoint import load_checkpoint, save_checkpoint
from metarl.training.config import build_config, parse_sets
from metarl.training.evaluation import evaluate
from metarl.training.logger import Logger, read_progress
from metarl.training.trainer import new_run, train


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
    save_checkpoint(path, {"iteration": 3, "env_steps": 30, "agent": {}})
    assert load_checkpoint(path)["iteration"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match=r"c\.pt is corrupt, truncated") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a metarl checkpoint"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    save_checkpoint(path, {"iteration": 3, "agent": {}})
    with pytest.raises(ValueError, match="lacks env_steps"):
        load_checkpoint(path)


def rows_without_time(run_dir):
    """The rows as text (so that NaN equals NaN), less the wall time."""
    return [
        {k: repr(v) for k, v in row.items() if k != "wall_time"}
        for row in read_progress(run_dir / "progress.csv")
    ]


def test_logger_writes_fixed_columns_aligned_lines_and_exactly_a_checkpoints_rows(tmp_path, capsys):
    logger = Logger(tmp_path)
    logger.log({"iteration": 1, "env_steps": 10, "loss": -0.5})
    logger.log({"iteration": 2, "env_steps": 20, "loss": 12.25})
    with pytest.raises(ValueError, match="differ from the columns"):
        logger.log({"iteration": 3, "env_steps": 30, "loss": 1.0, "kl": 0.01})
    logger.close()
    first, second = capsys.readouterr().out.splitlines()
    assert first.index("loss") == second.index("loss") and len(first) == len(second)
    assert (tmp_path / "progress.csv").read_text() == (
        "iteration,env_steps,loss\n1,10,-0.5\n2,20,12.25\n"
    )
    # A resumed run whose checkpoint is at iteration 1: the file holds exactly its rows.
    logger = Logger(tmp_path, [{"iteration": 1, "env_steps": 10, "loss": -0.5}])
    logger.log({"iteration": 2, "env_steps": 25, "loss": 0.0})
    logger.close()
    assert read_progress(tmp_path / "progress.csv") == [
        {"iteration": 1, "env_steps": 10, "loss": -0.5},
        {"iteration": 2, "env_steps": 25, "loss": 0.0},
    ]
    assert [type(v) for v in read_progress(tmp_path / "progress.csv")[0].values()] == [
        int,
        int,
        float,
    ]
    assert len(list((tmp_path / "tensorboard").iterdir())) == 1  # the older events replaced


@pytest.mark.parametrize("agent", ["maml-trpo", "promp", "ppo", "rl2-trpo", "rl2-ppo", "pearl"])
def test_resume_after_an_interrupt_gives_the_rows_of_an_uninterrupted_run(
    tmp_path, agent, monkeypatch
):
    agent_class = REGISTRY[agent].agent_class
    original, calls = agent_class.train_step, []

    def step_that_also_draws_global_rngs(self):  # as an agent using torch/numpy/random might
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        noise = torch.rand(()).item() + np.random.rand() + random.random()  # noqa: NPY002
        return {**original(self), "noise": noise}

    monkeypatch.setattr(agent_class, "train_step", step_that_also_draws_global_rngs)
    interrupt_at = None
    straight, stopped, extended = (tmp_path / name for name in ("straight", "stopped", "extended"))
    new_run(agent, "navigation2d", tiny(agent, iterations=4), straight)
    train(straight)

    new_run(agent, "navigation2d", tiny(agent, iterations=4), stopped)
    calls.clear()
    interrupt_at = 3  # Ctrl-C inside the third iteration
    with pytest.raises(KeyboardInterrupt):
        train(stopped)
    assert len(read_progress(stopped / "progress.csv")) == 2
    assert load_checkpoint(stopped / "checkpoints" / "latest.pt")["iteration"] == 2
    interrupt_at = None
    train(stopped)

    new_run(agent, "navigation2d", tiny(agent, iterations=2), extended)
    train(extended)
    train(extended, iterations=4)
    assert yaml.safe_load((extended / "config.yaml").read_text())["config"]["iterations"] == 4

    assert len(rows_without_time(straight)) == 4
    assert rows_without_time(stopped) == rows_without_time(straight)
    assert rows_without_time(extended) == rows_without_time(straight)


def test_train_evaluate_and_plot_commands_write_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny("fo-maml").items()]
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
    assert result["adaptation_env_steps"] == [0, 30, 60]  # 3 episodes of 10 steps per step
    assert {p.name for p in (run / "eval").iterdir()} == {
        "adaptation.json",
        "adaptation.csv",
        "adaptation.png",
    }
    header, *rows = (run / "eval" / "adaptation.csv").read_text().splitlines()
    assert header == "adapt_steps,adaptation_env_steps,mean_return,ci95" and len(rows) == 3
    assert main(["plot", str(run), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert main(["plot", "--adaptation", str(run), "-o", str(tmp_path / "adapt.png")]) == 0
    assert (tmp_path / "adapt.png").stat().st_size > 1000
    assert main(["train", "fo-maml", "--env", "navigation2d", "--out", str(run)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--iterations", "3"]) == 0
    assert len(read_progress(run / "progress.csv")) == 3


def test_evaluate_reports_return_per_episode_of_a_trial_for_rl2(tmp_path, capsys):
    run = tmp_path / "run"
    values = tiny("rl2-trpo", iterations=1, meta_batch_size=3, horizon=None)
    new_run("rl2-trpo", "bandit", values, run, env_kwargs={"k": 3})
    train(run)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--tasks", "7", "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "episode 3 of the trial" in out and "total reward per trial" in out
    result = json.loads((run / "eval" / "adaptation.json").read_text())
    assert result["axis"] == "episode" and result["episode"] == [0, 1, 2, 3]
    assert result["adaptation_env_steps"] == [0, 1, 2, 3]  # one pull per bandit episode
    assert result["env_kwargs"] == {"k": 3} and result["tasks"] == 7
    # Each episode is one pull: its mean reward is in [0, 1], and the trial's total is their sum.
    assert all(0 <= r <= 1 for r in result["mean_return"])
    assert result["mean_total_reward"] == pytest.approx(sum(result["mean_return"]))


def test_train_layers_defaults_agent_overrides_yaml_sets_and_flags(tmp_path):
    config_file = tmp_path / "f.yaml"
    values = {**tiny("e-maml"), "inner_lr": 0.2, "seed": 3, "iterations": 5}
    config_file.write_text(yaml.safe_dump(values))
    run = tmp_path / "run"
    args = ["train", "e-maml", "--env", "metarl/Navigation2D-v0", "--config", str(config_file)]
    args += ["--set", "inner_lr=0.05", "--seed", "7", "--iterations", "1", "--out", str(run)]
    assert main([*args, "--env-kwargs", '{"goal_range": [-0.4, 0.4]}']) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["agent"] == "e-maml" and recorded["env"] == "metarl/Navigation2D-v0"
    assert recorded["env_kwargs"] == {"goal_range": [-0.4, 0.4]}
    config = recorded["config"]
    assert config["exploration_weight"] == 0.1 and config["hidden_sizes"] == [8]
    assert (config["inner_lr"], config["seed"], config["iterations"]) == (0.05, 7, 1)
    assert len(read_progress(run / "progress.csv")) == 1


def test_command_errors_are_one_line_with_status_2_and_ctrl_c_is_130(tmp_path, capsys, monkeypatch):
    def error_of(args):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    run = tmp_path / "run"
    train_ppo = ["train", "ppo", "--env", "navigation2d", "--out", str(run)]
    assert "maml-trpo" in error_of(["train", "mamal", "--env", "navigation2d"])
    assert "'colour'" in error_of([*train_ppo, "--set", "colour=1"])
    assert "bad env kwargs" in error_of([*train_ppo, "--env-kwargs", '{"goal": 1}'])
    assert not run.exists()
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny("ppo").items()]
    assert main([*train_ppo, "--iterations", "2", *sets]) == 0
    assert "does not adapt" in error_of(["evaluate", str(run)])
    assert "already run 2" in error_of(["train", "--resume", str(run), "--iterations", "1"])

    def ctrl_c(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(REGISTRY["ppo"].agent_class, "train_step", ctrl_c)
    assert main(["train", "--resume", str(run), "--iterations", "3"]) == 130
    assert f"--resume {run}" in capsys.readouterr().out
    (run / "checkpoints" / "latest.pt").write_bytes(b"\x00" * 10)
    error = error_of(["train", "--resume", str(run)])
    assert "latest.pt is corrupt" in error
    assert "is not a folder" in error_of(["evaluate", str(tmp_path / "nowhere")])
    assert "not a metarl run folder" in error_of(["evaluate", str(tmp_path)])


def test_plot_and_evaluate_refuse_folders_that_are_not_runs(tmp_path):
    with pytest.raises(ValueError, match="not a metarl run folder"):
        evaluate(tmp_path)
    with pytest.raises(ValueError, match=r"no progress\.csv"):
        plot([tmp_path], tmp_path / "x.png")


@pytest.mark.parametrize("agent", sorted(REGISTRY))
@pytest.mark.parametrize("env", [entry.short_name for entry in ENVS if entry.installed])
def test_one_iteration_of_every_agent_runs_on_every_env(tmp_path, agent, env):
    new_run(agent, env, tiny(agent, iterations=1, horizon=5), tmp_path)
    discrete = isinstance(gym.make(resolve_env_id(env)).action_space, gym.spaces.Discrete)
    if agent == "pearl" and discrete:  # SAC's squashed Gaussian actor
        with pytest.raises(ValueError, match="continuous"):
            train(tmp_path)
        return
    train(tmp_path)
    (row,) = read_progress(tmp_path / "progress.csv")
    assert row["env_steps"] > 0
