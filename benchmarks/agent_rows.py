"""Every agent's metrics over 3 iterations on small configs, to show that a change leaves a
seed's run unchanged bit for bit (issue 14's `device` option: "results for the same seed on
CPU are unchanged").

    python benchmarks/agent_rows.py OUT.json              # on each of two checkouts
    python benchmarks/agent_rows.py --compare A.json B.json

Each registered agent runs on Navigation2D and HalfCheetahVel (RL² on the bandits and
Navigation2D): the tests' tiny sizes (tests/training/tiny_runs.py) with a 3-task batch of
20-step episodes and 5 PEARL gradient steps, 2 torch threads. `--compare` prints, per pair,
whether every value of every row is identical (NaN equal to NaN).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "training"))
from tiny_runs import tiny

from metarl.agents.registry import REGISTRY

SIZES = {"num_gradient_steps": 5, "batch_size": 16, "meta_batch_size": 3, "horizon": 20}


def rows_of_every_agent() -> dict[str, list[dict[str, float]]]:
    """{"agent/env": [metrics of iteration 1, 2, 3]}."""
    torch.set_num_threads(2)
    out = {}
    for name, entry in REGISTRY.items():
        envs = ("bandit", "navigation2d") if name.startswith("rl2") else ("navigation2d",)
        envs += () if name.startswith("rl2") else ("halfcheetah-vel",)
        names = {f.name for f in dataclasses.fields(entry.config_class)}
        values = {k: v for k, v in {**tiny(name), **SIZES}.items() if k in names}
        for env in envs:
            agent = entry.agent_class(env, entry.config_class(**{**values, **entry.overrides}))
            try:
                out[f"{name}/{env}"] = [agent.train_step() for _ in range(3)]
            finally:
                agent.close()
    return out


def main() -> None:
    """Write the rows, or compare two files of them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="OUT.json, or with --compare A.json B.json")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if not args.compare:
        Path(args.files[0]).write_text(json.dumps(rows_of_every_agent(), default=float))
        return
    first, second = (json.loads(Path(f).read_text()) for f in args.files[:2])
    for key in first:
        same = json.dumps(first[key], sort_keys=True) == json.dumps(second.get(key), sort_keys=True)
        print(f"{key:28s} {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
