"""`metarl compare`'s folder: the task list, the table (Markdown, CSV, JSON) and the plot of
every curve against env steps of adaptation experience (docs/architecture.md §7).

The plot is the one `metarl plot --adaptation` draws too (`draw_adaptation`): a linear x-axis
of env steps per task, a 95% CI band around each curve, the success rate in a second panel
where the env reports one, and a title naming the env and the task count.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from metarl.cli.report import save_figure
from metarl.training.checkpoint import make_folder, write_atomically
from metarl.training.compare import META_UNITS

FILES = ("tasks.json", "comparison.json", "comparison.csv", "comparison.md", "comparison.png")
"""What `write_comparison` puts in its folder."""


def write_comparison(out_dir: Path, result: dict[str, Any], tasks_json: bytes) -> list[Path]:
    """The comparison `result` (`metarl.training.compare.compare`) and its task list in
    `out_dir`, each file written atomically; returns their paths."""
    out_dir = make_folder(out_dir)
    files = {
        "tasks.json": tasks_json,
        "comparison.json": json.dumps(result, indent=1).encode(),
        "comparison.csv": _csv(result).encode(),
        "comparison.md": markdown_table(result).encode(),
    }
    for name, data in files.items():
        write_atomically(out_dir / name, lambda file, data=data: file.write(data))
    title = f"Adaptation on {result['env']}: {result['tasks']} held-out tasks"
    figure = draw_adaptation(result["curves"], title)
    save_figure(figure, out_dir / "comparison.png")
    return [out_dir / name for name in FILES]


def draw_adaptation(curves: list[dict[str, Any]], title: str) -> Figure:
    """Return (and success rate, where every curve that has one shares the panel) against env
    steps of adaptation experience per task, each curve with its 95% CI band; meta-learners
    solid, baselines dashed."""
    success = [c for c in curves if "success_rate" in c]
    figure = Figure(figsize=(11 if success else 7, 4.5))
    panels = figure.subplots(1, 2 if success else 1, squeeze=False)[0]
    series = [("mean_return", "ci95", "mean return (95% CI)", curves)]
    if success:
        series.append(("success_rate", "success_ci95", "success rate (95% CI)", success))
    for axes, (key, ci_key, label, drawn) in zip(panels, series, strict=True):
        for index, curve in enumerate(drawn):
            x = curve["env_steps"]
            mean, ci = curve[key], curve[ci_key]
            style = "-" if curve["unit"] in META_UNITS else "--"
            marker = "o" if len(x) <= 15 else None  # a long trial's points as a line
            axes.plot(x, mean, style, marker=marker, color=f"C{index}", label=curve["label"])
            low = [m - c for m, c in zip(mean, ci, strict=True)]
            high = [m + c for m, c in zip(mean, ci, strict=True)]
            axes.fill_between(x, low, high, color=f"C{index}", alpha=0.15, linewidth=0)
        axes.set(xlabel="env steps of adaptation experience per task", ylabel=label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def markdown_table(result: dict[str, Any]) -> str:
    """One row per curve: return (and success) before adapting and at the budget."""
    success = any("success_rate" in c for c in result["curves"])
    head = ["curve", "adapts by", "points", "env steps used", "return before", "return after"]
    head += ["success before", "success after"] if success else []
    lines = [
        f"Adaptation on {result['env']}, {result['tasks']} held-out tasks (seed "
        f"{result['task_seed']}), budget {result['budget']} env steps per task, horizon "
        f"{result['horizon']}; ± is the 95% CI over tasks.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for curve in result["curves"]:
        row = [
            curve["label"],
            curve["unit"],
            str(len(curve["env_steps"])),
            str(curve["env_steps"][-1]),
            _pm(curve["mean_return"][0], curve["ci95"][0]),
            _pm(curve["mean_return"][-1], curve["ci95"][-1]),
        ]
        if success:
            if "success_rate" in curve:
                rate, ci = curve["success_rate"], curve["success_ci95"]
                row += [
                    _pm(100 * rate[0], 100 * ci[0], "%"),
                    _pm(100 * rate[-1], 100 * ci[-1], "%"),
                ]
            else:
                row += ["–", "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _pm(value: float, ci: float, unit: str = "") -> str:
    return f"{value:.2f}{unit} ± {ci:.2f}"


def _csv(result: dict[str, Any]) -> str:
    """Long form: one row per (curve, point)."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    columns = ["label", "agent", "source", "unit", "point", "env_steps", "mean_return", "ci95"]
    columns += ["success_rate", "success_ci95"]
    writer.writerow(columns)
    for curve in result["curves"]:
        for point, steps in enumerate(curve["env_steps"]):
            row = [curve[k] for k in ("label", "agent", "source", "unit")]
            row += [point, steps, curve["mean_return"][point], curve["ci95"][point]]
            if "success_rate" in curve:
                row += [curve["success_rate"][point], curve["success_ci95"][point]]
            else:
                row += ["", ""]
            writer.writerow(row)
    return table.getvalue()
