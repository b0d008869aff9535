"""PEARL's laptop config against the benchmark config on HalfCheetahVel, in env steps.

    python benchmarks/plot_pearl_fast.py [--window 3] [--laptop FOLDER ...]

reads `benchmarks/results/pearl-halfcheetah-vel*/progress.csv` (the benchmark config
`pearl-halfcheetah-vel`, one folder per seed: the band) and each `--laptop` folder's (default:
`pearl-fast-halfcheetah-vel`, the laptop config, and `pearl-fast-e64-halfcheetah-vel`, the
first candidate with a 64-wide encoder), column `test_return` (held-out tasks, z from the
posterior of one episode), writes `benchmarks/pearl_fast_halfcheetah_vel.png`, and prints, at
every logged point, the band (the lowest and highest seed of the benchmark config, each
smoothed over `--window` points) and each laptop run's smoothed return, with how many of its
points lie in the band. All configs collect alike, so their logged points fall on the same
env steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).parent))
from plot_env_steps import RESULTS, read, smooth

DEFAULT = "pearl-halfcheetah-vel"
LAPTOP = ("pearl-fast-halfcheetah-vel", "pearl-fast-e64-halfcheetah-vel")


def curves(prefix: str, window: int) -> dict[str, tuple[list[float], list[float]]]:
    """Smoothed `test_return` against env steps of every run folder named `prefix`[-sN]."""
    folders = sorted(RESULTS.glob(f"{prefix}*"))
    folders = [f for f in folders if f.name == prefix or f.name[len(prefix) :].startswith("-s")]
    runs = {}
    for folder in folders:
        steps, values = read(folder / "progress.csv", "test_return")
        runs[folder.name] = (steps, smooth(values, window))
    return runs


def main() -> None:
    """Print the band comparison and write the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=3, help="points per moving average")
    parser.add_argument("--laptop", nargs="+", default=list(LAPTOP), help="run folders")
    args = parser.parse_args()
    default = curves(DEFAULT, args.window)
    fast = {name: curves(name, args.window)[name] for name in args.laptop}
    common = set.intersection(*(set(steps) for steps, _ in [*default.values(), *fast.values()]))
    xs = sorted(common)
    lookup = {
        name: dict(zip(steps, values, strict=True))
        for name, (steps, values) in {**default, **fast}.items()
    }
    low = [min(lookup[name][x] for name in default) for x in xs]
    high = [max(lookup[name][x] for name in default) for x in xs]
    print(f"env steps | band ({', '.join(default)}) | " + " | ".join(fast))
    for i, x in enumerate(xs):
        row = " | ".join(f"{lookup[name][x]:7.1f}" for name in fast)
        print(f"{x:9,.0f} | {low[i]:7.1f} .. {high[i]:7.1f} | {row}")
    for name in fast:
        inside = sum(low[i] <= lookup[name][x] <= high[i] for i, x in enumerate(xs))
        below = max((low[i] - lookup[name][x] for i, x in enumerate(xs)), default=0.0)
        print(
            f"{name}: {inside} of {len(xs)} points in the band; furthest below it "
            f"{max(below, 0.0):.1f}"
        )

    figure, axes = plt.subplots(figsize=(7, 4.2))
    axes.fill_between(xs, low, high, alpha=0.25, label=f"{DEFAULT}: seeds' range")
    for name, (steps, values) in default.items():
        axes.plot(steps, values, lw=0.8, alpha=0.7, label=name)
    for name, (steps, values) in fast.items():
        axes.plot(steps, values, lw=1.8, label=name)
    axes.set_xlabel("env steps of meta-training")
    axes.set_ylabel(f"held-out return, z from 1 episode ({args.window}-point average)")
    axes.set_title("PEARL HalfCheetahVel: laptop config against the benchmark config")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    out = Path(__file__).parent / "pearl_fast_halfcheetah_vel.png"
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
