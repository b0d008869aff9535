"""Learning curves of one or more runs against env steps (docs/architecture.md §7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metarl.cli.compare import draw_adaptation
from metarl.cli.report import read_result, save_figure
from metarl.training.logger import experience_column, read_progress

# progress column → (label, line style): dashed before adaptation, dotted at a trial's end.
CURVES = {
    "pre_return": ("pre-adaptation", "--"),
    "post_return": ("post-adaptation", "-"),
    "first_episode_return": ("first episode of the trial", "--"),
    "last_episode_return": ("last episode of the trial", ":"),
    "prior_return": ("prior z (collection)", "--"),
    "posterior_return": ("posterior z (collection)", "-"),
    "test_return": ("held-out trials, last episode", ":"),
    "return": ("mean episode return", "-"),
}

FEWSHOT_CURVES = {
    "accuracy": {
        "pre_accuracy": ("before adaptation", "--"),
        "post_accuracy": ("after adaptation", "-"),
    },
    "loss": {"pre_loss": ("before adaptation", "--"), "post_loss": ("after adaptation", "-")},
}
"""A few-shot run's query curves (`metarl.fewshot`): accuracy where the tasks are
classification, else loss."""

Y_LABELS = {"return": "mean episode return", "accuracy": "query accuracy", "loss": "query loss"}
X_LABELS = {"env_steps": "env steps", "examples": "labelled examples"}

FORMATS = (".png", ".pdf", ".svg")
"""The figure formats `-o` takes, by suffix (none: `.png` is added)."""


def plot(run_dirs: Sequence[Path], out_file: Path) -> Path:
    """Plot each run's pre-/post-adaptation return (or return) against env steps into one PNG:
    one colour per run, dashed before adaptation (`CURVES` gives each line style). Few-shot
    runs plot their query accuracy (or loss) against labelled examples; the runs of one figure
    must share what they plot."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    kinds = set()
    for index, run_dir in enumerate(map(Path, run_dirs)):
        rows = read_progress(run_dir / "progress.csv")
        if not rows:
            raise ValueError(f"{run_dir} has no progress.csv rows to plot")
        kind, table = _curves_of(rows[0])
        curves = [key for key in table if key in rows[0]]
        if not curves:
            raise ValueError(
                f"{run_dir}/progress.csv has none of the return columns {', '.join(CURVES)}"
            )
        x = experience_column(rows[0])
        kinds.add((kind, x))
        if len(kinds) > 1:
            raise ValueError(
                f"{run_dir} plots {kind} against {X_LABELS[x]}, unlike the runs before it: "
                "plot RL runs and few-shot runs (or classification and regression) apart"
            )
        for key in curves:
            label, style = table[key]
            # Columns measured every few iterations (PEARL's test_return) are NaN in between.
            points = [(r[x], r[key]) for r in rows if math.isfinite(r[key])]
            if points:
                steps, values = zip(*points, strict=True)
                axes.plot(steps, values, style, color=f"C{index}", label=f"{run_dir.name}: {label}")
    if not axes.lines:
        raise ValueError("no finite returns to plot yet: train for more iterations")
    ((kind, x),) = kinds
    axes.set(xlabel=X_LABELS[x], ylabel=Y_LABELS[kind])
    return _save(figure, axes, out_file)


def _curves_of(row: dict) -> tuple[str, dict[str, tuple[str, str]]]:
    """What a progress row plots ('return', 'accuracy' or 'loss') and its curves' table."""
    for kind, table in FEWSHOT_CURVES.items():
        if any(key in row for key in table):
            return kind, table
    return "return", CURVES


def plot_adaptation(sources: Sequence[Path], out_file: Path) -> Path:
    """Plot the `metarl evaluate` results of runs (their `eval/adaptation.json`) or of result
    folders against env steps of adaptation experience, the x-axis every agent shares: the
    figure `metarl compare` draws (`draw_adaptation`)."""
    curves, envs, tasks = [], set(), set()
    results = [_result_of(Path(source)) for source in sources]
    fewshot = ["mean_loss" in result for result in results]
    if any(fewshot):
        if not all(fewshot):
            raise ValueError("plot --adaptation draws RL and few-shot results apart")
        return _plot_fewshot_adaptation(sources, results, out_file)
    for source, result in zip(map(Path, sources), results, strict=True):
        envs.add(result["env"])
        tasks.add(result["tasks"])
        curve = {
            "label": f"{result['agent']} ({source.name})",
            "unit": "inner steps" if result["axis"] == "adapt_steps" else "episodes",
            "env_steps": result["adaptation_env_steps"],
            "mean_return": result["mean_return"],
            "ci95": result["ci95"],
        }
        if "success_rate" in result:
            curve |= {k: result[k] for k in ("success_rate", "success_ci95")}
        curves.append(curve)
    where = ", ".join(sorted(envs))
    count = f"{tasks.pop()} held-out tasks" if len(tasks) == 1 else "held-out tasks"
    figure = draw_adaptation(curves, f"Adaptation on {where}: {count}")
    out_file = figure_path(out_file)
    save_figure(figure, out_file)
    return out_file


def _result_of(source: Path) -> dict:
    """The `metarl evaluate` result of a run folder, a result folder or an adaptation.json."""
    candidates = [source, source / "adaptation.json", source / "eval" / "adaptation.json"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise ValueError(f"{source} has no adaptation.json: run `metarl evaluate` first")
    return read_result(path)


def _plot_fewshot_adaptation(sources: Sequence[Path], results: list[dict], out_file: Path) -> Path:
    """Few-shot results: query accuracy (or loss, for regression) after each number of steps
    (a metric learner's one point at its shots), with 95% CIs, one colour per result and its
    scratch baseline dashed in the same colour."""
    metric = "accuracy" if all("mean_accuracy" in r for r in results) else "loss"
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for index, (source, result) in enumerate(zip(map(Path, sources), results, strict=True)):
        x = result["adapt_steps"] if result["axis"] == "adapt_steps" else [0]
        color = f"C{index}"
        label = f"{result['agent']} ({source.name})"
        axes.errorbar(
            x,
            result[f"mean_{metric}"],
            yerr=result[f"{metric}_ci95"],
            marker="o",
            capsize=3,
            color=color,
            label=label,
        )
        axes.axhline(result["scratch"][f"mean_{metric}"][0], ls="--", color=color, lw=0.8)
    axes.set(
        xlabel="adaptation steps (metric learners: at 0)",
        ylabel=f"query {metric}",
        title="held-out tasks; dashed: each run's scratch baseline",
    )
    return _save(figure, axes, out_file)


def figure_path(out_file: Path) -> Path:
    """`out_file` with `.png` added if it has no suffix; a one-line `ValueError` for a suffix
    that is not one of `FORMATS`."""
    out_file = Path(out_file)
    if not out_file.suffix:
        return out_file.with_name(out_file.name + ".png")
    if out_file.suffix.lower() not in FORMATS:
        raise ValueError(f"-o {out_file}: the figure formats are {', '.join(FORMATS)}")
    return out_file


def _save(figure: Figure, axes: Axes, out_file: Path) -> Path:
    """Legend, grid, and the figure written to `out_file` (its format by its suffix)."""
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    out_file = figure_path(out_file)
    save_figure(figure, out_file)
    return out_file
