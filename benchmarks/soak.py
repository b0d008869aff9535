"""SIGKILL soak of run folders (issue 12): kill `metarl train` at every write event and at random
moments, resume each time, and check that the run ends with the uninterrupted run's rows.

    python benchmarks/soak.py [--timed-kills 12] [--iterations 6] [--seed 0] [--out FILE.json]

For each of MAML-TRPO (Navigation2D), RL²-TRPO (bandits) and PEARL (Navigation2D), on the tiny
configs of the tests:
1. an uninterrupted run gives the reference rows and the number E of write events;
2. for every event e = 1..E, a fresh run is SIGKILLed at event e (inside config.yaml's, a
   checkpoint's or progress.csv's write: mid-bytes, fsync or rename), then recovered, by running
   the same command again if config.yaml was never written and by `--resume` otherwise;
3. one more run is SIGKILLed `--timed-kills` times at moments drawn uniformly over a process's
   life (start-up, sampling, the update, the writes), each time resumed.
Every recovered run must end with progress rows byte-identical to the reference (wall time
aside), every kept checkpoint and policy.pt present, and no temporary file left. The short CI
variant is tests/training/test_sigkill.py.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "training"))
from test_sigkill import KILLABLE, RUNS, rows_without_wall_time  # noqa: E402
from tiny_runs import tiny  # noqa: E402


def command(agent: str, out: Path, iterations: int) -> list[str]:
    """`metarl train` of `agent`'s tiny run into `out`, kept checkpoints every 2 iterations."""
    env, env_kwargs = RUNS[agent]
    sets = [f"--set={key}={value}" for key, value in tiny(agent).items()]
    return [
        "train", agent, "--env", env, "--iterations", str(iterations), "--checkpoint-every", "2",
        "--env-kwargs", json.dumps(env_kwargs), *sets, "--out", str(out),
    ]  # fmt: skip


def launch(kill_at: int, args: list[str]) -> subprocess.Popen:
    """`metarl ARGS` in a process that kills itself at its `kill_at`th write event (0: never)."""
    return subprocess.Popen(
        [sys.executable, str(KILLABLE), str(kill_at), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """The exit status and stderr of `process`, after it ends."""
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def recovery(agent: str, run_dir: Path, iterations: int) -> list[str]:
    """What a user runs after a crash: the same command if the folder was never recorded."""
    if (run_dir / "config.yaml").is_file():
        return ["train", "--resume", str(run_dir)]
    return command(agent, run_dir, iterations)


def check(run_dir: Path, reference: list[str], iterations: int) -> list[str]:
    """What is wrong with a recovered run folder (nothing: [])."""
    problems = []
    if rows_without_wall_time(run_dir) != reference:
        problems.append("progress rows differ")
    kept = {f"iter_{i:05d}.pt" for i in range(2, iterations + 1, 2)} | {"latest.pt", "policy.pt"}
    found = {p.name for p in (run_dir / "checkpoints").iterdir()}
    if found != kept:
        problems.append(f"checkpoints {sorted(found)}")
    leftovers = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp")]
    if leftovers:
        problems.append(f"temporary files {leftovers}")
    return problems


def soak(agent: str, timed_kills: int, iterations: int, rng: random.Random, work: Path) -> dict:
    """The soak of one agent (module docstring); returns its counts and any problems."""
    started = time.perf_counter()
    reference_dir = work / f"{agent}-reference"
    status, err = finish(launch(0, command(agent, reference_dir, iterations)))
    assert status == 0, err
    lifetime = time.perf_counter() - started  # an uninterrupted process, start-up included
    events = int(err.rsplit("write events:", 1)[1])
    reference = rows_without_wall_time(reference_dir)
    problems: list[str] = []
    event_kills = 0
    for event in range(1, events + 1):
        run_dir = work / f"{agent}-event-{event}"
        status, err = finish(launch(event, command(agent, run_dir, iterations)))
        event_kills += status == -signal.SIGKILL
        status, err = finish(launch(0, recovery(agent, run_dir, iterations)))
        if status != 0:
            problems.append(f"event {event}: recovery exited {status}: {err[-300:]}")
            continue
        problems += [f"event {event}: {p}" for p in check(run_dir, reference, iterations)]
        shutil.rmtree(run_dir)
    kills, runs = 0, 0
    while kills < timed_kills:  # fresh runs, each killed until it finishes by itself
        runs += 1
        run_dir = work / f"{agent}-timed-{runs}"
        while True:
            process = launch(0, recovery(agent, run_dir, iterations))
            try:
                process.wait(timeout=rng.uniform(0.2, lifetime))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
            status, err = finish(process)
            if status == -signal.SIGKILL:
                kills += 1
                continue
            if status != 0:
                problems.append(f"timed run {runs} exited {status}: {err[-300:]}")
            break
        problems += [f"timed run {runs}: {p}" for p in check(run_dir, reference, iterations)]
        shutil.rmtree(run_dir)
    return {
        "agent": agent,
        "write_events": events,
        "event_kills": event_kills,
        "timed_kills": kills,
        "timed_runs": runs,
        "problems": problems,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    """Run the soak for the three agents and print (and optionally write) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timed-kills", type=int, default=12, help="random-moment kills per agent")
    parser.add_argument("--iterations", type=int, default=6, help="iterations of each run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work:
        results = [
            soak(agent, args.timed_kills, args.iterations, rng, Path(work)) for agent in RUNS
        ]
    print("| agent | write events | killed at each | random-moment kills (runs) | problems | s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['agent']} | {r['write_events']} | {r['event_kills']} | {r['timed_kills']} "
            f"({r['timed_runs']}) | {len(r['problems'])} | {r['seconds']} |"
        )
        for problem in r["problems"]:
            print(f"  {problem}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
