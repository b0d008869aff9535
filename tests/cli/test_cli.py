"""The `metarl` command line: version, listing, the demo, and errors for bad input."""

import json
import subprocess
import sys

import pytest

import metarl
from metarl.agents import REFERENCE_AGENTS
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
    assert "Reference agents" in out
    for name, description in REFERENCE_AGENTS.items():
        assert any(line.split()[:1] == [name] and description in line for line in lines)


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


def test_evaluate_runs_a_reference_agent_like_a_trained_one(capsys, tmp_path):
    args = ["evaluate", "--agent", "ucb1", "--env", "metarl/Bandit-v0", "--env-kwargs"]
    args += ['{"k": 3}', "--episodes", "20", "--tasks", "50", "--seed", "0"]
    assert main([*args, "--json", "--set", "c=0.5", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["agent"] == "ucb1" and result["config"] == {"c": 0.5}
    assert result["episode"] == list(range(20)) and result["tasks"] == 50
    assert result["mean_total_reward"] == sum(result["mean_return"])
    assert 0 < result["total_reward_ci95"] < 2
    assert (tmp_path / "adaptation.png").stat().st_size > 1000
    # The same command gives the same numbers, and the same tasks whatever the agent.
    assert main([*args, "--json", "--set", "c=0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_return"] == result["mean_return"]
    assert main(args) == 0
    assert "total reward per trial" in capsys.readouterr().out


def test_evaluate_argument_errors_are_one_line(capsys, tmp_path):
    cases = [
        (["--agent", "ucb2", "--env", "bandit"], "unknown reference agent 'ucb2'"),
        (["--agent", "ucb1"], "--agent needs --env"),
        (["--agent", "ucb1", "--env", "navigation2d"], "Bandit"),
        (["--agent", "psrl", "--env", "tabular-mdp", "--set", "colour=1"], "colour"),
        ([str(tmp_path), "--agent", "ucb1", "--env", "bandit"], "not both"),
        ([str(tmp_path), "--env", "bandit"], "go with --agent"),
        (["--agent", "ucb1", "--env", "bandit", "--env-kwargs", "{k: 3}"], "not valid JSON"),
    ]
    for args, message in cases:
        assert main(["evaluate", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)


def test_ctrl_c_during_start_up_prints_one_line(tmp_path):
    """SIGINT while `metarl train` imports torch and the agents or builds its agent (after the
    ~0.3 s of `import metarl` itself, which Python reports in its own way)."""
    import signal
    import time

    command = [sys.executable, "-m", "metarl", "train", "maml-trpo", "--env", "navigation2d"]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path / "run")], stderr=subprocess.PIPE, text=True
    )
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.startswith("metarl")]
    # 130, or killed by SIGINT (what a shell also reports as 130): CPython re-raises SIGINT at
    # exit when a KeyboardInterrupt passed through a PyRun_String that an import ran, even if
    # metarl caught it afterwards.
    assert process.returncode in (130, -signal.SIGINT) and "Traceback" not in err, err
    assert lines == ["metarl: interrupted"], err


def test_train_agent_help_lists_every_config_key_with_default_and_docstring(capsys):
    import dataclasses

    import pytest

    for name, spec in REGISTRY.items():
        with pytest.raises(SystemExit) as done:
            main(["train", name, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        for field in dataclasses.fields(spec.config_class):
            assert f"\n  {field.name} (" in out, (name, field.name)
    main_help = out.split("config keys of")[0]
    assert "--restart" in main_help and "--resume" in main_help
    with pytest.raises(SystemExit):
        main(["train", "fo-maml", "--help"])
    out = capsys.readouterr().out
    assert "first_order (bool, default true)" in out  # the registry's override, not the field's
    assert "FO-MAML: treat the inner gradient as a constant" in out  # the field's docstring


def test_ctrl_c_while_a_c_extension_initializes_prints_one_line(tmp_path):
    """A Ctrl-C inside a C extension's init (mujoco's, at the CI run's 2 s) reaches Python as an
    ImportError("initialization failed") caused by the KeyboardInterrupt: still one line, 130. The
    interrupt is simulated deterministically by an import hook that fails `mujoco` that way."""
    script = (
        "import sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mujoco':\n"
        "            try:\n"
        "                raise KeyboardInterrupt\n"
        "            except KeyboardInterrupt as interrupt:\n"
        "                raise ImportError('initialization failed') from interrupt\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from metarl.cli import main\n"
        "argv = ['train', 'maml-trpo', '--env', 'navigation2d', '--out', sys.argv[1]]\n"
        "raise SystemExit(main(argv))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 130 and process.stderr == "metarl: interrupted\n", process.stderr


def test_an_import_error_that_is_not_an_interrupt_still_shows_its_traceback(tmp_path):
    script = (
        "import sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mujoco':\n"
        "            raise ImportError('libGL missing')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from metarl.cli import main\n"
        "raise SystemExit(main(['list']))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 1 and "libGL missing" in process.stderr, process.stderr


def test_a_half_downgraded_mujoco_is_one_line_with_its_repair(monkeypatch, capsys):
    """The import error of mujoco 3.3.0 beside mujoco-core 4.0.0 (the metaworld extra over
    mujoco 4) becomes one line naming the repair; other OSErrors still raise."""
    import builtins

    from metarl.cli import install_check

    versions = {"mujoco": "3.3.0", "mujoco-core": "4.0.0"}
    monkeypatch.setattr(install_check.metadata, "version", versions.__getitem__)
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "metarl.cli.main":
            raise OSError("libmujoco.so.4.0.0: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    assert main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("metarl: error: mujoco 3.3.0 is installed beside mujoco-core 4.0.0")
    assert "pip uninstall -y mujoco-core" in err and "\n" not in err
    versions["mujoco-core"] = "3.3.0"  # the same versions: not this breakage, so it raises
    with pytest.raises(OSError):
        main(["list"])
