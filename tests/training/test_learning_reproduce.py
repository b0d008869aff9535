"""`metarl reproduce --quick` on the committed references, in CI: MAML-TRPO, ProMP, RL² and
PEARL each retrain the first iterations of their reference seeds and must match the recorded
rows (or lie in the band); and the check is shown to catch a non-learner, the same setting with
its learning rates (or trust region) at ~0, which must fall out of the band."""

import dataclasses
from pathlib import Path

import pytest

from metarl.cli.reproduce import reproduction
from metarl.training.reproduce import check_rows, load_reference, run_seeds

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

NON_LEARNERS = {  # what stops each agent learning while it samples and updates as usual
    "maml-trpo-navigation2d": {"inner_lr": 1e-12, "max_kl": 1e-12},
    "promp-navigation2d": {"inner_lr": 1e-12, "outer_lr": 1e-12},
    "rl2-trpo-navigation2d": {"max_kl": 1e-12},
    "pearl-navigation2d": {"learning_rate": 1e-12},
}

pytestmark = pytest.mark.learning


@pytest.mark.parametrize("name", sorted(NON_LEARNERS))
def test_quick_reproduction_matches_the_reference_and_a_non_learner_does_not(name, tmp_path):
    repro = reproduction(BENCHMARKS, name)
    reference = load_reference(repro, BENCHMARKS / "results", repro.quick_iterations)
    runs = run_seeds(repro, reference.seeds, tmp_path / "runs", repro.quick_iterations)
    checks = check_rows(repro, reference, runs, quick=True)
    failed = [(c.seed, [m.metric for m in c.metrics if not all(m.inside)]) for c in checks]
    assert all(c.passed for c in checks), f"out of the band: {failed}"

    frozen = dataclasses.replace(repro, values={**repro.values, **NON_LEARNERS[name]})
    seed = reference.seeds[1]  # a seed whose reference ran the current code
    stuck = run_seeds(frozen, [seed], tmp_path / "frozen", repro.quick_iterations)
    (check,) = check_rows(repro, reference, stuck, quick=True)
    assert not check.passed, f"a non-learner passes {name}'s quick check"
