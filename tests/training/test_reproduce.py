"""`metarl reproduce`: the band against a hand computation, the quick and full rules, the
reproduction files' checks, and the command end to end on tiny reference runs made here."""

import dataclasses
import math
import shutil

import numpy as np
import pytest
import yaml
from tiny_runs import tiny

from metarl.cli import main
from metarl.cli.reproduce import load_reproduction
from metarl.training.logger import read_progress
from metarl.training.reproduce import (
    Reference,
    check_rows,
    load_reference,
    prediction_band,
    seeds_to_run,
    smooth,
)
from metarl.training.trainer import new_run, train

T_975_2 = 4.303  # Student's t, 0.975 quantile, 2 degrees of freedom (any printed table)


def test_prediction_band_is_mean_plus_minus_t_s_root_one_plus_one_over_n():
    curves = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    band = prediction_band(curves)
    # column 0: mean 3, s = 2; column 1: mean 5, s = sqrt(((2-5)^2 + (4-5)^2 + (9-5)^2) / 2)
    s = np.array([2.0, math.sqrt(26 / 2)])
    half = T_975_2 * s * math.sqrt(1 + 1 / 3)
    mean = np.array([3.0, 5.0])
    np.testing.assert_allclose(band.mean, mean)
    np.testing.assert_allclose(band.low, mean - half, rtol=1e-3)
    np.testing.assert_allclose(band.high, mean + half, rtol=1e-3)


def test_smooth_is_a_trailing_mean():
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0, 6.0, 3.0]), 2), [1, 1.5, 4, 4.5])
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0, 6.0]), 1), [1, 2, 6])


def _rows(values, other=0.0):
    return [
        {"iteration": i + 1, "env_steps": 10 * (i + 1), "wall_time": 0.1 * i, "r": v, "x": other}
        for i, v in enumerate(values)
    ]


def _repro(**changes):
    base = dict(
        name="toy", description="toy", agent="maml-trpo", env="navigation2d", env_kwargs={},
        values={}, iterations=4, metrics=("r",), references=("a", "b", "c"),
        quick_iterations=2, window=1,
    )  # fmt: skip
    from metarl.training.reproduce import Reproduction

    return Reproduction(**{**base, **changes})


REFERENCE = Reference(
    [0, 1, 2], {0: _rows([0, 1, 2, 3]), 1: _rows([1, 2, 3, 4]), 2: _rows([2, 3, 4, 5])}
)  # band at each point: mean ± 4.303 · 1 · 1.155 ≈ ± 4.97


def test_quick_rule_passes_identical_rows_and_rows_inside_the_band():
    runs = {0: _rows([0, 1, 2, 3]), 1: _rows([1, 2.5, 3, 4]), 7: _rows([1, 2, 3, 4])}
    runs[0][0]["wall_time"] = 99.0  # the machine's time may differ in an identical row
    checks = {c.seed: c for c in check_rows(_repro(), REFERENCE, runs, quick=True)}
    assert (checks[0].identical, checks[0].first_difference, checks[0].passed) == (4, None, True)
    assert (checks[1].identical, checks[1].first_difference, checks[1].passed) == (3, 2, True)
    assert (checks[7].identical, checks[7].passed) == (None, True)  # no reference of seed 7


def test_quick_rule_fails_a_row_outside_the_band():
    runs = {1: _rows([1, 2, 3 + 5.5, 4])}  # 8.5 > 3 + 4.97
    (check,) = check_rows(_repro(), REFERENCE, runs, quick=True)
    assert check.metrics[0].inside == [True, True, False, True]
    assert not check.passed


def test_an_identical_row_passes_even_where_the_band_is_narrow():
    reference = Reference([0, 1], {0: _rows([0, 0]), 1: _rows([0, 0.0])})  # zero width
    runs = {0: _rows([0, 0]), 1: _rows([0, 1e-9])}
    checks = check_rows(_repro(), reference, runs, quick=True)
    assert [c.passed for c in checks] == [True, False]


