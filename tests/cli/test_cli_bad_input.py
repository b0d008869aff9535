"""Every bad input a user reported (issue 12), and the ones that already worked, through the
command line: each must be exactly one `metarl: error: ...` line naming what is wrong, exit
status 2, no traceback, and nothing written where nothing should be. The Python-level tables
are tests/envs/test_bad_input.py (env arguments, actions, tasks), tests/agents/
test_config_values.py (config values) and tests/training/test_config_loader.py (YAML); the run
folder's own cases are tests/training/test_run_folder.py."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from metarl.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from tiny_runs import tiny

TRAIN = ["train", "maml-trpo", "--env", "navigation2d"]

# (name, arguments with {run}, {file}, {binary}, {tmp} placeholders, expected message part)
CASES = [
    # config values the algorithm cannot use
    ("discount > 1", [*TRAIN, "--set", "discount=2"], "'discount' must lie in (0, 1]"),
    ("discount 0", [*TRAIN, "--set", "discount=0"], "'discount'"),
    ("gae_lambda < 0", [*TRAIN, "--set", "gae_lambda=-0.1"], "'gae_lambda'"),
    ("gae_lambda > 1", [*TRAIN, "--set", "gae_lambda=1.5"], "'gae_lambda'"),
    ("NaN", [*TRAIN, "--set", "inner_lr=.nan"], "'inner_lr'"),
    ("inf", [*TRAIN, "--set", "max_kl=.inf"], "'max_kl'"),
    ("zero width", [*TRAIN, "--set", "hidden_sizes=[32, 0]"], "'hidden_sizes'"),
    ("negative width", [*TRAIN, "--set", "hidden_sizes=[-4]"], "'hidden_sizes'"),
    ("horizon 0", [*TRAIN, "--set", "horizon=0"], "'horizon'"),
    ("fisher_tasks 0", [*TRAIN, "--set", "fisher_tasks=0"], "'fisher_tasks'"),
    ("fisher_tasks > batch", [*TRAIN, "--set", "fisher_tasks=41"], "'fisher_tasks'"),
    ("max_kl 0", [*TRAIN, "--set", "max_kl=0"], "'max_kl'"),
    ("max_backtracks < 0", [*TRAIN, "--set", "max_backtracks=-1"], "'max_backtracks'"),
    ("backtrack_ratio 1", [*TRAIN, "--set", "backtrack_ratio=1"], "'backtrack_ratio'"),
    ("backtrack_ratio 0", [*TRAIN, "--set", "backtrack_ratio=0"], "'backtrack_ratio'"),
    ("num_workers < 0", [*TRAIN, "--set", "num_workers=-1"], "'num_workers'"),
    ("batch beyond memory", [*TRAIN, "--set", "meta_batch_size=1000000000"], "GiB"),
    ("batch as text", [*TRAIN, "--set", "meta_batch_size=1e9"], "'meta_batch_size'"),
    ("seed beyond 2**32", [*TRAIN, "--seed", str(2**32)], "'seed'"),
    ("negative seed", [*TRAIN, "--seed", "-1"], "'seed'"),
    ("ppo clip 0", ["train", "ppo", "--env", "navigation2d", "--set", "clip=0"], "'clip'"),
    ("pearl tau 0", ["train", "pearl", "--env", "navigation2d", "--set", "tau=0"], "'tau'"),
    (
        "rl2 trials 0",
        ["train", "rl2-trpo", "--env", "bandit", "--set", "episodes_per_trial=0"],
        "'episodes_per_trial'",
    ),
    ("bad task", ["train", "trpo", "--env", "navigation2d", "--set", "task={goal: [1]}"], "goal"),
    # the config loader
    ("unclosed --set", [*TRAIN, "--set", "hidden_sizes=[32,"], "hidden_sizes=[32,"),
    ("--set without =", [*TRAIN, "--set", "inner_lr"], "key=value"),
    ("unknown key", [*TRAIN, "--set", "colour=1"], "unknown config key(s) ['colour']"),
    ("typo'd key", [*TRAIN, "--set", "inner_rl=0.1"], "inner_lr"),
    ("wrong type", [*TRAIN, "--set", "inner_lr=fast"], "'inner_lr'"),
    ("binary --config", [*TRAIN, "--config", "{binary}"], "{binary}"),
    ("list --config", [*TRAIN, "--config", "{list}"], "mapping"),
    ("missing --config", [*TRAIN, "--config", "nowhere.yaml"], "no config file nowhere.yaml"),
    # names and env kwargs
    ("unknown agent", ["train", "mamal", "--env", "navigation2d"], "maml-trpo"),
    ("unknown env", ["train", "ppo", "--env", "cheetah"], "unknown env 'cheetah'"),
    ("unknown env kwarg", [*TRAIN, "--env-kwargs", '{"goal_rang": [0, 1]}'], "goal_range"),
    ("bad env kwarg", [*TRAIN, "--env-kwargs", '{"max_action": -1}'], "max_action"),
    ("env kwargs not JSON", [*TRAIN, "--env-kwargs", "{k: 3}"], "not valid JSON"),
    (
        "pearl on discrete",
        ["train", "pearl", "--env", "bandit", "--set", "num_workers=0"],
        "continuous",
    ),
    # where the output goes
    ("--out is a file", [*TRAIN, "--out", "{file}"], "is a file"),
    ("--out under a file", [*TRAIN, "--out", "{file}/run"], "a part of its path is a file"),
    ("--out not empty", [*TRAIN, "--out", "{run}"], "is not empty"),
    (
        "evaluate --out file",
        ["evaluate", "--agent", "ucb1", "--env", "bandit", "--out", "{file}"],
        "is a file",
    ),
    ("plot -o under file", ["plot", "{run}", "-o", "{file}/x.png"], "file is a file"),
    ("plot -o format", ["plot", "{run}", "-o", "{tmp}/x.jpg"], "the figure formats are"),
    # command-line usage
    ("unknown command", ["fly"], "invalid choice: 'fly'"),
    ("--tasks 0", ["evaluate", "{run}", "--tasks", "0"], "--tasks: must be an integer >= 1"),
    ("--seed not int", [*TRAIN, "--seed", "x"], "invalid int value"),
    ("resume with --set", ["train", "--resume", "{run}", "--set", "seed=1"], "--restart"),
    ("resume and restart", ["train", "--resume", "{run}", "--restart", "{run}"], "pick one"),
    ("resume shorter", ["train", "--resume", "{run}", "--iterations", "1"], "already run 2"),
    ("train without env", ["train", "ppo"], "--env ENV"),
    ("help of unknown agent", ["train", "mamal", "--help"], "unknown agent 'mamal'"),
    # folders and files that are not what they should be
    ("resume nowhere", ["train", "--resume", "{tmp}/nowhere"], "is not a folder"),
    ("evaluate non-run", ["evaluate", "{tmp}"], "not a metarl run folder"),
    ("evaluate no checkpoint", ["evaluate", "{nockpt}"], "has no checkpoint to evaluate"),
    ("corrupt checkpoint", ["evaluate", "{corrupt}"], "latest.pt is corrupt"),
    ("evaluate single-task", ["evaluate", "{ppo}"], "does not adapt"),
    ("garbage progress.csv", ["plot", "{garbage}"], "is not a metarl progress.csv"),
    ("binary progress.csv", ["plot", "{binarycsv}"], "is not a metarl progress.csv"),
    ("no return columns", ["plot", "{nocolumns}"], "none of the return columns"),
    ("plot no adaptation", ["plot", "--adaptation", "{run}"], "run `metarl evaluate` first"),
    (
        "reference on wrong env",
        ["evaluate", "--agent", "ucb1", "--env", "navigation2d"],
        "Bandit",
    ),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """The files and folders the cases name."""
    root = tmp_path_factory.mktemp("places")
    run = root / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny("maml-trpo", iterations=2).items()]
    assert main([*TRAIN, "--out", str(run), *sets]) == 0
    ppo = root / "ppo"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny("ppo", iterations=1).items()]
    assert main(["train", "ppo", "--env", "navigation2d", "--out", str(ppo), *sets]) == 0
    (root / "file").write_text("a file")
    (root / "binary").write_bytes(bytes(range(256)) * 4)
    (root / "list.yaml").write_text("- 1\n- 2\n")
    folders = {}
    for name in ("nockpt", "corrupt", "garbage", "binarycsv", "nocolumns"):
        folders[name] = shutil.copytree(run, root / name)
    shutil.rmtree(folders["nockpt"] / "checkpoints")
    (folders["corrupt"] / "checkpoints" / "latest.pt").write_bytes(b"\x00" * 100)
    (folders["garbage"] / "progress.csv").write_text("iteration,env_steps\n1,2,3,4\n")
    (folders["binarycsv"] / "progress.csv").write_bytes(b"\xff\xfe\x00garbage")
    (folders["nocolumns"] / "progress.csv").write_text("iteration,env_steps,loss\n1,10,0.5\n")
    tmp = root / "tmp"
    tmp.mkdir()
    return {
        "run": run, "ppo": ppo, "file": root / "file", "binary": root / "binary",
        "list": root / "list.yaml", "tmp": tmp, **folders,
    }  # fmt: skip


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_with_status_2(places, capsys, name, args, message):
    args = [fill(arg, places) for arg in args]
    before = sorted(p.name for p in places["tmp"].iterdir())
    status = status_of(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("metarl: error: ")]
    assert status == 2, err
    assert "Traceback" not in err and len(errors) == 1, err
    assert fill(message, places) in errors[0], errors[0]
    assert sorted(p.name for p in places["tmp"].iterdir()) == before  # nothing written


def fill(text, places):
    """`text` with each `{name}` of `places` replaced by its path."""
    for name, path in places.items():
        text = text.replace(f"{{{name}}}", str(path))
    return text


def status_of(args):
    """The exit status of `metarl ARGS` (argparse's errors exit through SystemExit)."""
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code
