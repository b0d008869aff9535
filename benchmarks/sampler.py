"""Sampler throughput on MAML's workload: metarl against raw MuJoCo and Gymnasium vector envs.

    python benchmarks/sampler.py [--env ENV ...] [--quick] [--json]
    python benchmarks/sampler.py --toy

The same measurement as `metarl bench sampler` (functions in `metarl.cli.bench`): 40 tasks × 20
episodes × 200 steps with a 64×64 Gaussian MLP on HalfCheetahVel and AntDir, env steps per
second of `metarl`, `mujoco-raw-1thread`, `gymnasium-sync`, `gymnasium-async` and (where it is
installed) `envpool`, measured in one run, with metarl's speed-up over each and its peak resident
memory. `--toy`: metarl's in-process path on MAML's Navigation2D batch (20 tasks × 20 episodes ×
100 steps, one parameter set per task), five batches in a row.
"""

from __future__ import annotations

import argparse
import sys

from metarl.cli.bench import DEFAULT_ENVS, sampler_report, toy_steps_per_s, toy_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=DEFAULT_ENVS, help="MuJoCo env ids")
    parser.add_argument("--quick", action="store_true", help="10 tasks × 4 episodes × 100 steps")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--toy", action="store_true", help="Navigation2D's MAML batch instead")
    args = parser.parse_args()
    if args.toy:
        workload = toy_workload()
        timings = toy_steps_per_s(workload)
        rates = ", ".join(f"{t.env_steps_per_s:,.0f}" for t in timings)
        print(f"{workload.env_id}: {workload.describe()}: env-steps/s of 5 batches: {rates}")
        return
    print(sampler_report(args.env, args.quick, args.json, log=_progress))


def _progress(what: str) -> None:
    print(f"measuring {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
