"""Reproductions: a named benchmark, its committed reference runs, and the check of new runs
against them, point by point (what `metarl reproduce` computes; docs/architecture.md §7).

A reproduction is a YAML file `benchmarks/reproductions/NAME.yaml` naming a training setting
(agent, env, config values, iterations), the columns of `progress.csv` that carry its result
(`metrics`) and its reference runs: committed run folders in `benchmarks/results/` of that very
setting, one per seed. From the references' rows it draws, at every iteration and for every
metric, a **band**: the 95% prediction interval of one more seed's value,

    mean ± t(0.975, n − 1) · s · √(1 + 1/n)      (n reference seeds, s their sample std),

the interval a new run's value falls in 95% of the time if it comes from the same distribution
as the references (normal approximation). Two checks use it:

- **quick** (`--quick`): the first `quick_iterations` iterations of the reference seeds' own
  runs, retrained now. A row equal to the same seed's recorded row in every column but the wall
  time is *identical* (the code is deterministic: a seeded run repeats bit for bit, whatever the
  thread count, on the machine that recorded it; not always on another); any other row must
  have every metric within `QUICK_RTOL` of the recorded one (another CPU's rounding) or inside
  the band. It takes seconds on the small benchmarks, so CI runs it: a change that breaks
  learning moves the early rows out of the band (the tests measure that on a non-learner).
- **full**: whole runs (the reference seeds first, then new ones), each metric smoothed by a
  trailing mean over `window` iterations (for reference and new run alike, since one
  iteration's return is noisy), must lie inside the band at ≥ 90% of the iterations and at
  the last one. A 95% band misses about 5% of points by chance, more where consecutive
  iterations are correlated: 90% leaves room for that, not for a curve that falls behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl.training.logger import INTEGER_COLUMNS, Row, read_progress
from metarl.training.run_folder import Run, differences

FULL_INSIDE = 0.9
"""The fraction of a full run's iterations whose smoothed metric must lie inside the band."""

QUICK_RTOL = 0.05
"""How far (relative) a quick rerun's metric may lie from the same seed's recorded value and
still pass. Another CPU rounds differently (PEARL's first prior return on a second machine:
1.3e-10 relative to the recorded one) and a chaotic learner grows that over the first
iterations (up to 4.6% by PEARL's third, measured), where one iteration's band of three seeds
can be narrower than that; a non-learner is off by tens of percent by its third or fourth."""

UNTIMED = ("wall_time",)
"""The progress columns an identical row may differ in: they measure the machine, not the run."""


@dataclass(frozen=True)
class Reproduction:
    """One named benchmark (`benchmarks/reproductions/NAME.yaml`)."""

    name: str
    """The file's stem: what `metarl reproduce NAME` takes."""
    description: str
    """One line: what the benchmark shows."""
    agent: str
    """Registry name of the agent."""
    env: str
    """Env id or metarl short name."""
    env_kwargs: dict[str, Any]
    """Arguments of `gymnasium.make` (a paper's task range, say)."""
    values: dict[str, Any]
    """Config values: a shipped config's, then `set`'s (no seed: each run has its own)."""
    iterations: int
    """Iterations of a full run, and of the reference curves compared."""
    metrics: tuple[str, ...]
    """The progress columns compared point by point."""
    references: tuple[str, ...]
    """Reference run folders (names in `benchmarks/results/`), one per seed."""
    quick_iterations: int = 3
    """Iterations `--quick` retrains of each reference seed."""
    window: int = 1
    """Iterations of the trailing mean a full check smooths each curve with."""
    paper: str = ""
    """The published value this benchmark reproduces, if one exists (shown by `--list`)."""

    def record(self, seed: int, iterations: int | None = None) -> Run:
        """The run record of this setting with `seed`, for `iterations` (default: the full
        run's)."""
        values = {**self.values, "seed": seed, "iterations": iterations or self.iterations}
        return Run.create(self.agent, self.env, values, self.env_kwargs)


@dataclass
class Reference:
    """The reference runs of a reproduction, read from their folders."""

    seeds: list[int]
    """Each reference run's seed, in the reproduction's order."""
    rows: dict[int, list[Row]]
    """Each seed's progress rows, the first `Reproduction.iterations` of them."""


def load_reference(repro: Reproduction, results: Path, iterations: int) -> Reference:
    """The first `iterations` rows of every reference run in `results/`, after checking that
    each ran this reproduction's setting (any other config value is a one-line `ValueError`
    naming it: a band of another setting says nothing about this one)."""
    seeds, rows = [], {}
    for name in repro.references:
        folder = results / name
        recorded = Run.load(folder).with_values({})  # current defaults for keys added since
        seed = recorded.config["seed"]
        expected = repro.record(seed, recorded.config["iterations"])
        different = differences(expected, recorded)
        if different:
            raise ValueError(f"reference {folder} ran another setting: {different}")
        if seed in rows:
            raise ValueError(f"references {repro.name}: two runs have seed {seed}")
        progress = read_progress(folder / "progress.csv")
        if len(progress) < iterations:
            raise ValueError(
                f"reference {folder} has {len(progress)} rows; {repro.name} compares {iterations}"
            )
        missing = [m for m in repro.metrics if m not in progress[0]]
        if missing:
            raise ValueError(f"reference {folder}/progress.csv has no column {missing[0]!r}")
        seeds.append(seed)
        rows[seed] = progress[:iterations]
    return Reference(seeds, rows)


@dataclass
class Band:
    """The 95% prediction band of one metric over the reference seeds, per iteration."""

    mean: np.ndarray
    """The reference seeds' mean (NaN where a reference has no finite value)."""
    low: np.ndarray
    """mean − half-width."""
    high: np.ndarray
    """mean + half-width."""


