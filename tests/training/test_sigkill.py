"""SIGKILL at chosen moments of a run's file writes (the short CI variant of the soak in
benchmarks/soak.py): after each series of kills, resuming ends with progress rows byte-identical
to an uninterrupted run's (wall time aside), every kept checkpoint present, no temporary file
left, and TensorBoard holding each row once."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_runs import tiny

KILLABLE = Path(__file__).with_name("killable.py")
RUNS = {  # agent → env and env kwargs: the three kinds of learner
    "maml-trpo": ("navigation2d", {}),
    "rl2-trpo": ("bandit", {"k": 3}),
    "pearl": ("navigation2d", {}),
}

# Each process of a series: (resume?, the write event it is killed at). One run writes 27
# events: config.yaml (1-3); per iteration latest.pt, then iter_00002.pt when due, then
# progress.csv, three each (mid-write, fsync, rename); policy.pt at the end. A resumed process
# first rewrites progress.csv (and a missing due iter file) from latest.pt.
SERIES = [
    (False, 2),  # fsync of config.yaml: only config.yaml.tmp is left; the command is run again
    (False, 7),  # mid-write of progress.csv in iteration 1 (latest.pt at 1 is written)
    (True, 7),  # mid-write of iter_00002.pt, right after latest.pt at 2
    (True, 2),  # fsync of the missing iter_00002.pt that the resume writes from latest.pt
    (True, 9),  # rename of latest.pt at iteration 3 (the last): latest.pt at 2 stays
    (True, 6),  # rename of progress.csv at 3, after latest.pt at 3 and before policy.pt
    (True, 5),  # fsync of policy.pt, after the resume rewrote progress.csv
]


def command(agent, out):
    env, env_kwargs = RUNS[agent]
    sets = [f"--set={key}={value}" for key, value in tiny(agent).items()]
    args = ["train", agent, "--env", env, "--iterations", "3", "--checkpoint-every", "2"]
    return [*args, "--env-kwargs", json.dumps(env_kwargs), *sets, "--out", str(out)]


def run(kill_at, args):
    """The exit status of `metarl ARGS` killed at its `kill_at`th write event (0: never)."""
    done = subprocess.run(
        [sys.executable, str(KILLABLE), str(kill_at), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def rows_without_wall_time(run_dir):
    """progress.csv's lines, less the wall_time field."""
    lines = (run_dir / "progress.csv").read_text().splitlines()
    column = lines[0].split(",").index("wall_time")
    return [",".join(f for i, f in enumerate(line.split(",")) if i != column) for line in lines]


@pytest.mark.parametrize("agent", sorted(RUNS))
def test_sigkill_inside_every_kind_of_write_never_changes_a_runs_rows(tmp_path, agent):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run(0, command(agent, straight)) == 0
    for resume, kill_at in SERIES:
        args = ["train", "--resume", str(killed)] if resume else command(agent, killed)
        assert run(kill_at, args) == -signal.SIGKILL, (resume, kill_at)
    assert run(0, ["train", "--resume", str(killed)]) == 0
    assert rows_without_wall_time(killed) == rows_without_wall_time(straight)
    assert len(rows_without_wall_time(killed)) == 4  # the header and 3 rows
    checkpoints = {p.name for p in (killed / "checkpoints").iterdir()}
    assert checkpoints == {"latest.pt", "iter_00002.pt", "policy.pt"}
    assert not list(killed.rglob("*.tmp"))
    (events,) = (killed / "tensorboard").iterdir()  # one event file, older ones replaced
    scalars = EventAccumulator(str(events)).Reload().Scalars("iteration")
    assert [(s.step, s.value) for s in scalars] == [(steps, i) for i, steps in read_steps(killed)]


def read_steps(run_dir):
    """(iteration, env_steps) of each progress row."""
    header, *lines = (run_dir / "progress.csv").read_text().splitlines()
    names = header.split(",")
    rows = [dict(zip(names, line.split(","), strict=True)) for line in lines]
    return [(int(row["iteration"]), int(row["env_steps"])) for row in rows]
