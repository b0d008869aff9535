"""`metarl compare`: every run and baseline on one saved task list, within one budget of env
steps per task; the table, CSV, JSON and plot; a reused task list reproduces the comparison;
bad input is one line."""

import csv
import json

import pytest

from metarl.cli import main
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks

HORIZON = 10
TINY = {
    "reptile": dict(meta_batch_size=2, episodes_per_task=2, hidden_sizes=[8]),
    "rl2-trpo": dict(meta_batch_size=2, episodes_per_trial=2, hidden_size=8),
    "trpo": dict(episodes_per_task=2, hidden_sizes=[8]),
    "multitask": dict(meta_batch_size=2, episodes_per_task=2, hidden_sizes=[8]),
    "oracle": dict(meta_batch_size=2, episodes_per_task=2, hidden_sizes=[8]),
}


def train(name, out, env="navigation2d", **extra):
    values = {**TINY[name], "horizon": HORIZON, "num_workers": 0, **extra}
    sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]
    assert main(["train", name, "--env", env, "--iterations", "2", "--out", str(out), *sets]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {name: train(name, root / name) for name in TINY}


def test_runs_and_the_scratch_baseline_share_tasks_and_budget(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(runs["reptile"]), str(runs["rl2-trpo"]), "--baselines", "scratch"]
    assert main([*args, "--tasks", "3", "--seed", "2", "--budget", "40", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "comparison.json").read_text())
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks["seed"] == HELD_OUT_SEED_OFFSET + 2
    assert tasks["tasks"] == held_out_tasks("navigation2d", {}, HELD_OUT_SEED_OFFSET + 2, 3)
    curves = {c["label"]: c for c in result["curves"]}
    assert list(curves) == ["reptile", "rl2-trpo", "scratch (TRPO)"]
    # 40 env steps: 2 inner steps of 2 episodes × 10 steps; 4 more episodes of a trial; two
    # TRPO updates on batches of the gradient run's 2 episodes.
    assert curves["reptile"]["env_steps"] == [0, 20, 40]
    assert curves["rl2-trpo"]["env_steps"] == [0, 10, 20, 30, 40]
    assert curves["scratch (TRPO)"]["env_steps"] == [0, 20, 40]
    for curve in curves.values():
        assert len(curve["mean_return"]) == len(curve["ci95"]) == len(curve["env_steps"])
        assert all(-100 < r < 0 for r in curve["mean_return"])  # Navigation2D costs distance
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert len(rows) == 3 + 5 + 3
    table = (out / "comparison.md").read_text()
    assert table in printed and table.count("\n| ") == 4  # head and three curves
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"

    again = tmp_path / "again"
    reuse = ["--tasks-file", str(out / "tasks.json"), "--budget", "40", "--out", str(again)]
    assert main([*args, *reuse]) == 0
    assert json.loads((again / "comparison.json").read_text()) == result


def test_the_default_budget_is_three_steps_of_the_costliest_run(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["reptile"]), "--tasks", "2", "--out", str(out)]) == 0
    result = json.loads((out / "comparison.json").read_text())
    assert result["budget"] == 3 * 2 * HORIZON
    assert result["curves"][0]["env_steps"] == [0, 20, 40, 60]


def test_the_pretrained_and_oracle_baselines_are_their_run_folders(runs, tmp_path):
    out = tmp_path / "cmp"
    folders = [str(runs[name]) for name in ("reptile", "multitask", "oracle")]
    assert main(["compare", *folders, "--tasks", "3", "--budget", "40", "--out", str(out)]) == 0
    curves = json.loads((out / "comparison.json").read_text())["curves"]
    assert [c["label"] for c in curves] == [
        "reptile",
        "pretrained (multitask)",
        "oracle (observes the task)",
    ]
    pretrained, oracle = curves[1], curves[2]
    assert pretrained["env_steps"] == [0, 20, 40]  # fine-tuned by 2 inner steps, as reptile
    assert oracle["env_steps"] == [0, 40] and oracle["mean_return"][0] == oracle["mean_return"][1]


def test_bad_comparisons_are_one_line_errors(runs, tmp_path, capsys):
    other = train("reptile", tmp_path / "bandit", env="bandit")
    untrained = train("reptile", tmp_path / "untrained")
    (untrained / "checkpoints" / "latest.pt").unlink()
    (untrained / "checkpoints" / "policy.pt").unlink(missing_ok=True)
    cases = [
        ([str(runs["reptile"]), str(other)], "runs of one env"),
        ([str(runs["reptile"]), "--baselines", "oracle"], "unknown baseline 'oracle'"),
        ([str(runs["trpo"])], "does not adapt to tasks"),
        ([str(runs["reptile"]), "--tasks-file", str(tmp_path / "none.json")], "does not exist"),
        ([str(tmp_path / "nowhere")], "is not a folder"),
        ([str(runs["reptile"]), str(untrained)], "has no checkpoint"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["compare", *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("metarl: error: ") and message in err and err.count("\n") == 1, err
    bandit_tasks = tmp_path / "bandit_cmp"
    assert main(["compare", str(other), "--tasks", "2", "--out", str(bandit_tasks)]) == 0
    args = [str(runs["reptile"]), "--tasks-file", str(bandit_tasks / "tasks.json")]
    assert main(["compare", *args, "--out", str(tmp_path / "out")]) == 2
    assert "the task list is of metarl/Bandit-v0" in capsys.readouterr().err


def test_stable_baselines3_scratch_baselines_train_within_the_budget(runs, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", str(runs["reptile"]), "--baselines", "sb3-ppo,sb3-sac", "--tasks", "1"]
    assert main([*args, "--budget", "20", "--out", str(out)]) == 0
    curves = json.loads((out / "comparison.json").read_text())["curves"]
    assert [c["label"] for c in curves[1:]] == ["scratch (SB3 PPO)", "scratch (SB3 SAC)"]
    for curve in curves[1:]:
        assert curve["env_steps"] == [0, 20]  # one batch of the gradient run's 2 × 10 steps
        assert all(-100 < r < 0 for r in curve["mean_return"])
