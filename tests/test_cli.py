"""The `metarl` command line: version, listing, the demo, and errors for bad input."""

import json
import subprocess
import sys

import metarl
from metarl.agents.registry import REGISTRY
from metarl.cli import main
from metarl.envs import ENVS


def test_version_and_help_via_python_m():
    version = subprocess.run(
        [sys.executable, "-m", "metarl", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"metarl {metarl.__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "metarl", "--help"], capture_output=True, text=True, check=True
    )
    assert "list" in help_text.stdout and "demo" in help_text.stdout


def test_list_shows_every_env_with_its_short_name_and_every_agent(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for entry in ENVS:
        line = next(line for line in lines if entry.id in line)
        assert entry.short_name in line and entry.description in line
    assert "Agents:" in out
    for name, spec in REGISTRY.items():
        assert any(line.split()[:1] == [name] and spec.description in line for line in lines)


def test_demo_reports_random_returns_per_task_as_json(capsys):
    args = ["demo", "--env", "navigation2d", "--env", "bandit", "--tasks", "2", "--episodes", "2"]
    assert main([*args, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["env"] for r in records] == ["metarl/Navigation2D-v0"] * 2 + ["metarl/Bandit-v0"] * 2
    navigation = records[:2]
    assert navigation[0]["task"] != navigation[1]["task"]
    assert all(r["env_steps"] == 2 * 100 and r["mean_return"] < 0 for r in navigation)
    assert all(r["env_steps_per_s"] > 0 for r in records)


def test_demo_table_has_one_row_per_task(capsys):
    assert (
        main(["demo", "--env", "metarl/HalfCheetahVel-v0", "--tasks", "2", "--episodes", "1"]) == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if "HalfCheetahVel" in line]
    assert len(rows) == 2 and all("velocity" in row for row in rows)


def test_unknown_env_is_an_error_listing_the_valid_ones(capsys):
    assert main(["demo", "--env", "cheetah"]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown env 'cheetah'" in err and "halfcheetah-vel" in err and "metarl/AntGoal-v0" in err
    )


def test_unknown_command_exits_with_usage():
    result = subprocess.run(
        [sys.executable, "-m", "metarl", "fly"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr
