"""Issue 15's task families train from the CLI: two iterations of MAML-TRPO and of PEARL on each,
through the run folder, with finite rows."""

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from metarl.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from tiny_runs import tiny

FAMILIES = ["walker2d-rand-params", "hopper-rand-params", "ant-vel", "humanoid-dir"]


@pytest.mark.parametrize("agent", ["maml-trpo", "pearl"])
@pytest.mark.parametrize("env", FAMILIES)
def test_two_iterations_train_from_the_cli(agent, env, tmp_path):
    run = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny(agent).items()]
    args = ["train", agent, "--env", env, "--out", str(run), "--iterations", "2", "--seed", "0"]
    assert main([*args, *sets]) == 0
    with open(run / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["iteration"] for row in rows] == ["1", "2"]
    assert 0 < int(rows[0]["env_steps"]) < int(rows[1]["env_steps"])
    for row in rows:  # every return measured is finite (PEARL leaves some out of tiny runs)
        returns = [float(v) for k, v in row.items() if k.endswith("return") and v != "nan"]
        assert returns and all(math.isfinite(r) for r in returns), row