def test_quick_rule_passes_a_rerun_close_to_its_recorded_row_outside_a_narrow_band():
    # another CPU's rounding, grown by a few iterations: 1% off the seed's own row passes where
    # the band is narrower; 10% off (a run that learns differently) fails
    reference = Reference([0, 1], {0: _rows([10.0, 10.0]), 1: _rows([10.0, 10.0])})
    runs = {0: _rows([10.0, 10.1]), 1: _rows([10.0, 11.0])}
    checks = check_rows(_repro(), reference, runs, quick=True)
    assert [c.passed for c in checks] == [True, False]
    assert checks[1].metrics[0].inside == [True, False]


def test_full_rule_needs_ninety_percent_and_the_last_point_inside():
    reference = Reference([0, 1, 2], {s: _rows([s + i % 2 for i in range(20)]) for s in range(3)})
    repro = _repro(iterations=20)
    wrong_at = {9: [3], 8: [3, 11], 1: [19]}  # one miss, two misses, the last point
    verdicts = {}
    for seed, misses in wrong_at.items():
        values = [1 + i % 2 + (100 if i in misses else 0) for i in range(20)]
        (check,) = check_rows(repro, reference, {seed: _rows(values)}, quick=False)
        verdicts[seed] = check.passed
    assert verdicts == {9: True, 8: True, 1: False}
    values = [1 + i % 2 + (100 if i in (2, 5, 11) else 0) for i in range(20)]  # 85% inside
    (check,) = check_rows(repro, reference, {5: _rows(values)}, quick=False)
    assert check.metrics[0].fraction_inside == pytest.approx(17 / 20) and not check.passed


def test_metric_points_where_a_reference_is_nan_are_not_compared():
    nan = float("nan")
    reference = Reference([0, 1], {0: _rows([nan, 1, nan, 2]), 1: _rows([nan, 2, nan, 3])})
    (check,) = check_rows(_repro(), reference, {3: _rows([nan, 1.5, nan, 2.5])}, quick=False)
    assert check.metrics[0].iterations == [2, 4] and check.passed


def test_seeds_run_are_the_references_then_new_ones():
    assert seeds_to_run(REFERENCE, None) == [0, 1, 2]
    assert seeds_to_run(REFERENCE, 2) == [0, 1]
    assert seeds_to_run(REFERENCE, 5) == [0, 1, 2, 3, 4]


SETTING = tiny("maml-trpo")


