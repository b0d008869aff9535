"""Per-iteration metrics to stdout, `progress.csv` and TensorBoard (docs/architecture.md §7).

Both files are views of the rows the checkpoint carries: `progress.csv` is rewritten atomically
after every row, and a resumed run rewrites it and the TensorBoard events from its checkpoint's
rows, so neither ever holds a torn, missing or repeated row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from metarl.training.checkpoint import EXPERIENCE_COLUMNS, write_atomically

Row = dict[str, int | float]
"""One iteration's values: `iteration` and the experience (`env_steps` or `examples`) are ints,
the rest floats."""

INTEGER_COLUMNS = ("iteration", *EXPERIENCE_COLUMNS)
"""The columns written as integers (every other column is a float)."""


def experience_column(row: Row) -> str:
    """The experience column of a progress row: `env_steps` or `examples`."""
    return next(key for key in EXPERIENCE_COLUMNS if key in row)


class Logger:
    """Writes one row per iteration. The columns are fixed by the first row."""

    def __init__(self, run_dir: Path, rows: Sequence[Row] = ()) -> None:
        """Continue a run whose checkpoint holds `rows` (none: a fresh run): `progress.csv` and
        the TensorBoard events are rewritten to exactly those rows."""
        self.path = Path(run_dir) / "progress.csv"
        self.rows = [dict(row) for row in rows]
        self.columns: list[str] | None = list(self.rows[0]) if self.rows else None
        if self.rows or self.path.exists():
            write_progress(self.path, self.rows)
        self.tensorboard = _fresh_tensorboard(Path(run_dir) / "tensorboard", self.rows)
        self.pending: list[Row] = []  # added, not yet written

    def log(self, row: Row, *, write: bool = True) -> None:
        """Add `row` (it must have the first row's keys); with `write`, write it out (`write`)."""
        if self.columns is None:
            self.columns = list(row)
        if set(row) != set(self.columns):
            raise ValueError(f"metrics {sorted(row)} differ from the columns {self.columns}")
        self.rows.append(dict(row))
        self.pending.append(dict(row))
        if write:
            self.write()

    def write(self) -> None:
        """Write the rows added since the last write: `progress.csv`, their TensorBoard points,
        and the newest of them on one stdout line."""
        if not self.pending:
            return
        write_progress(self.path, self.rows)
        for row in self.pending:
            _add_scalars(self.tensorboard, row)
        tqdm.write("  ".join(f"{key} {_format(value)}" for key, value in self.pending[-1].items()))
        self.pending = []

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.tensorboard.close()


def progress_text(rows: Sequence[Row]) -> str:
    """`rows` as CSV text: a header of the first row's keys, then one line per row."""
    if not rows:
        return ""
    table = io.StringIO()
    writer = csv.DictWriter(table, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return table.getvalue()


def write_progress(path: Path, rows: Sequence[Row]) -> None:
    """`rows` to `path` as CSV, atomically."""
    data = progress_text(rows).encode()
    write_atomically(Path(path), lambda file: file.write(data))


def read_progress(path: Path) -> list[Row]:
    """The rows of a `progress.csv` (no file: no rows), `INTEGER_COLUMNS` as ints and the rest
    as floats; a one-line `ValueError` naming the file and line if it is not such a table."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a metarl progress.csv (not text)") from None
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise ValueError("wrong number of fields")
            rows.append({key: _number(key, value) for key, value in row.items()})
    except (ValueError, csv.Error) as error:
        raise ValueError(
            f"{path} is not a metarl progress.csv (line {reader.line_num}: {error})"
        ) from None
    if rows and not ("iteration" in rows[0] and any(key in rows[0] for key in EXPERIENCE_COLUMNS)):
        raise ValueError(f"{path} is not a metarl progress.csv (no iteration/env_steps columns)")
    return rows


def _number(key: str, text: str) -> int | float:
    """A CSV field as the column's type."""
    value = float(text)
    if key in INTEGER_COLUMNS:
        if not value.is_integer():
            raise ValueError(f"{key} {text!r} is not an integer")
        return int(value)
    return value


def _fresh_tensorboard(folder: Path, rows: Sequence[Row]) -> SummaryWriter:
    """A writer on a new event file holding exactly `rows`; the folder's older event files
    (whose last points may be torn or ahead of the checkpoint) are removed once it is flushed."""
    older = list(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []
    writer = SummaryWriter(str(folder))
    for row in rows:
        _add_scalars(writer, row)
    writer.flush()
    for path in older:
        path.unlink(missing_ok=True)
    return writer


def _add_scalars(writer: SummaryWriter, row: Row) -> None:
    """One TensorBoard point per column of `row`, against its experience (env steps or
    examples)."""
    step = int(row[experience_column(row)])
    for key, value in row.items():
        writer.add_scalar(key, value, step)


def _format(value: float) -> str:
    """A fixed-width number, so that the fields of successive stdout lines line up."""
    finite = isinstance(value, int) or math.isfinite(value)
    text = f"{int(value)}" if finite and float(value).is_integer() else f"{value:.4g}"
    return f"{text:>10}"
