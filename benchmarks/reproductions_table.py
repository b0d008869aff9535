"""The table of every reproduction, from its committed reference runs, for benchmarks/README.md.

    python benchmarks/reproductions_table.py [--out benchmarks/reproductions.md] [--plots]

For each reproduction of `benchmarks/reproductions/` it reads the reference runs' rows and
prints one Markdown row per metric: the setting (agent, env, iterations), the seeds, the env
steps and wall time of one run (mean over the seeds), the metric's final value (the trailing
mean over the reproduction's `window` last iterations of each seed) as mean ± 95% CI across
seeds (Student's t), and the paper's value where the reproduction names one. A reproduction
with no reference yet gets a row saying so, so that the table lists what is still to run.
`--plots` also draws each reproduction's reference seeds (smoothed) in their band.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy.stats import t

from metarl.cli.report import save_figure
from metarl.cli.reproduce import check_record, draw_bands, list_reproductions
from metarl.training.reproduce import check_rows, load_reference, smooth

BENCHMARKS = Path(__file__).resolve().parent


def final_values(rows: list[dict], metric: str, window: int) -> float:
    """The trailing mean over `window` of a run's last finite values of `metric`."""
    values = np.array([r[metric] for r in rows], dtype=float)
    values = values[np.isfinite(values)]
    return float(smooth(values, window)[-1])


def table(benchmarks: Path, plots: bool = False) -> str:
    """The Markdown table of every reproduction in `benchmarks` (`plots`: also each one's
    reference seeds in their band, `benchmarks/reproductions/NAME.png`)."""
    lines = [
        "| reproduction | setting | seeds | env steps / run | wall time / run | metric | ours: "
        "final (mean ± 95% CI over seeds) | paper |",
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for repro in list_reproductions(benchmarks):
        setting = f"`{repro.agent}` on `{repro.env}`, {repro.iterations} iterations"
        if not repro.references:
            lines.append(
                f"| {repro.name} | {setting} | – | – | – | {', '.join(repro.metrics)} | "
                f"not run yet | {repro.paper or '–'} |"
            )
            continue
        reference = load_reference(repro, benchmarks / "results", repro.iterations)
        runs = [reference.rows[s] for s in reference.seeds]
        if plots:
            checks = check_rows(repro, reference, reference.rows, quick=False)
            record = check_record(repro, reference.seeds, checks, False)
            save_figure(draw_bands(record), benchmarks / "reproductions" / f"{repro.name}.png")
        steps = np.mean([rows[-1]["env_steps"] for rows in runs])
        minutes = np.mean([rows[-1]["wall_time"] for rows in runs]) / 60
        seeds = ", ".join(map(str, reference.seeds))
        for index, metric in enumerate(repro.metrics):
            finals = np.array([final_values(rows, metric, repro.window) for rows in runs])
            half = t.ppf(0.975, len(finals) - 1) * finals.std(ddof=1) / math.sqrt(len(finals))
            first = index == 0
            lines.append(
                f"| {repro.name if first else ''} | {setting if first else ''} | "
                f"{seeds if first else ''} | {f'{steps:,.0f}' if first else ''} | "
                f"{f'{minutes:.1f} min' if first else ''} | {metric} | "
                f"{finals.mean():.2f} ± {half:.2f} | {(repro.paper or '–') if first else ''} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS)
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--plots", action="store_true", help="also draw reproductions/NAME.png for each"
    )
    args = parser.parse_args()
    text = table(args.benchmarks, args.plots)
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
