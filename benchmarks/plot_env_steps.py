"""PEARL's test-task return beside the on-policy meta-learners' returns, against env steps.

    python benchmarks/plot_env_steps.py navigation2d
    python benchmarks/plot_env_steps.py halfcheetah-vel

reads `benchmarks/results/pearl-<env>/progress.csv` (column `test_return`: held-out tasks, z from
the posterior of one episode of context) and the MAML-TRPO / FO-MAML / ProMP runs of the same env
(`pre_return` dashed, `post_return` solid: returns before and after one inner step on each
iteration's new tasks) and RL²'s (first and last episode of its trials), marks the final PEARL
policy's held-out trial (`eval/adaptation.json`:
square = episode 0 with z from the prior, digit i = episode i with z from i episodes of
context), writes `benchmarks/pearl_<env>_vs_onpolicy.png` and prints how many env steps PEARL
needed to reach the return MAML-TRPO reached, against MAML-TRPO's own.

"Reached" is judged on a moving average over `--window` logged points of each curve, so that one
lucky point does not count: MAML-TRPO's level is the best of its smoothed `post_return`, and each
agent's steps are the first smoothed point at or above that level. The converse is printed too:
the env steps MAML-TRPO needed to reach PEARL's best smoothed return.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
# Run folder prefix → label, the progress columns of the return before and after adaptation,
# and what "after" means.
ON_POLICY = {
    "maml-trpo": ("MAML-TRPO", "pre_return", "post_return", "after 1 inner step"),
    "fo-maml": ("FO-MAML", "pre_return", "post_return", "after 1 inner step"),
    "promp": ("ProMP", "pre_return", "post_return", "after 1 inner step"),
    "rl2-trpo": ("RL²-TRPO", "first_episode_return", "last_episode_return", "last ep. of trial"),
}


def read(path: Path, column: str) -> tuple[list[float], list[float]]:
    """(cumulative env steps, values) of the rows of `path` where `column` is a number."""
    steps, values = [], []
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            value = float(row[column])
            if not math.isnan(value):
                steps.append(float(row["env_steps"]))
                values.append(value)
    return steps, values


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (shorter at the start)."""
    return [
        sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1))
        for i in range(len(values))
    ]


def first_reaching(steps: list[float], values: list[float], level: float) -> float | None:
    """The env steps of the first point at or above `level`, or None."""
    return next((s for s, v in zip(steps, values, strict=True) if v >= level), None)


def report(level: float, maml: tuple, pearl: tuple) -> None:
    """Print the env steps each of the smoothed curves needed to reach `level`, and the ratio."""
    maml_at, pearl_at = first_reaching(*maml, level), first_reaching(*pearl, level)
    maml_text = "not reached" if maml_at is None else f"{maml_at:,.0f}"
    pearl_text = "not reached" if pearl_at is None else f"{pearl_at:,.0f}"
    print(f"  env steps to reach {level:.1f}: MAML-TRPO {maml_text}, PEARL {pearl_text}", end="")
    if maml_at is not None and pearl_at is not None:
        print(f" ({maml_at / pearl_at:.0f}x fewer for PEARL)", end="")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", help="short env name of the results folders, e.g. navigation2d")
    parser.add_argument("--window", type=int, default=3, help="moving-average window (points)")
    args = parser.parse_args()

    figure, axes = plt.subplots(figsize=(7, 4.5))
    curves = {}
    for index, (name, (label, before, after, meaning)) in enumerate(ON_POLICY.items()):
        path = RESULTS / f"{name}-{args.env}" / "progress.csv"
        if not path.is_file():
            continue
        colour = f"C{index + 1}"
        steps, pre = read(path, before)
        _, post = read(path, after)
        axes.plot(steps, pre, "--", color=colour, alpha=0.6, label=f"{label} before adaptation")
        axes.plot(steps, post, "-", color=colour, label=f"{label} {meaning}")
        curves[name] = (steps, smooth(post, args.window))
    pearl_path = RESULTS / f"pearl-{args.env}" / "progress.csv"
    steps, test = read(pearl_path, "test_return")
    axes.plot(steps, test, "-o", color="C0", markersize=3, label="PEARL, held-out tasks, z | 1 ep.")
    pearl = (steps, smooth(test, args.window))
    evaluation = RESULTS / f"pearl-{args.env}" / "eval" / "adaptation.json"
    if evaluation.is_file():  # the final policy's trial on 40 held-out tasks: one mark per episode
        trial = json.loads(evaluation.read_text())
        for i, value in enumerate(trial["mean_return"]):
            marker = "s" if i == 0 else f"${i}$"
            text = "PEARL final, held-out eval: episode i, z | i ep." if i == 1 else None
            axes.plot(steps[-1] * 1.15, value, marker=marker, color="C0", markersize=8, label=text)

    if "maml-trpo" in curves:
        maml_curve = curves["maml-trpo"]
        level = max(maml_curve[1])
        axes.axhline(level, color="grey", lw=0.8, ls=":")
        print(f"MAML-TRPO's best smoothed post-adaptation return: {level:.1f}")
        report(level, maml_curve, pearl)
        best = max(pearl[1])
        print(f"PEARL's best smoothed test return: {best:.1f}")
        report(best, maml_curve, pearl)
    axes.set_xscale("log")
    axes.set(
        xlabel="env steps (log scale)",
        ylabel="return per episode",
        title=f"{args.env}: PEARL vs on-policy meta-RL in env steps",
    )
    axes.legend(fontsize=7, loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    out = Path(__file__).parent / f"pearl_{args.env.replace('-', '_')}_vs_onpolicy.png"
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
