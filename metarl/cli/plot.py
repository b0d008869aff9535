"""Learning curves of one or more runs against env steps (docs/architecture.md §7)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metarl.cli.report import AXIS_LABELS, save_png
from metarl.training.logger import read_progress

# progress column → (label, line style): dashed before adaptation, dotted at a trial's end.
CURVES = {
    "pre_return": ("pre-adaptation", "--"),
    "post_return": ("post-adaptation", "-"),
    "first_episode_return": ("first episode of the trial", "--"),
    "last_episode_return": ("last episode of the trial", ":"),
    "return": ("mean episode return", "-"),
}


def plot(run_dirs: Sequence[Path], out_file: Path) -> Path:
    """Plot each run's pre-/post-adaptation return (or return) against env steps into one PNG:
    one colour per run, dashed before adaptation (`CURVES` gives each line style)."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for index, run_dir in enumerate(map(Path, run_dirs)):
        rows = read_progress(run_dir / "progress.csv")
        if not rows:
            raise ValueError(f"{run_dir} has no progress.csv rows to plot")
        steps = [row["env_steps"] for row in rows]
        for key, (label, style) in CURVES.items():
            if key in rows[0]:
                values = [row[key] for row in rows]
                name = f"{run_dir.name}: {label}"
                axes.plot(steps, values, style, color=f"C{index}", label=name)
    axes.set(xlabel="env steps", ylabel="mean episode return")
    return _save(figure, axes, out_file)


def plot_adaptation(sources: Sequence[Path], out_file: Path) -> Path:
    """Plot the `metarl evaluate` results of runs (their `eval/adaptation.json`) or of result
    folders against env steps of adaptation experience, the x-axis every agent shares."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for source in map(Path, sources):
        candidates = [source, source / "adaptation.json", source / "eval" / "adaptation.json"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ValueError(f"{source} has no adaptation.json: run `metarl evaluate` first")
        result = json.loads(path.read_text())
        label = f"{result['agent']} on {result['env']} ({AXIS_LABELS[result['axis']]})"
        axes.errorbar(
            result["adaptation_env_steps"],
            result["mean_return"],
            yerr=result["ci95"],
            marker="o",
            capsize=3,
            label=label,
        )
    axes.set_xscale("symlog", linthresh=1)
    axes.set(xlabel="env steps of adaptation experience per task", ylabel="mean return (95% CI)")
    return _save(figure, axes, out_file)


def _save(figure: Figure, axes: Axes, out_file: Path) -> Path:
    """Legend, grid, and the figure written to `out_file` as a PNG."""
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    save_png(figure, Path(out_file))
    return Path(out_file)
