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

import gymnasium as gym
from matplotlib.figure import Figure

from metarl.training.checkpoint import make_folder, write_atomically
from metarl.training.run_folder import Run

AXIS_LABELS = {"adapt_steps": "adaptation steps", "episode": "episode of the trial"}
"""The x-axis of each kind of result: gradient steps (MAML family) or episodes of a trial."""


def write_result(out_dir: Path, result: dict[str, Any]) -> None:
    """`adaptation.json`, `.csv` and `.png` (return with its 95% CI, and the success rate
    beside it where the env reports success) in `out_dir`, each written atomically."""
    out_dir = make_folder(out_dir)
    text = json.dumps(result, indent=1).encode()
    write_atomically(out_dir / "adaptation.json", lambda file: file.write(text))
    if "mean_loss" in result:
        _write_fewshot(out_dir, result)
        return
    axis = result["axis"]
    success = "success_rate" in result
    columns = [axis, "adaptation_env_steps", "mean_return", "ci95"]
    columns += ["success_rate", "success_ci95"] if success else []
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(result[c] for c in columns), strict=True))
    csv_bytes = table.getvalue().encode()
    write_atomically(out_dir / "adaptation.csv", lambda file: file.write(csv_bytes))
    figure = Figure(figsize=(9 if success else 5, 3.5))
    panels = figure.subplots(1, 2 if success else 1, squeeze=False)[0]
    title = f"{result['agent']} on {result['env']}\n{result['tasks']} held-out tasks"
    if "mean_total_reward" in result:
        title += f", total {result['mean_total_reward']:.1f} ± {result['total_reward_ci95']:.1f}"
    series = [("mean_return", "ci95", "mean return (95% CI)")]
    series += [("success_rate", "success_ci95", "success rate (95% CI)")] if success else []
    for axes, (values, ci, label) in zip(panels, series, strict=True):
        axes.errorbar(result[axis], result[values], yerr=result[ci], marker="o", capsize=4)
        axes.set(xlabel=AXIS_LABELS[axis], ylabel=label, title=title)
        if len(result[axis]) <= 20:
            axes.set_xticks(result[axis])
    figure.tight_layout()
    save_figure(figure, out_dir / "adaptation.png")


def _write_fewshot(out_dir: Path, result: dict[str, Any]) -> None:
    """A few-shot evaluation's `adaptation.csv` (one row per point, the scratch baseline's
    columns beside) and `.png` (query loss, and accuracy for classification, with 95% CIs; the
    scratch baseline as a dashed line)."""
    axis = result["axis"]
    metrics = ["loss"] + (["accuracy"] if "mean_accuracy" in result else [])
    columns = [axis]
    rows = [[x] for x in result[axis]]
    for metric in metrics:
        columns += [
            f"mean_{metric}",
            f"{metric}_ci95",
            f"scratch_{metric}",
            f"scratch_{metric}_ci95",
        ]
        for i, row in enumerate(rows):
            scratch = result["scratch"]
            row += [result[f"mean_{metric}"][i], result[f"{metric}_ci95"][i]]
            row += [scratch[f"mean_{metric}"][0], scratch[f"{metric}_ci95"][0]]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    csv_bytes = table.getvalue().encode()
    write_atomically(out_dir / "adaptation.csv", lambda file: file.write(csv_bytes))
    figure = Figure(figsize=(4.5 * len(metrics), 3.5))
    panels = figure.subplots(1, len(metrics), squeeze=False)[0]
    title = f"{result['agent']} on {result['env']}\n{result['tasks']} held-out tasks"
    for axes, metric in zip(panels, metrics, strict=True):
        x = result[axis]
        axes.errorbar(
            x,
            result[f"mean_{metric}"],
            yerr=result[f"{metric}_ci95"],
            marker="o",
            capsize=4,
            label=result["agent"],
        )
        axes.axhline(
            result["scratch"][f"mean_{metric}"][0],
            ls="--",
            color="grey",
            label="scratch (trained on the support set)",
        )
        xlabel = "adaptation steps" if axis == "adapt_steps" else "shots"
        axes.set(xlabel=xlabel, ylabel=f"query {metric} (95% CI)", title=title)
        axes.set_xticks(x)
        axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, out_dir / "adaptation.png")


def save_figure(figure: Figure, path: Path) -> None:
    """`figure` at `path` (PNG at 120 dpi, or the vector format its suffix names), written
    atomically."""
    image = io.BytesIO()
    figure.savefig(image, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=120)
    data = image.getvalue()
    write_atomically(Path(path), lambda file: file.write(data))


def read_result(path: Path) -> dict[str, Any]:
    """An `adaptation.json` as today's result dict (an RL or a few-shot one): a one-line
    `ValueError` if it is not one, and results written by metarl 0.1.0 before `axis` existed
    (gradient-step results only) upgraded with their `axis`, `env_kwargs` and
    `adaptation_env_steps` (k × episodes per task × horizon, the horizon from the run folder's
    config, else the env's registered one)."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an evaluation result ({error})") from None
    if isinstance(result, dict) and {"agent", "env", "mean_loss", "scratch"} <= set(result):
        return result  # a few-shot result (metarl.fewshot): written in today's format only
    if not isinstance(result, dict) or not {"agent", "env", "mean_return", "ci95"} <= set(result):
        raise ValueError(f"{path} is not an evaluation result (no agent, env, mean_return, ci95)")
    if "axis" in result:
        return result
    if "adapt_steps" not in result or "episodes_per_task" not in result:
        raise ValueError(f"{path} is an evaluation result of an unknown format (no axis)")
    horizon = _recorded_horizon(path) or gym.spec(result["env"]).max_episode_steps
    per_step = result["episodes_per_task"] * horizon
    steps = [k * per_step for k in result["adapt_steps"]]
    return {"env_kwargs": {}, **result, "axis": "adapt_steps", "adaptation_env_steps": steps}


def _recorded_horizon(path: Path) -> int | None:
    """The horizon in the config of the run folder holding `path` (`RUN/eval/adaptation.json`),
    if any."""
    run_dir = path.parent.parent
    if path.parent.name != "eval" or not (run_dir / "config.yaml").is_file():
        return None
    return Run.load(run_dir).config.get("horizon")
