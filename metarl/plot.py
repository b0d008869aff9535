"""Learning curves of one or more runs against env steps (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from metarl.logger import read_progress

CURVES = {"pre_return": "pre-adaptation", "post_return": "post-adaptation", "return": "return"}


def plot(run_dirs: Sequence[Path], out_file: Path) -> Path:
    """Plot each run's pre-/post-adaptation return (or return) against env steps into one PNG:
    one colour per run, dashed before adaptation, solid after."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, run_dir in enumerate(map(Path, run_dirs)):
        rows = read_progress(run_dir / "progress.csv")
        if not rows:
            raise ValueError(f"{run_dir} has no progress.csv rows to plot")
        steps = [row["env_steps"] for row in rows]
        for key, label in CURVES.items():
            if key in rows[0]:
                style = "--" if key == "pre_return" else "-"
                values = [row[key] for row in rows]
                name = f"{run_dir.name}: {label}"
                axes.plot(steps, values, style, color=f"C{index}", label=name)
    axes.set(xlabel="env steps", ylabel="mean episode return")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_file, dpi=120)
    plt.close(figure)
    return Path(out_file)