def _write_spec(folder, **changes):
    spec = {
        "description": "tiny MAML-TRPO",
        "agent": "maml-trpo",
        "env": "navigation2d",
        "set": SETTING,
        "iterations": 3,
        "metrics": ["pre_return", "post_return"],
        "references": ["tiny-s0", "tiny-s1"],
        "quick_iterations": 2,
        **changes,
    }
    (folder / "reproductions").mkdir(parents=True, exist_ok=True)
    path = folder / "reproductions" / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    """A benchmarks/ folder with the reproduction `tiny` and its two reference runs."""
    folder = tmp_path_factory.mktemp("benchmarks")
    _write_spec(folder)
    for seed in (0, 1):
        run_dir = folder / "results" / f"tiny-s{seed}"
        new_run("maml-trpo", "navigation2d", {**SETTING, "seed": seed, "iterations": 3}, run_dir)
        train(run_dir)
    return folder


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": 1}, "unknown keys \\['colour'\\]"),
        ({"references": ["one"]}, "at least 2 reference runs"),
        ({"iterations": "3"}, "'iterations' must be a int"),
        ({"set": {**SETTING, "seed": 3}}, "seed and iterations are not config values"),
        ({"quick_iterations": 4}, "quick_iterations <= iterations"),
        ({"set": {"inner_lr": -1.0}}, "inner_lr"),
        ({"agent": "nope"}, "nope"),
    ],
)
def test_a_bad_reproduction_file_is_one_line(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_reproduction(_write_spec(tmp_path, **changes))


def test_a_reference_of_another_setting_is_refused(benchmarks, tmp_path):
    repro = load_reproduction(benchmarks / "reproductions" / "tiny.yaml")
    other = dataclasses.replace(repro, values={**repro.values, "inner_lr": 0.5})
    with pytest.raises(ValueError, match=r"ran another setting: inner_lr 0\.1 .*0\.5"):
        load_reference(other, benchmarks / "results", 3)
    with pytest.raises(ValueError, match="has 3 rows; tiny compares 4"):
        load_reference(repro, benchmarks / "results", 4)


def test_quick_reproduce_passes_on_the_reference_seeds(benchmarks, capsys):
    assert main(["reproduce", "tiny", "--quick", "--benchmarks", str(benchmarks)]) == 0
    out = capsys.readouterr().out
    assert "| 0 | 2/2 | pre_return | 2/2 |" in out and "tiny: PASS" in out


def test_quick_reproduce_fails_when_the_recorded_rows_are_not_reached(benchmarks, tmp_path, capsys):
    moved = shutil.copytree(benchmarks, tmp_path / "benchmarks")
    for seed in (0, 1):  # the references claim a far better post-update return
        progress = moved / "results" / f"tiny-s{seed}" / "progress.csv"
        rows = read_progress(progress)
        header = list(rows[0])
        lines = [",".join(header)] + [
            ",".join(str(r[k] + (1000 if k == "post_return" else 0)) for k in header) for r in rows
        ]
        progress.write_text("\n".join(lines) + "\n")
    assert main(["reproduce", "tiny", "--quick", "--benchmarks", str(moved)]) == 1
    out = capsys.readouterr().out
    assert "tiny: FAIL" in out and "(differs from 1)" in out


def test_full_reproduce_runs_new_seeds_writes_its_report_and_resumes(benchmarks, tmp_path, capsys):
    out = tmp_path / "repro"
    args = ["reproduce", "tiny", "--seeds", "3", "--out", str(out), "--benchmarks", str(benchmarks)]
    status = main(args)
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "reproduction.json", "reproduction.md", "reproduction.png", "seed-0", "seed-1", "seed-2",
    ]  # fmt: skip
    record = yaml.safe_load((out / "reproduction.json").read_text())
    assert [r["seed"] for r in record["runs"]] == [0, 1, 2]
    assert [r["identical"] for r in record["runs"]] == [3, 3, None]
    assert status == (0 if record["passed"] else 1) and "tiny: " in printed
    before = (out / "seed-2" / "progress.csv").read_text()
    assert main(args) == status  # a second call finds the runs done and checks them again
    assert (out / "seed-2" / "progress.csv").read_text() == before


def test_reproduce_command_line_errors_are_one_line(benchmarks, tmp_path, capsys):
    cases = [
        (["reproduce", "nope", "--benchmarks", str(benchmarks)], "no reproduction named 'nope'"),
        (["reproduce", "--benchmarks", str(benchmarks)], "reproduce needs a NAME"),
        (["reproduce", "--benchmarks", str(tmp_path)], "no benchmarks/reproductions folder in"),
        (["reproduce", "tiny", "--quick", "--seeds", "3", "--benchmarks", str(benchmarks)],
         "--quick checks the reference seeds' own rows"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("metarl: error: ") and message in err and err.count("\n") == 1


def test_reproduce_list_names_every_reproduction(benchmarks, capsys):
    assert main(["reproduce", "--list", "--benchmarks", str(benchmarks)]) == 0
    assert capsys.readouterr().out.startswith("tiny: tiny MAML-TRPO\n    maml-trpo on ")


def test_a_reproduction_without_references_runs_its_first_ones(benchmarks, tmp_path, capsys):
    folder = shutil.copytree(benchmarks, tmp_path / "benchmarks")
    _write_spec(folder, references=[])
    quick = ["reproduce", "tiny", "--quick", "--benchmarks", str(folder)]
    assert main(quick) == 2
    assert "no reference runs yet: run it in full" in capsys.readouterr().err
    out = tmp_path / "first"
    args = ["reproduce", "tiny", "--seeds", "2", "--out", str(out), "--benchmarks", str(folder)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "tiny: no reference yet; the last iteration of each run:\nseed 0: " in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "reproduction.json", "reproduction.md", "seed-0", "seed-1"
    ]  # fmt: skip

    # the runs are those of the reference setting: as references, they reproduce themselves
    def untimed(path):
        return [{k: v for k, v in row.items() if k != "wall_time"} for row in read_progress(path)]

    reference = benchmarks / "results" / "tiny-s1" / "progress.csv"
    assert untimed(out / "seed-1" / "progress.csv") == untimed(reference)
