"""Per-iteration metrics to stdout, `progress.csv` and TensorBoard (docs/architecture.md §7)."""

from __future__ import annotations

import csv
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


class Logger:
    """Writes one row per iteration. The CSV's columns are fixed by its first row; a resumed
    run appends to the same file after truncating it to the rows its checkpoint covers."""

    def __init__(self, run_dir: Path, keep_rows: int = 0) -> None:
        """Start `run_dir/progress.csv` afresh, keeping only its first `keep_rows` rows (0:
        none), and open TensorBoard's writer on `run_dir/tensorboard`."""
        self.path = run_dir / "progress.csv"
        rows = read_progress(self.path)[:keep_rows] if keep_rows else []
        self.columns: list[str] | None = list(rows[0]) if rows else None
        with open(self.path, "w", newline="") as file:
            if rows:
                writer = csv.DictWriter(file, self.columns)
                writer.writeheader()
                writer.writerows(rows)
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, row: dict[str, float]) -> None:
        """Append `row` (it must have the first row's keys) and show it on one stdout line."""
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "a", newline="") as file:
                csv.DictWriter(file, self.columns).writeheader()
        if set(row) != set(self.columns):
            raise ValueError(f"metrics {sorted(row)} differ from the columns {self.columns}")
        with open(self.path, "a", newline="") as file:
            csv.DictWriter(file, self.columns).writerow(row)
        step = int(row["env_steps"])
        for key, value in row.items():
            self.tensorboard.add_scalar(key, value, step)
        tqdm.write("  ".join(f"{key} {_format(value)}" for key, value in row.items()))

    def close(self) -> None:
        """Close the TensorBoard writer (the CSV is opened and closed for each row)."""
        self.tensorboard.close()


def read_progress(path: Path) -> list[dict[str, float]]:
    """The rows of a `progress.csv` as floats (no file: no rows)."""
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]


def _format(value: float) -> str:
    """A fixed-width number, so that the fields of successive stdout lines line up."""
    text = f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"
    return f"{text:>10}"
