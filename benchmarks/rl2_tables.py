"""The bandit and tabular-MDP tables of Duan et al. 2016 (benchmarks/README.md) from our own runs.

Every cell is `metarl evaluate` on the same held-out tasks (drawn with --seed): the reference
agents through `--agent`, RL² through its trained run folder. Prints a Markdown table (ours ± 95%
CI, the paper's number beside it) and the CLI command behind each cell.

    python benchmarks/rl2_tables.py --tasks 500 --seed 0 [--rows n10-k5,mdp-n10,...] \\
        --run n10-k5=RUN_DIR --run n100-k10=RUN_DIR --run n100-k50=RUN_DIR --run mdp-n10=RUN_DIR

Rows: every (n, k) of Table 1 (`n10-k5` ... `n500-k50`) and every n of Table 2 (`mdp-n10` ...
`mdp-n100`), each with the paper's numbers (transcribed from its two tables).
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
PAPER_BANDITS = {  # Duan et al. 2016, Table 1: (n, k) → random, Gittins, TS, UCB1, RL²
    (10, 5): (5.0, 6.6, 5.7, 6.7, 6.7),
    (10, 10): (5.0, 6.6, 5.5, 6.7, 6.7),
    (10, 50): (5.1, 6.5, 5.2, 6.6, 6.8),
    (100, 5): (49.9, 78.3, 74.7, 78.0, 78.7),
    (100, 10): (49.9, 82.8, 76.7, 82.4, 83.5),
    (100, 50): (49.8, 85.2, 64.5, 84.3, 84.9),
    (500, 5): (249.8, 405.8, 402.0, 405.8, 401.6),
    (500, 10): (249.0, 437.8, 429.5, 437.1, 432.5),
    (500, 50): (249.6, 463.7, 427.2, 457.6, 438.9),
}
PAPER_MDPS = {  # Table 2, 10-step episodes: n episodes → random, PSRL, RL²
    10: (100.1, 138.1, 156.2),
    25: (250.2, 408.8, 445.7),
    50: (499.7, 904.4, 936.1),
    75: (749.9, 1417.1, 1428.8),
    100: (999.4, 1939.5, 1913.7),
}
BANDIT_KEYS = ("random", "gittins", "thompson", "ucb1", "rl2")
ROWS = {
    **{
        f"n{n}-k{k}": Row(
            "bandit", {"k": k}, n, dict(zip(BANDIT_KEYS, paper, strict=True)), BANDIT_AGENTS
        )
        for (n, k), paper in PAPER_BANDITS.items()
    },
    **{
        f"mdp-n{n}": Row(
            "tabular-mdp",
            {},
            n,
            dict(zip(("random", "psrl", "rl2"), paper, strict=True)),
            (Cell("random", "random"), Cell("psrl", "psrl")),
        )
        for n, paper in PAPER_MDPS.items()
    },
}
"""Every row of the paper's two tables, keyed as `--run` and `--rows` name them."""


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
    parser.add_argument(
        "--rows", help="comma-separated rows to compute (default: every row; see ROWS)"
    )
    parser.add_argument("--json", help="also write every result to this JSON file")
    args = parser.parse_args()
    runs = dict(item.split("=", 1) for item in args.run)
    chosen = args.rows.split(",") if args.rows else list(ROWS)
    unknown = (set(runs) | set(chosen)) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; the rows are {', '.join(ROWS)}")

    results: dict[str, dict[str, Any]] = {}
    commands = []
    for name in chosen:
        row = ROWS[name]
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
