"""The bandit and tabular-MDP tables of Duan et al. 2016 (benchmarks/README.md) from our own runs.

Every cell is `metarl evaluate` on the same held-out tasks (drawn with --seed): the reference
agents through `--agent`, RL² through its trained run folder. Prints a Markdown table (ours ± 95%
CI, the paper's number beside it) and the CLI command behind each cell.

    python benchmarks/rl2_tables.py --tasks 500 --seed 0 \\
        --run n10-k5=RUN_DIR --run n100-k10=RUN_DIR --run n100-k50=RUN_DIR --run mdp-n10=RUN_DIR
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metarl.training.evaluation import evaluate, evaluate_reference


@dataclass(frozen=True)
class Cell:
    """A reference agent with its config (`--set` values), under a label."""

    label: str
    agent: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One row of a table: the env, its kwargs, the episodes per trial, the paper's numbers
    (by agent name) and our reference cells."""

    env: str
    env_kwargs: dict[str, Any]
    episodes: int
    paper: dict[str, float]
    cells: tuple[Cell, ...]


# UCB1 tuned on other tasks (seed 20000): c 0.2 with a Beta(1, 1) prior on every arm, one
# setting for all rows. Without a prior UCB1 must try all 50 arms first, which caps it near 74
# at n=100, k=50, below the paper's 84.3.
BANDIT_AGENTS = (
    Cell("random", "random"),
    Cell("greedy", "greedy"),
    Cell("epsilon-greedy (ε 0.1)", "epsilon-greedy"),
    Cell("ucb1 (c √2)", "ucb1"),
    Cell("ucb1 (c 0.2, Beta(1,1) prior)", "ucb1", {"c": 0.2, "alpha": 1.0, "beta": 1.0}),
    Cell("thompson (Beta(1,1))", "thompson"),
)
ROWS = {
    "n10-k5": Row(
        "bandit",
        {"k": 5},
        10,
        {"random": 5.0, "gittins": 6.6, "thompson": 5.7, "ucb1": 6.7, "rl2": 6.7},
        BANDIT_AGENTS,
    ),
    "n100-k10": Row(
        "bandit",
        {"k": 10},
        100,
        {"random": 49.9, "gittins": 82.8, "thompson": 76.7, "ucb1": 82.4, "rl2": 83.5},
        BANDIT_AGENTS,
    ),
    "n100-k50": Row(
        "bandit",
        {"k": 50},
        100,
        {"random": 49.8, "gittins": 85.2, "thompson": 64.5, "ucb1": 84.3, "rl2": 84.9},
        BANDIT_AGENTS,
    ),
    "mdp-n10": Row(
        "tabular-mdp",
        {},
        10,
        {"random": 100.1, "psrl": 138.1, "rl2": 156.2},
        (Cell("random", "random"), Cell("psrl", "psrl")),
    ),
}


def command(row: Row, cell: Cell | None, tasks: int, seed: int, run_dir: str | None) -> str:
    """The `metarl evaluate` command line of a reference cell, or of an RL² run."""
    common = f"--episodes {row.episodes} --tasks {tasks} --seed {seed}"
    if cell is None:
        return f"metarl evaluate {run_dir} {common}"
    kwargs = f" --env-kwargs '{json.dumps(row.env_kwargs)}'" if row.env_kwargs else ""
    sets = "".join(f" --set {k}={v}" for k, v in cell.config.items())
    return f"metarl evaluate --agent {cell.agent} --env {row.env}{kwargs}{sets} {common}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", action="append", default=[], metavar="ROW=RUN_DIR")
    parser.add_argument("--json", help="also write every result to this JSON file")
    args = parser.parse_args()
    runs = dict(item.split("=", 1) for item in args.run)
    unknown = set(runs) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; the rows are {', '.join(ROWS)}")

    results: dict[str, dict[str, Any]] = {}
    commands = []
    for name, row in ROWS.items():
        cells = {}
        for cell in row.cells:
            cells[cell.label] = evaluate_reference(
                cell.agent,
                row.env,
                row.env_kwargs,
                args.tasks,
                row.episodes,
                args.seed,
                cell.config,
            )
            commands.append(command(row, cell, args.tasks, args.seed, None))
        if name in runs:
            cells["rl2"] = evaluate(Path(runs[name]), args.tasks, 0, args.seed, row.episodes)
            commands.append(command(row, None, args.tasks, args.seed, runs[name]))
        results[name] = cells
        print(f"\n{name} ({row.env} {row.env_kwargs}, {row.episodes} episodes per trial)")
        print("| agent | ours (95% CI) | paper |")
        print("|---|---|---|")
        for label, result in cells.items():
            paper = row.paper.get(result["agent"] if label != "rl2" else "rl2")
            ours = f"{result['mean_total_reward']:.1f} ± {result['total_reward_ci95']:.1f}"
            print(f"| {label} | {ours} | {'' if paper is None else paper} |")
    print("\nCommands:")
    print("\n".join(commands))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
