"""`metarl reproduce`: the named benchmarks of `benchmarks/reproductions/`, read from their YAML
files, run, checked against their reference band (`metarl.training.reproduce`), and reported as
a pass/fail table, a JSON record and a plot of every curve in its band."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from matplotlib.figure import Figure

import metarl
from metarl.cli.report import save_figure
from metarl.cli.shipped_configs import config_path
from metarl.training.checkpoint import make_folder, write_atomically
from metarl.training.config import load_yaml
from metarl.training.reproduce import (
    FULL_INSIDE,
    Reproduction,
    SeedCheck,
    check_rows,
    load_reference,
    run_seeds,
    seeds_to_run,
)

SPEC_KEYS = {
    "description": str,
    "agent": str,
    "env": str,
    "env_kwargs": dict,
    "config": str,
    "set": dict,
    "iterations": int,
    "metrics": list,
    "references": list,
    "quick_iterations": int,
    "window": int,
    "paper": str,
}
"""The keys of a reproduction's YAML file and their types (`Reproduction` says what each is;
`config` names a shipped config or a file, `set` gives values on top of it)."""

FIRST_REFERENCE_SEEDS = 3
"""Seeds a reproduction without a reference runs by default: the headline rows' minimum."""

REQUIRED = ("description", "agent", "env", "iterations", "metrics", "references")
"""The keys a reproduction's YAML file must have."""


def find_benchmarks(explicit: Path | None = None) -> Path:
    """The `benchmarks/` folder of metarl's repository (the one beside the installed package,
    else `./benchmarks`), or `explicit`; a one-line `ValueError` where there is none."""
    candidates = (
        [Path(explicit)]
        if explicit is not None
        else [Path(metarl.__file__).resolve().parents[1] / "benchmarks", Path("benchmarks")]
    )
    for candidate in candidates:
        if (candidate / "reproductions").is_dir():
            return candidate
    where = f"in {candidates[0]}" if explicit is not None else "beside the metarl package or in ./"
    raise ValueError(
        f"no benchmarks/reproductions folder {where}: reproductions run from a clone of "
        "metarl's repository (or pass --benchmarks DIR)"
    )


def list_reproductions(benchmarks: Path) -> list[Reproduction]:
    """Every reproduction in `benchmarks/reproductions/`, by name."""
    return [load_reproduction(path) for path in sorted(benchmarks.glob("reproductions/*.yaml"))]


def reproduction(benchmarks: Path, name: str) -> Reproduction:
    """The reproduction `name`, or a one-line `ValueError` listing the names there are."""
    path = benchmarks / "reproductions" / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(r.name for r in list_reproductions(benchmarks)) or "none"
        raise ValueError(f"no reproduction named {name!r}; there are: {names}")
    return load_reproduction(path)


