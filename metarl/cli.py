"""The `metarl` command line (DESIGN §7)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

import metarl
from metarl.agents import AGENTS
from metarl.envs import ENVS


def _list(args: argparse.Namespace) -> int:
    width = max(len(e.id) for e in ENVS)
    short = max(len(e.short_name) for e in ENVS)
    print("Environments (full id, or its short name):")
    for entry in ENVS:
        print(f"  {entry.id:<{width}}  {entry.short_name:<{short}}  {entry.description}")
    print("Agents:")
    if not AGENTS:
        print("  none in this version yet")
    for name, description in AGENTS.items():
        print(f"  {name:<{width + short + 2}}  {description}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from metarl.demo import describe_task, random_policy_returns

    names = args.env or [entry.id for entry in ENVS]
    results = [
        result
        for name in names
        for result in random_policy_returns(name, args.tasks, args.episodes, args.seed)
    ]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    print(
        f"Mean return of a uniformly random policy on tasks drawn with seed {args.seed} "
        f"({args.episodes} episodes per task), and env steps per second on one thread."
    )
    header = f"{'env':<26} {'obs':>5} {'action':>11}  {'task':<44} {'return':>9} {'steps/s':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        obs = "×".join(str(d) for d in r.observation_shape)
        print(
            f"{r.env:<26} {obs:>5} {r.action_space:>11}  {describe_task(r.task):<44} "
            f"{r.mean_return:>9.2f} {r.env_steps_per_s:>9,.0f}"
        )
    return 0


def _bench_sampler(args: argparse.Namespace) -> int:
    from metarl.bench import DEFAULT_ENVS, sampler_report

    def progress(what: str) -> None:
        print(f"measuring {what}", file=sys.stderr, flush=True)

    print(sampler_report(args.env or DEFAULT_ENVS, args.quick, args.json, log=progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="metarl", description="Meta-reinforcement learning on Gymnasium and MuJoCo."
    )
    parser.add_argument("--version", action="version", version=f"metarl {metarl.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the environments and agents").set_defaults(run=_list)

    demo = commands.add_parser(
        "demo", help="random-policy returns per task for every env (checks the install)"
    )
    demo.add_argument(
        "--env", action="append", help="env id or short name (repeatable; default: all)"
    )
    demo.add_argument("--tasks", type=_positive_int, default=3, help="tasks per env (default 3)")
    demo.add_argument(
        "--episodes", type=_positive_int, default=10, help="episodes per task (default 10)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed for tasks and actions")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=_demo)

    bench = commands.add_parser("bench", help="throughput benchmarks")
    targets = bench.add_subparsers(dest="target", required=True, metavar="TARGET")
    sampler = targets.add_parser(
        "sampler",
        help="env steps/s of the sampler on the MAML workload, against raw MuJoCo and "
        "Gymnasium's vector envs",
    )
    sampler.add_argument(
        "--env",
        action="extend",
        nargs="+",
        help="MuJoCo env ids or short names (default: HalfCheetahVel and AntDir)",
    )
    sampler.add_argument(
        "--quick",
        action="store_true",
        help="10 tasks × 4 episodes × 100 steps instead of 40 × 20 × 200 (under a minute)",
    )
    sampler.add_argument("--json", action="store_true", help="print the records as JSON")
    sampler.set_defaults(run=_bench_sampler)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # bad user input (unknown env, bad task): no traceback
        print(f"metarl: error: {error}", file=sys.stderr)
        return 2
