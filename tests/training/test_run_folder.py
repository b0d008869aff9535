"""The run folder never loses data: rows kept by iteration from the checkpoint, resume without a
checkpoint refused rather than truncating, --restart, the lock, interrupted creation, kept
checkpoints, crashed runs, format migration and hand-edited or foreign files."""

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny_runs import tiny

from metarl.cli import main
from metarl.envs import ENVS, resolve_env_id
from metarl.fewshot.data import is_fewshot_task
from metarl.training.checkpoint import load_checkpoint, save_checkpoint
from metarl.training.evaluation import evaluate
from metarl.training.logger import read_progress
from metarl.training.run_folder import RUN_FORMAT, Run
from metarl.training.trainer import new_run, train

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 3-iteration MAML run with a kept checkpoint at 2, never to be modified (copy it)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    new_run("maml-trpo", "navigation2d", tiny("maml-trpo", iterations=3), run_dir,
            checkpoint_every=2)  # fmt: skip
    train(run_dir)
    return run_dir


@pytest.fixture
def run_dir(finished, tmp_path):
    """A copy of the finished run that a test may change."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def error_of(args, capsys):
    """The one stderr line of a command that must fail with status 2."""
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("metarl:")]
    assert "Traceback" not in err and len(errors) == 1, err
    return errors[0]


def test_resume_rewrites_the_rows_from_the_checkpoint_byte_for_byte(run_dir):
    text = (run_dir / "progress.csv").read_text()
    assert text.splitlines()[1].startswith("1,")  # the iteration column stays an integer
    (run_dir / "progress.csv").write_text(text + text.splitlines()[1] + "\n")  # a repeated row
    train(run_dir)
    assert (run_dir / "progress.csv").read_text() == text
    (run_dir / "progress.csv").write_bytes(b"\x00garbage")  # a torn or foreign file
    train(run_dir)
    assert (run_dir / "progress.csv").read_text() == text


def test_resume_without_a_checkpoint_keeps_the_rows_and_says_how_to_restart(run_dir, capsys):
    shutil.rmtree(run_dir / "checkpoints")
    before = (run_dir / "progress.csv").read_bytes(), (run_dir / "config.yaml").read_bytes()
    error = error_of(["train", "--resume", str(run_dir)], capsys)
    assert "no checkpoints/latest.pt" in error and f"--restart {run_dir}" in error
    assert ((run_dir / "progress.csv").read_bytes(), (run_dir / "config.yaml").read_bytes()) == (
        before
    )


def test_a_missing_latest_names_the_kept_checkpoint(run_dir, capsys):
    (run_dir / "checkpoints" / "latest.pt").unlink()
    assert "iter_00002.pt" in error_of(["train", "--resume", str(run_dir)], capsys)
    shutil.copy(run_dir / "checkpoints" / "iter_00002.pt", run_dir / "checkpoints" / "latest.pt")
    assert main(["train", "--resume", str(run_dir)]) == 0  # continues from iteration 2
    assert [row["iteration"] for row in read_progress(run_dir / "progress.csv")] == [1, 2, 3]


def test_a_due_kept_checkpoint_lost_to_a_crash_is_written_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    new_run("ppo", "navigation2d", tiny("ppo", iterations=2), run_dir, checkpoint_every=2)
    train(run_dir)
    (run_dir / "checkpoints" / "iter_00002.pt").unlink()  # killed after latest.pt at 2
    train(run_dir)
    assert load_checkpoint(run_dir / "checkpoints" / "iter_00002.pt")["iteration"] == 2


def test_restart_discards_the_history_on_request_and_changes_values(run_dir, capsys):
    assert main(["train", "--restart", str(run_dir), "--set", "inner_lr=0.05"]) == 0
    out = capsys.readouterr().out
    assert "discarded 3 progress row(s) and 3 checkpoint(s)" in out
    assert Run.load(run_dir).config["inner_lr"] == 0.05
    assert [row["iteration"] for row in read_progress(run_dir / "progress.csv")] == [1, 2, 3]
    with pytest.raises(ValueError, match="only with --restart"):
        train(run_dir, values={"inner_lr": 0.2})


def test_a_crashed_run_can_be_started_over_with_a_fixed_value(tmp_path, capsys):
    run_dir = tmp_path / "run"
    values = tiny("maml-trpo", iterations=2, inner_lr=1e30)  # the inner step overflows
    new_run("maml-trpo", "navigation2d", values, run_dir)
    error = error_of(["train", "--resume", str(run_dir)], capsys)
    assert "iteration 1:" in error and f"--restart {run_dir} --set" in error
    assert main(["train", "--restart", str(run_dir), "--set", "inner_lr=0.1"]) == 0
    assert len(read_progress(run_dir / "progress.csv")) == 2


def test_one_trainer_per_folder(run_dir, capsys):
    with open(run_dir / ".lock", "a") as held:  # another process's trainer holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        script = "from metarl.cli import main; raise SystemExit(main(['train', '--resume', "
        script += f"'{run_dir}', '--iterations', '4']))"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2 and "being trained by another metarl process" in done.stderr
    assert len(read_progress(run_dir / "progress.csv")) == 3


def test_an_interrupted_creation_can_be_started_again_not_resumed(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml.tmp").write_text("agent: maml")  # killed while writing config.yaml
    assert "creation was interrupted" in error_of(["train", "--resume", str(run_dir)], capsys)
    values = [f"--set={k}={v}" for k, v in tiny("ppo", iterations=1).items()]
    assert main(["train", "ppo", "--env", "navigation2d", "--out", str(run_dir), *values]) == 0
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "it holds a list"),
        ("", "it holds an empty file"),
        ("agent: [unclosed\n", "is not valid YAML"),
        (None, "keys missing ['config']"),
        ("extra", "unknown ['colour']"),
        ("format", "reads formats up to"),
        ("kind", "'env' must be a str"),
    ],
)
def test_a_hand_edited_config_yaml_is_a_one_line_error(run_dir, capsys, text, message):
    record = yaml.safe_load((run_dir / "config.yaml").read_text())
    if text is None:
        del record["config"]
    elif text == "extra":
        record["colour"] = "red"
    elif text == "format":
        record["format"] = RUN_FORMAT + 1
    elif text == "kind":
        record["env"] = 3
    if not isinstance(text, str) or text in ("extra", "format", "kind"):
        text = yaml.safe_dump(record)
    (run_dir / "config.yaml").write_text(text)
    assert message in error_of(["train", "--resume", str(run_dir)], capsys)
    assert message in error_of(["evaluate", str(run_dir)], capsys)


def test_a_checkpoint_of_another_agent_env_or_size_is_a_one_line_error(run_dir, tmp_path, capsys):
    latest = run_dir / "checkpoints" / "latest.pt"
    payload = load_checkpoint(latest)
    save_checkpoint(latest, {**payload, "run": {"agent": "ppo", "env": "metarl/Bandit-v0"}})
    assert "is from ppo on metarl/Bandit-v0" in error_of(
        ["train", "--resume", str(run_dir)], capsys
    )
    record = yaml.safe_load((run_dir / "config.yaml").read_text())
    record["config"]["hidden_sizes"] = [16]  # a config the checkpoint's tensors do not fit
    (run_dir / "config.yaml").write_text(yaml.safe_dump(record))
    save_checkpoint(latest, payload)
    assert "does not fit maml-trpo" in error_of(["evaluate", str(run_dir)], capsys)
    del payload["run"]  # a format-1 checkpoint names no run: its state_dict still must fit
    save_checkpoint(latest, payload)
    assert "does not fit maml-trpo" in error_of(["train", "--resume", str(run_dir)], capsys)
    torch.save({"format": "metarl-checkpoint-9", "iteration": 1}, latest)
    assert "upgrade metarl" in error_of(["evaluate", str(run_dir)], capsys)


def test_a_format_1_folder_is_migrated_on_read(run_dir):
    """metarl 0.1.0's folders: no `format`, `config` repeating `env_kwargs`, checkpoints without
    rows, progress.csv written with float iterations."""
    record = yaml.safe_load((run_dir / "config.yaml").read_text())
    del record["format"]
    record["config"]["env_kwargs"] = {}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(record))
    rows = read_progress(run_dir / "progress.csv")
    text = "\n".join(
        [",".join(rows[0]), *(",".join(str(float(v)) for v in row.values()) for row in rows)]
    )
    (run_dir / "progress.csv").write_text(text + "\n")
    latest = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    old = {k: v for k, v in latest.items() if k not in ("run", "progress")}
    torch.save({**old, "format": "metarl-checkpoint-1"}, run_dir / "checkpoints" / "latest.pt")
    (run_dir / "checkpoints" / "policy.pt").unlink()
    assert evaluate(run_dir, num_tasks=2, adapt_steps=1, episodes=2)["iteration"] == 3
    train(run_dir, iterations=4)
    assert [row["iteration"] for row in read_progress(run_dir / "progress.csv")] == [1, 2, 3, 4]
    assert (run_dir / "progress.csv").read_text().splitlines()[1].startswith("1,80,")


PENDING = {  # run with metarl 0.1.0 before checkpoints were committed; their re-runs are due
    "rl2-trpo-bandit-n100-k10",
    "rl2-trpo-bandit-n100-k50",
    "rl2-trpo-tabular-n10",
}


RUN_FOLDERS = sorted(
    str(p.parent.relative_to(RESULTS))
    for p in [*RESULTS.glob("*/config.yaml"), *RESULTS.glob("*/*/config.yaml")]
)
"""Every committed run folder: in results/, or a group of them (results/fewshot/)."""


def test_every_results_folder_is_a_run_or_a_group_of_runs():
    for path in RESULTS.iterdir():
        if path.is_dir() and not (path / "config.yaml").is_file():
            assert list(path.glob("*/config.yaml")), f"{path} holds no run folder"


@pytest.mark.parametrize("folder", RUN_FOLDERS)
def test_every_committed_benchmark_folder_works_with_the_tools(folder, tmp_path):
    """The committed results are run folders the tools read: config and progress parse, the
    adaptation plot reads their evaluation, and each carries a final checkpoint that fits its
    agent, so `metarl evaluate` works; the folders still awaiting their re-run (`PENDING`) say
    so in one line instead."""
    run_dir = RESULTS / folder
    run = Run.load(run_dir)
    assert read_progress(run_dir / "progress.csv")
    assert main(["plot", "--adaptation", str(run_dir), "-o", str(tmp_path / "a.png")]) == 0
    assert main(["plot", str(run_dir), "-o", str(tmp_path / "c.png")]) == 0
    checkpoints = {p.name for p in (run_dir / "checkpoints").glob("*.pt")}
    if folder in PENDING:
        assert not checkpoints, f"{folder} has its checkpoint now: take it off PENDING"
        with pytest.raises(ValueError, match=r"format 1.*re-run it with the command"):
            evaluate(run_dir)
        return
    assert run.format == RUN_FORMAT and checkpoints & {"latest.pt", "policy.pt"}
    if is_fewshot_task(run.env):
        agent = run.build()
    else:
        entry = next(e for e in ENVS if e.id == resolve_env_id(run.env))
        if not entry.installed:  # a Meta-World run: its agent is built where the extra is
            pytest.skip(f"{run.env} needs the {entry.extra} extra to build the agent")
        agent = run.build(num_workers=0)
    try:
        name = "latest.pt" if "latest.pt" in checkpoints else "policy.pt"
        payload = load_checkpoint(run_dir / "checkpoints" / name)
        agent.load_state_dict(payload["agent"])
    finally:
        agent.close()


def test_a_finished_pearl_run_exports_its_policy_without_the_buffers(tmp_path):
    run_dir = tmp_path / "run"
    new_run("pearl", "navigation2d", tiny("pearl", iterations=2), run_dir)
    train(run_dir)
    full = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    export = load_checkpoint(run_dir / "checkpoints" / "policy.pt")
    assert "replay" in full["agent"] and "replay" not in export["agent"]
    assert "encoder_buffer" not in export["agent"] and "optimizers" not in export["agent"]
    assert main(["plot", str(run_dir), "-o", str(tmp_path / "curves")]) == 0  # PEARL's columns
    assert (tmp_path / "curves.png").stat().st_size > 1000  # -o without a suffix: a PNG
    from_latest = evaluate(run_dir, num_tasks=3, episodes=2)
    (run_dir / "checkpoints" / "latest.pt").unlink()  # a committed benchmark folder keeps policy.pt
    assert evaluate(run_dir, num_tasks=3, episodes=2) == from_latest
