"""LinearFeatureBaseline: exact fits of linear targets, padding, time restarts, clipping."""

from types import SimpleNamespace

import pytest
import torch

from metarl.backend.baselines import LinearFeatureBaseline

T, B, OBS = 12, 4, 3


def _dones_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    """Columns: one full episode; episodes of 5 and 4 steps then padding; 3+3+6; no done."""
    dones = torch.zeros(T, B, dtype=torch.bool)
    dones[T - 1, 0] = True
    dones[4, 1] = dones[8, 1] = True
    dones[2, 2] = dones[5, 2] = dones[11, 2] = True
    mask = torch.ones(T, B, dtype=torch.bool)
    mask[9:, 1] = False
    return dones, mask


def _reference_features(observations: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """rllab's features, with the episode step counted by walking each column."""
    steps = torch.zeros(T, B, dtype=torch.float64)
    for b in range(B):
        t_in_episode = 0
        for t in range(T):
            steps[t, b] = t_in_episode
            t_in_episode = 0 if dones[t, b] else t_in_episode + 1
    obs = observations.double().clamp(-10, 10)
    s = (steps / 100).unsqueeze(-1)
    return torch.cat([obs, obs**2, s, s**2, s**3, torch.ones_like(s)], -1)


def test_fits_a_target_that_is_linear_in_the_features():
    torch.manual_seed(0)
    dones, mask = _dones_and_mask()
    observations = torch.randn(T, B, OBS)
    target = _reference_features(observations, dones) @ torch.randn(
        2 * OBS + 4, dtype=torch.float64
    )
    target = target.masked_fill(~mask, 123.0)  # padding must not influence the fit
    baseline = LinearFeatureBaseline()
    baseline.fit(observations, target.float(), mask, dones)
    values = baseline.predict(observations, mask, dones)
    assert values.dtype == observations.dtype
    torch.testing.assert_close(values[mask], target.float()[mask], atol=1e-3, rtol=1e-3)
    assert (values[~mask] == 0).all()


def test_time_feature_restarts_after_each_done():
    dones, mask = _dones_and_mask()
    observations = torch.zeros(T, B, OBS)
    # With constant observations only the step within the episode can explain this target.
    target = 1.0 - 0.05 * _reference_features(observations, dones)[..., 2 * OBS] * 100
    baseline = LinearFeatureBaseline()
    baseline.fit(observations, target, mask, dones)
    values = baseline.predict(observations, mask, dones)
    torch.testing.assert_close(values[mask], target.float()[mask], atol=1e-3, rtol=0)
    expected = torch.tensor([1.0, 0.95, 0.9] * 2)
    torch.testing.assert_close(values[:6, 2], expected, atol=1e-3, rtol=0)


def test_observations_are_clipped_to_ten():
    torch.manual_seed(0)
    dones, mask = _dones_and_mask()
    baseline = LinearFeatureBaseline()
    baseline.fit(torch.randn(T, B, OBS) * 20, torch.randn(T, B), mask, dones)
    observations = torch.randn(T, B, OBS) * 20
    torch.testing.assert_close(
        baseline.predict(observations, mask, dones),
        baseline.predict(observations.clamp(-10, 10), mask, dones),
    )


def test_predicts_zero_before_the_first_fit():
    dones, mask = _dones_and_mask()
    values = LinearFeatureBaseline().predict(torch.randn(T, B, OBS), mask, dones)
    assert values.shape == (T, B) and (values == 0).all()


def _lstsq_failing(monkeypatch, failures: int) -> list[torch.Tensor]:
    """Make the first `failures` solves return NaN; record every regularized matrix solved."""
    solve, matrices = torch.linalg.lstsq, []

    def lstsq(matrix, rhs):
        matrices.append(matrix)
        result = solve(matrix, rhs)
        if len(matrices) <= failures:
            return SimpleNamespace(solution=torch.full_like(result.solution, float("nan")))
        return result

    monkeypatch.setattr(torch.linalg, "lstsq", lstsq)
    return matrices


def test_regularization_grows_tenfold_until_the_fit_is_finite(monkeypatch):
    torch.manual_seed(0)
    dones, mask = _dones_and_mask()
    matrices = _lstsq_failing(monkeypatch, failures=2)
    baseline = LinearFeatureBaseline()
    baseline.fit(torch.randn(T, B, OBS), torch.randn(T, B), mask, dones)
    assert len(matrices) == 3 and torch.isfinite(baseline.weights).all()
    diagonals = [(m - matrices[0]).diagonal(dim1=-2, dim2=-1) for m in matrices]
    torch.testing.assert_close(diagonals[1], torch.full_like(diagonals[1], 9e-5))
    torch.testing.assert_close(diagonals[2], torch.full_like(diagonals[2], 99e-5))


def test_raises_after_five_non_finite_fits(monkeypatch):
    dones, mask = _dones_and_mask()
    matrices = _lstsq_failing(monkeypatch, failures=5)
    with pytest.raises(RuntimeError, match="no finite fit"):
        LinearFeatureBaseline().fit(torch.randn(T, B, OBS), torch.randn(T, B), mask, dones)
    assert len(matrices) == 5