def prediction_band(curves: np.ndarray) -> Band:
    """The band of `curves` `[seeds, points]`: mean ± t(0.975, n − 1) · s · √(1 + 1/n)."""
    from scipy.stats import t

    count = curves.shape[0]
    mean = curves.mean(0)
    half = t.ppf(0.975, count - 1) * curves.std(0, ddof=1) * math.sqrt(1 + 1 / count)
    return Band(mean, mean - half, mean + half)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """The trailing mean of `values` over `window` points (fewer at the start), NaN-free
    input assumed."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


@dataclass
class MetricCheck:
    """One metric of one run against the band."""

    metric: str
    """The progress column."""
    iterations: list[int]
    """The iterations compared (those where every reference value is finite)."""
    values: list[float]
    """The run's (smoothed) values there."""
    mean: list[float]
    """The band's centre there."""
    low: list[float]
    """The band's lower edge there."""
    high: list[float]
    """The band's upper edge there."""
    inside: list[bool]
    """Whether each value lies in the band (a row identical to the reference's counts in)."""

    @property
    def fraction_inside(self) -> float:
        """The share of compared iterations inside the band."""
        return sum(self.inside) / len(self.inside) if self.inside else 1.0


@dataclass
class SeedCheck:
    """One run (one seed) of a check."""

    seed: int
    """The run's seed."""
    iterations: int
    """The rows compared."""
    identical: int | None
    """Rows equal to the same seed's reference row in every column but the wall time (None:
    the seed has no reference run)."""
    first_difference: int | None
    """The first iteration whose row differs from the reference's (None: none, or no
    reference)."""
    metrics: list[MetricCheck] = field(default_factory=list)
    """Each metric against the band."""
    passed: bool = False
    """Whether this run reproduces the reference (the rule of its check)."""


def check_rows(
    repro: Reproduction,
    reference: Reference,
    runs: dict[int, list[Row]],
    *,
    quick: bool,
) -> list[SeedCheck]:
    """Each run's rows (`runs`: seed → rows, as many as the reference has) against the
    reference band, by the quick rule (every row identical, within `QUICK_RTOL` of the recorded
    one, or inside) or the full rule (smoothed, ≥ `FULL_INSIDE` of the iterations inside and
    the last one)."""
    window = 1 if quick else repro.window
    count = len(next(iter(reference.rows.values())))
    checks = []
    for seed, rows in runs.items():
        if len(rows) < count:
            raise ValueError(f"the run of seed {seed} has {len(rows)} rows, the reference {count}")
        rows = rows[:count]
        recorded = reference.rows.get(seed)
        same = [_same_row(a, b) for a, b in zip(rows, recorded, strict=True)] if recorded else None
        check = SeedCheck(
            seed,
            count,
            sum(same) if same is not None else None,
            next((i + 1 for i, s in enumerate(same) if not s), None) if same else None,
        )
        for metric in repro.metrics:
            curves = np.array([[r[metric] for r in reference.rows[s]] for s in reference.seeds])
            finite = np.isfinite(curves).all(0)
            points = np.flatnonzero(finite)
            band = prediction_band(np.stack([smooth(c[finite], window) for c in curves]))
            raw = np.array([rows[i][metric] for i in points], dtype=float)
            values = smooth(raw, window) if np.isfinite(raw).all() else raw
            exact = np.array([same[i] for i in points]) if same else np.zeros(len(points), bool)
            close = np.zeros(len(points), bool)
            if quick and recorded:
                kept = np.array([recorded[i][metric] for i in points], dtype=float)
                close = np.isclose(values, kept, rtol=QUICK_RTOL, atol=0.0)
            inside = exact | close | ((values >= band.low) & (values <= band.high))
            check.metrics.append(
                MetricCheck(
                    metric,
                    [int(i) + 1 for i in points],
                    values.tolist(),
                    band.mean.tolist(),
                    band.low.tolist(),
                    band.high.tolist(),
                    inside.tolist(),
                )
            )
        if quick:
            check.passed = all(all(m.inside) for m in check.metrics)
        else:
            check.passed = all(
                m.fraction_inside >= FULL_INSIDE and (not m.inside or m.inside[-1])
                for m in check.metrics
            )
        checks.append(check)
    return checks


def _same_row(row: Row, recorded: Row) -> bool:
    """Whether two progress rows agree in every column but the untimed ones (NaN equals NaN)."""
    if row.keys() != recorded.keys():
        return False
    for key, value in row.items():
        if key in UNTIMED:
            continue
        other = recorded[key]
        both_nan = key not in INTEGER_COLUMNS and math.isnan(value) and math.isnan(other)
        if value != other and not both_nan:
            return False
    return True


def run_seeds(
    repro: Reproduction,
    seeds: Sequence[int],
    out_dir: Path,
    iterations: int,
) -> dict[int, list[Row]]:
    """Train `iterations` of this reproduction for each seed into `out_dir/seed-S` (a folder
    already there continues from its checkpoint, so an interrupted reproduction resumes) and
    return each run's rows."""
    from metarl.training import trainer

    runs = {}
    for seed in seeds:
        folder = Path(out_dir) / f"seed-{seed}"
        trainer.ensure_run(repro.record(seed, iterations), folder)
        trainer.train(folder, iterations)
        runs[seed] = read_progress(folder / "progress.csv")[:iterations]
    return runs


def seeds_to_run(reference: Reference, count: int | None) -> list[int]:
    """The first `count` reference seeds (all of them by default), then new seeds after the
    largest one."""
    count = len(reference.seeds) if count is None else count
    extra = [max(reference.seeds) + 1 + i for i in range(max(count - len(reference.seeds), 0))]
    return [*reference.seeds, *extra][:count]
