"""An evaluation result written out: `adaptation.json`, `.csv` (one row per point) and `.png`.

Plots use matplotlib's object-oriented `Figure`, which renders a PNG without selecting a
global backend, so importing metarl never changes a user's matplotlib setup.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from metarl.training.checkpoint import write_atomically

AXIS_LABELS = {"adapt_steps": "adaptation steps", "episode": "episode of the trial"}
"""The x-axis of each kind of result: gradient steps (MAML family) or episodes of a trial."""


def write_result(out_dir: Path, result: dict[str, Any]) -> None:
    """`adaptation.json`, `.csv` and `.png` (return with its 95% CI) in `out_dir`, each
    written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1).encode()
    write_atomically(out_dir / "adaptation.json", lambda file: file.write(text))
    axis = result["axis"]
    columns = [axis, "adaptation_env_steps", "mean_return", "ci95"]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(result[c] for c in columns), strict=True))
    csv_bytes = table.getvalue().encode()
    write_atomically(out_dir / "adaptation.csv", lambda file: file.write(csv_bytes))
    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    axes.errorbar(result[axis], result["mean_return"], yerr=result["ci95"], marker="o", capsize=4)
    title = f"{result['agent']} on {result['env']}\n{result['tasks']} held-out tasks"
    if "mean_total_reward" in result:
        title += f", total {result['mean_total_reward']:.1f} ± {result['total_reward_ci95']:.1f}"
    axes.set(xlabel=AXIS_LABELS[axis], ylabel="mean return (95% CI)", title=title)
    if len(result[axis]) <= 20:
        axes.set_xticks(result[axis])
    figure.tight_layout()
    save_png(figure, out_dir / "adaptation.png")


def save_png(figure: Figure, path: Path) -> None:
    """`figure` as a 120-dpi PNG at `path`, written atomically."""
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    data = image.getvalue()
    write_atomically(Path(path), lambda file: file.write(data))