def load_reproduction(path: Path) -> Reproduction:
    """The reproduction in the YAML file `path`, checked, or a one-line `ValueError`."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} must hold a mapping of {', '.join(SPEC_KEYS)}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    missing = [key for key in REQUIRED if key not in spec]
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    for key, kind in SPEC_KEYS.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool)):
            raise ValueError(f"{path}: {key!r} must be a {kind.__name__}, got {spec[key]!r}")
    values = load_yaml(config_path(spec["config"])) if "config" in spec else {}
    values.update(spec.get("set", {}))
    if "seed" in values or "iterations" in values:
        raise ValueError(f"{path}: seed and iterations are not config values of a reproduction")
    repro = Reproduction(
        name=Path(path).stem,
        description=spec["description"],
        agent=spec["agent"],
        env=spec["env"],
        env_kwargs=spec.get("env_kwargs", {}),
        values=values,
        iterations=spec["iterations"],
        metrics=tuple(spec["metrics"]),
        references=tuple(spec["references"]),
        quick_iterations=spec.get("quick_iterations", 3),
        window=spec.get("window", 1),
        paper=spec.get("paper", ""),
    )
    if len(repro.references) == 1:
        raise ValueError(f"{path}: a band needs at least 2 reference runs (or none yet)")
    if not 1 <= repro.quick_iterations <= repro.iterations or repro.window < 1:
        raise ValueError(f"{path}: need 1 <= quick_iterations <= iterations and window >= 1")
    repro.record(0)  # the agent, env and values are valid, or a one-line error here
    return repro


def listing(benchmarks: Path) -> str:
    """What `metarl reproduce --list` prints: each reproduction with its setting."""
    lines = []
    for repro in list_reproductions(benchmarks):
        lines.append(f"{repro.name}: {repro.description}")
        lines.append(
            f"    {repro.agent} on {repro.env}, {repro.iterations} iterations, "
            + (
                f"{len(repro.references)} reference seeds, quick: {repro.quick_iterations} "
                "iterations"
                if repro.references
                else "no reference runs yet"
            )
        )
        if repro.paper:
            lines.append(f"    paper: {repro.paper}")
    return "\n".join(lines) if lines else "no reproductions yet"


def reproduce(
    benchmarks: Path,
    name: str,
    *,
    seeds: int | None,
    quick: bool,
    out_dir: Path | None,
) -> dict[str, Any]:
    """Run reproduction `name` (`quick`: its first iterations on the reference seeds; else
    whole runs, the reference seeds first) into `out_dir` (quick without one: a temporary
    folder), check every run against the band, and write `reproduction.json`, `.md` and
    `.png` there (when it is kept); returns the record."""
    repro = reproduction(benchmarks, name)
    iterations = repro.quick_iterations if quick else repro.iterations
    if not repro.references:
        return _first_references(repro, seeds, quick, out_dir)
    reference = load_reference(repro, benchmarks / "results", iterations)
    chosen = seeds_to_run(reference, seeds)
    if quick and not set(chosen) <= set(reference.seeds):
        raise ValueError(
            f"--quick checks the reference seeds' own rows; {name} has {len(reference.seeds)}"
        )
    if out_dir is None and quick:
        with tempfile.TemporaryDirectory(prefix=f"metarl-reproduce-{name}-") as scratch:
            runs = run_seeds(repro, chosen, Path(scratch), iterations)
        return check_record(
            repro, reference.seeds, check_rows(repro, reference, runs, quick=True), True
        )
    out_dir = _out_folder(repro, out_dir)
    runs = run_seeds(repro, chosen, out_dir, iterations)
    checks = check_rows(repro, reference, runs, quick=quick)
    record = {**check_record(repro, reference.seeds, checks, quick), "out": str(out_dir)}
    write_report(out_dir, record)
    return record


def _out_folder(repro: Reproduction, out_dir: Path | None) -> Path:
    """Where a kept reproduction writes its runs and report (default `reproductions/NAME`)."""
    return make_folder(Path(out_dir or f"reproductions/{repro.name}"))


def _identity(repro: Reproduction) -> dict[str, str]:
    """The keys every `reproduction.json` starts with."""
    return {key: getattr(repro, key) for key in ("name", "description", "agent", "env")}


def _first_references(
    repro: Reproduction, seeds: int | None, quick: bool, out_dir: Path | None
) -> dict[str, Any]:
    """Run a reproduction that has no reference yet: its runs (seeds 0 .. K − 1, 3 by
    default) are the candidates for the first reference, to be committed to
    `benchmarks/results/` and named in its file."""
    if quick:
        raise ValueError(
            f"{repro.name} has no reference runs yet: run it in full (metarl reproduce "
            f"{repro.name} --seeds 3), commit the runs to benchmarks/results and name them in "
            "its file"
        )
    out_dir = _out_folder(repro, out_dir)
    chosen = list(range(seeds or FIRST_REFERENCE_SEEDS))
    runs = run_seeds(repro, chosen, out_dir, repro.iterations)
    record = {
        **_identity(repro),
        "quick": False,
        "iterations": repro.iterations,
        "reference_seeds": [],
        "rule": "no reference yet: these runs are the first",
        "passed": None,
        "runs": [
            {"seed": seed, "final": {m: rows[-1][m] for m in repro.metrics}}
            for seed, rows in runs.items()
        ],
        "out": str(out_dir),
    }
    write_report(out_dir, record)
    return record


def check_record(
    repro: Reproduction, reference_seeds: list[int], checks: list[SeedCheck], quick: bool
) -> dict:
    """The result of a check as plain data (what `reproduction.json` holds)."""
    return {
        **_identity(repro),
        "quick": quick,
        "iterations": checks[0].iterations if checks else 0,
        "reference_seeds": reference_seeds,
        "rule": (
            "every row identical to the reference's, or every metric inside the band"
            if quick
            else f"smoothed over {repro.window} iterations, >= {FULL_INSIDE:.0%} of the "
            "iterations and the last one inside the band"
        ),
        "passed": all(check.passed for check in checks),
        "runs": [asdict(check) for check in checks],
    }


def table(record: dict[str, Any]) -> str:
    """The pass/fail table of a check: one row per run and metric (Markdown)."""
    if record["passed"] is None:
        finals = [
            f"seed {run['seed']}: "
            + ", ".join(f"{metric} {value:.4g}" for metric, value in run["final"].items())
            for run in record["runs"]
        ]
        return (
            f"{record['name']}: no reference yet; the last iteration of each run:\n"
            + "\n".join(finals)
            + f"\ncommit the run folders under {record['out']} to benchmarks/results and name "
            "them in the reproduction's references\n"
        )
    what = "quick" if record["quick"] else "full"
    lines = [
        f"{record['name']} ({what}, {record['iterations']} iterations, reference seeds "
        f"{', '.join(map(str, record['reference_seeds']))}; rule: {record['rule']})",
        "",
        "| seed | rows identical | metric | inside the band | last: value [band] | result |",
        "|---:|---|---|---:|---|---|",
    ]
    for run in record["runs"]:
        same = (
            "no reference"
            if run["identical"] is None
            else (
                f"{run['identical']}/{run['iterations']}"
                + (f" (differs from {run['first_difference']})" if run["first_difference"] else "")
            )
        )
        for metric in run["metrics"]:
            inside = sum(metric["inside"])
            last = (
                f"{metric['values'][-1]:.4g} [{metric['low'][-1]:.4g}, {metric['high'][-1]:.4g}]"
                if metric["values"]
                else "-"
            )
            lines.append(
                f"| {run['seed']} | {same} | {metric['metric']} | "
                f"{inside}/{len(metric['inside'])} | {last} | "
                f"{'pass' if run['passed'] else 'FAIL'} |"
            )
    lines += ["", f"{record['name']}: {'PASS' if record['passed'] else 'FAIL'}"]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, record: dict[str, Any]) -> list[Path]:
    """`reproduction.json`, `.md` and `.png` (each metric's band and every run's curve; none
    without a reference) in `out_dir`, each written atomically."""
    files = {
        "reproduction.json": json.dumps(record, indent=1).encode(),
        "reproduction.md": table(record).encode(),
    }
    for name, data in files.items():
        write_atomically(out_dir / name, lambda file, data=data: file.write(data))
    if record["passed"] is None:  # no reference yet: no band to draw
        return [out_dir / name for name in files]
    save_figure(draw_bands(record), out_dir / "reproduction.png")
    return [out_dir / name for name in (*files, "reproduction.png")]


def draw_bands(record: dict[str, Any]) -> Figure:
    """One panel per metric: the reference band (95% prediction interval of a new seed) and
    its mean, and each run's curve over it."""
    metrics: Sequence[dict] = record["runs"][0]["metrics"] if record["runs"] else []
    figure = Figure(figsize=(5.5 * max(len(metrics), 1), 4.2))
    panels = figure.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for axes, index in zip(panels, range(len(metrics)), strict=False):
        band = metrics[index]
        x = band["iterations"]
        axes.fill_between(x, band["low"], band["high"], color="0.85", label="reference band")
        axes.plot(x, band["mean"], color="0.4", lw=1, label="reference mean")
        for colour, run in enumerate(record["runs"]):
            mine = run["metrics"][index]
            axes.plot(x, mine["values"], color=f"C{colour}", lw=1.3, label=f"seed {run['seed']}")
        axes.set(xlabel="iteration", ylabel=band["metric"], title=band["metric"])
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8)
    verdict = "pass" if record["passed"] else "FAIL"
    figure.suptitle(f"{record['name']}: {record['agent']} on {record['env']} ({verdict})")
    figure.tight_layout()
    return figure
