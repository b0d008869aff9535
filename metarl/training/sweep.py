"""`metarl sweep`: one run per combination of seeds and config values, each its own run folder,
trained as Ray tasks on this machine or a cluster.

A sweep is a setting (agent, env, env kwargs, config values: a YAML file, for instance a run's
own `config.yaml`) and the values to vary. The driver records every run folder first, so a bad
value fails before anything trains, then launches one Ray task per folder that trains it with
`metarl.training.trainer.train`: a folder with a checkpoint resumes, a finished one returns at
once, so the same command continues an interrupted sweep run by run. `sweep.json` in the sweep
folder says where every run stands.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metarl.training.checkpoint import make_folder, write_atomically
from metarl.training.config import load_yaml, parse_sets
from metarl.training.logger import read_progress
from metarl.training.run_folder import Run

_REQUIRED = ("agent", "env")
_OPTIONAL = ("env_kwargs", "config", "checkpoint_every")
_IGNORED = ("format", "version")  # a run folder's config.yaml has them too


@dataclass
class SweepSpec:
    """The setting every run of a sweep shares."""

    agent: str
    """Registry name of the agent."""
    env: str
    """Env id or short name."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of `gymnasium.make`."""
    config: dict[str, Any] = field(default_factory=dict)
    """Config values shared by every run (a varied key or the seed replaces its value)."""
    checkpoint_every: int = 50
    """Iterations between kept checkpoints of each run."""

    @classmethod
    def load(cls, path: Path) -> SweepSpec:
        """The spec in a YAML file (keys agent, env, and optionally env_kwargs, config,
        checkpoint_every); anything else is a one-line `ValueError`."""
        record = load_yaml(path)
        missing = [key for key in _REQUIRED if key not in record]
        unknown = [key for key in record if key not in (*_REQUIRED, *_OPTIONAL, *_IGNORED)]
        if missing or unknown:
            problem = f"lacks {missing}" if missing else f"has unknown keys {unknown}"
            raise ValueError(
                f"sweep file {path} {problem}; it takes agent, env, env_kwargs, config and "
                "checkpoint_every (a run's config.yaml is one)"
            )
        for key, kind in (("env_kwargs", dict), ("config", dict), ("checkpoint_every", int)):
            if key in record and not isinstance(record[key], kind):
                raise ValueError(f"sweep file {path}: {key!r} must be a {kind.__name__}")
        return cls(**{key: record[key] for key in (*_REQUIRED, *_OPTIONAL) if key in record})


def parse_seeds(text: str) -> list[int]:
    """'0..4' (both ends included), '0,3,7' or '5' → the seeds; a one-line `ValueError`
    otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", text)
    if match:
        first, last = int(match[1]), int(match[2])
        if last < first:
            raise ValueError(f"--seeds {text}: the range ends before it starts")
        return list(range(first, last + 1))
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"--seeds takes FIRST..LAST or a comma-separated list, got {text!r}")
    seeds = [int(part) for part in parts]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text} repeats a seed")
    return seeds


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """`["key=v1,v2", ...]` → `{key: [v1, v2]}`, each value YAML (commas inside brackets
    belong to the value: `hidden_sizes=[32,32],[64,64]` is two values)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes key=v1,v2,..., got {item!r}")
        key = key.strip()
        if key == "seed":
            raise ValueError("the seeds of a sweep are --seeds, not --set seed=...")
        if key in grid:
            raise ValueError(f"--set {key} is given twice")
        grid[key] = [parse_sets([f"{key}={piece}"])[key] for piece in _top_level_split(raw)]
    return grid


def _top_level_split(text: str) -> list[str]:
    """`text` split at the commas outside brackets and braces."""
    pieces, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    return [*pieces, current]


def combinations(seeds: Sequence[int], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values with every seed, the seed varying fastest."""
    keys = list(grid)
    return [
        {**dict(zip(keys, values, strict=True)), "seed": seed}
        for values in itertools.product(*(grid[key] for key in keys))
        for seed in seeds
    ]


def folder_name(values: dict[str, Any]) -> str:
    """A run folder's name from its varied values: 'hidden_sizes=32x32,seed=0'."""
    parts = []
    for key, value in values.items():
        shown = "x".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}={re.sub(r'[^A-Za-z0-9._-]', '_', shown)}")
    return ",".join(parts)


def prepare(spec: SweepSpec, points: list[dict[str, Any]], out_dir: Path) -> list[tuple[Path, int]]:
    """The run folder of every point under `out_dir`, recorded where it is not yet (a folder
    recorded with another setting is a one-line `ValueError`: a sweep continues as it began),
    and the iterations the sweep trains it to (its config's: a larger count extends it)."""
    from metarl.training.trainer import ensure_run

    make_folder(out_dir)
    folders = []
    for values in points:
        folder = out_dir / folder_name(values)
        values = {**spec.config, **values}
        record = Run.create(spec.agent, spec.env, values, spec.env_kwargs, spec.checkpoint_every)
        ensure_run(record, folder)
        folders.append((folder, record.config["iterations"]))
    return folders


def train_folder(folder: str, iterations: int) -> dict[str, Any]:
    """Train (or continue) the run in `folder` to `iterations`; its last progress row. What
    each Ray task runs."""
    from metarl.training.trainer import train

    train(Path(folder), iterations)
    return read_progress(Path(folder) / "progress.csv")[-1]


def launch(
    runs: list[tuple[Path, int]],
    cpus_per_run: float,
    ray_address: str | None,
    report: Callable[[Path, dict[str, Any]], None] = lambda folder, entry: None,
) -> list[dict[str, Any]]:
    """Train every (folder, iterations) of `prepare` as a Ray task of `cpus_per_run` CPUs.
    One entry per folder, in order: its last row, or the first line of the error that stopped
    it (the other runs go on). `report` hears each entry as its run ends."""
    from metarl.sampling.ray_sampler import connect

    ray = connect(ray_address, workers=1, cpus_per_worker=1)
    task = ray.remote(num_cpus=cpus_per_run, max_retries=0)(train_folder)
    folders = [folder for folder, _ in runs]
    pending = {task.remote(str(folder), count): i for i, (folder, count) in enumerate(runs)}
    entries: list[dict[str, Any]] = [{} for _ in runs]
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        entry: dict[str, Any] = {"folder": str(folders[i])}
        try:
            entry["last_row"] = ray.get(ready[0])
            entry["status"] = "finished"
        except ray.exceptions.RayError as error:
            entry["status"] = "failed"
            entry["error"] = _cause(error)
        entries[i] = entry
        report(folders[i], entry)
    return entries


def _cause(error: BaseException) -> str:
    """The first line of what stopped a Ray task (its own exception where Ray wraps one)."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


def write_summary(out_dir: Path, spec: SweepSpec, points: list[dict], entries: list[dict]) -> Path:
    """`sweep.json`: the setting, and each run's values and outcome, written atomically."""
    summary = {
        "agent": spec.agent,
        "env": spec.env,
        "env_kwargs": spec.env_kwargs,
        "config": spec.config,
        "runs": [
            {"values": values, **entry} for values, entry in zip(points, entries, strict=True)
        ],
    }
    text = json.dumps(summary, indent=1, default=float).encode()
    path = out_dir / "sweep.json"
    write_atomically(path, lambda file: file.write(text))
    return path
