"""The linear feature baseline of rllab, MAML and ProMP: ridge regression of returns on
hand-made features of the observation and the time step within the episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _episode_steps(dones: Tensor) -> Tensor:
    """Step index within its episode `[T, B]` (long), restarting at 0 after every done."""
    steps = torch.arange(dones.shape[0], device=dones.device).unsqueeze(1).expand_as(dones)
    starts = torch.cat([torch.zeros_like(dones[:1]), dones[:-1]])
    return steps - torch.where(starts, steps, 0).cummax(dim=0).values


def _features(observations: Tensor, dones: Tensor) -> Tensor:
    """Float64 features `[T, B, 2·obs + 4]`: [obs, obs², t/100, (t/100)², (t/100)³, 1]."""
    obs = observations.double().clamp(-10.0, 10.0)
    time = (_episode_steps(dones).double() / 100.0).unsqueeze(-1)
    return torch.cat([obs, obs**2, time, time**2, time**3, torch.ones_like(time)], dim=-1)


@dataclass
class LinearFeatureBaseline:
    """State-value estimate linear in `_features`, refitted on each batch of episodes."""

    reg_coeff: float = 1e-5
    """Initial ridge coefficient; raised tenfold (up to 5 tries) until the solution is finite."""
    weights: Tensor | None = None
    """Fitted float64 weight vector `[2·obs + 4]`; None until the first `fit`."""

    def fit(self, observations: Tensor, returns: Tensor, mask: Tensor, dones: Tensor) -> None:
        """Fit the weights to `returns` `[T, B]` from observations `[T, B, obs]` on valid steps."""
        valid = mask.bool()
        features = _features(observations, dones)[valid]
        targets = returns.double()[valid].unsqueeze(-1)
        gram = features.T @ features
        rhs = features.T @ targets
        identity = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        for attempt in range(5):
            reg_coeff = self.reg_coeff * 10.0**attempt
            weights = torch.linalg.lstsq(gram + reg_coeff * identity, rhs).solution.squeeze(-1)
            if torch.isfinite(weights).all():
                self.weights = weights
                return
        raise RuntimeError(
            f"LinearFeatureBaseline: no finite fit with reg_coeff up to {reg_coeff:g}"
        )

    def predict(self, observations: Tensor, mask: Tensor, dones: Tensor) -> Tensor:
        """Values `[T, B]` in the observations' dtype; 0 on padding, and everywhere before `fit`."""
        valid = mask.bool()
        if self.weights is None:
            return torch.zeros(valid.shape, dtype=observations.dtype, device=observations.device)
        values = _features(observations, dones) @ self.weights
        return torch.where(valid, values, 0.0).to(observations.dtype)
