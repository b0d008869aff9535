"""Sampler throughput on MAML's workload: metarl against raw MuJoCo and Gymnasium vector envs.

    python benchmarks/sampler.py [--env ENV ...] [--quick] [--json]

The same measurement as `metarl bench sampler` (functions in `metarl.cli.bench`): 40 tasks × 20
episodes × 200 steps with a 64×64 Gaussian MLP on HalfCheetahVel and AntDir, env steps per
second of `metarl`, `mujoco-raw-1thread`, `gymnasium-sync` and `gymnasium-async`, measured in
one run, with metarl's speed-up over each and its peak resident memory.
"""

from __future__ import annotations

import argparse
import sys

from metarl.cli.bench import DEFAULT_ENVS, sampler_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=DEFAULT_ENVS, help="MuJoCo env ids")
    parser.add_argument("--quick", action="store_true", help="10 tasks × 4 episodes × 100 steps")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    args = parser.parse_args()
    print(sampler_report(args.env, args.quick, args.json, log=_progress))


def _progress(what: str) -> None:
    print(f"measuring {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
