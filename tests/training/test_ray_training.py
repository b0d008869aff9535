"""Training through Ray (`sampler: ray`): a MAML-TRPO and a PEARL run write the very progress
rows of the local sampler's, and a run resumes under the other sampler to the same rows."""

import pytest
from tiny_runs import tiny

from metarl.training.logger import read_progress
from metarl.training.trainer import new_run, train

RAY = {"sampler": "ray", "ray_workers": 2}


def rows(run_dir):
    """The progress rows less the wall time, which no two runs share (NaN, which is not equal
    to itself, as text)."""
    return [
        {
            key: "nan" if value != value else value
            for key, value in row.items()
            if key != "wall_time"
        }
        for row in read_progress(run_dir / "progress.csv")
    ]


@pytest.mark.parametrize("agent", ["maml-trpo", "pearl"])
def test_ray_run_writes_the_local_runs_rows(ray_local, tmp_path, agent):
    for name, extra in (("local", {}), ("ray", RAY)):
        new_run(agent, "navigation2d", tiny(agent, iterations=2, seed=3, **extra), tmp_path / name)
        train(tmp_path / name)
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    assert len(rows(tmp_path / "local")) == 2


def test_a_local_run_resumes_on_ray_to_the_same_rows(ray_local, tmp_path):
    values = tiny("maml-trpo", iterations=3, seed=4)
    new_run("maml-trpo", "navigation2d", values, tmp_path / "whole")
    train(tmp_path / "whole")
    new_run("maml-trpo", "navigation2d", values, tmp_path / "split")
    train(tmp_path / "split", 1)
    train(tmp_path / "split", 2, execution=RAY)
    train(tmp_path / "split", 3)
    assert rows(tmp_path / "split") == rows(tmp_path / "whole")


def test_only_execution_keys_change_for_one_session(tmp_path):
    new_run("maml-trpo", "navigation2d", tiny("maml-trpo", iterations=1), tmp_path / "run")
    with pytest.raises(ValueError, match="only sampler, ray_address, ray_workers change"):
        train(tmp_path / "run", execution={"seed": 1})


def test_evaluation_fans_out_over_ray_to_the_local_result(ray_local, tmp_path):
    from metarl.training.evaluation import evaluate

    new_run("maml-trpo", "navigation2d", tiny("maml-trpo", iterations=1), tmp_path / "run")
    train(tmp_path / "run")
    local = evaluate(tmp_path / "run", num_tasks=6, adapt_steps=1)
    remote = evaluate(tmp_path / "run", num_tasks=6, adapt_steps=1, execution=RAY)
    assert remote == local


def test_an_actor_killed_during_training_leaves_the_rows_unchanged(ray_local, tmp_path):
    """A slice actor SIGKILLed while the run trains (found by the process title Ray gives it)
    is replaced; the rows are the uninterrupted local run's."""
    import os
    import signal
    import subprocess
    import threading
    import time

    values = tiny("maml-trpo", iterations=3, horizon=200, episodes_per_task=10, seed=1)
    kills = []

    def kill_one():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not kills:
            found = subprocess.run(["pgrep", "-f", "ray::SliceWorker.sample_columns"],
                                   capture_output=True, text=True).stdout.split()  # fmt: skip
            if found:
                os.kill(int(found[0]), signal.SIGKILL)
                kills.append(found[0])
            time.sleep(0.05)

    for name, extra in (("local", {}), ("ray", RAY)):
        new_run("maml-trpo", "halfcheetah-vel", {**values, **extra}, tmp_path / name)
        if extra:
            killer = threading.Thread(target=kill_one)
            killer.start()
        train(tmp_path / name)
    killer.join()
    assert kills, "no actor was found sampling"
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
