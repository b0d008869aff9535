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
    """State-value estimate linear in `_features`, refitted on each batch of episodes. With
    `groups` > 1 the batch's columns form that many equal, contiguous groups (MAML's tasks),
    each with its own weights, all fitted at once."""

    reg_coeff: float = 1e-5
    """Initial ridge coefficient; raised tenfold (up to 5 tries) until the solution is finite."""
    groups: int = 1
    """Groups of columns with a fit of their own, >= 1, dividing the batch's columns."""
    weights: Tensor | None = None
    """Fitted float64 weights `[groups, 2·obs + 4]`; None until the first `fit`."""

    def fit(self, observations: Tensor, returns: Tensor, mask: Tensor, dones: Tensor) -> None:
        """Fit the weights to `returns` `[T, B]` from observations `[T, B, obs]` on valid steps."""
        features = self._grouped(_features(observations, dones))  # [T, G, B/G, F]
        valid = self._grouped(mask.bool().double())
        weighted = features * valid[..., None]
        gram = torch.einsum("tgbf,tgbh->gfh", weighted, features)
        rhs = torch.einsum("tgbf,tgb->gf", weighted, self._grouped(returns.double()))[..., None]
        identity = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        weights = torch.full_like(rhs[..., 0], torch.nan)
        for attempt in range(5):  # each group keeps its first finite solution
            reg_coeff = self.reg_coeff * 10.0**attempt
            todo = ~torch.isfinite(weights).all(-1)
            if not todo.any():
                break
            solution = torch.linalg.lstsq(gram[todo] + reg_coeff * identity, rhs[todo]).solution
            weights[todo] = solution[..., 0]
        if not torch.isfinite(weights).all():
            raise RuntimeError(
                f"LinearFeatureBaseline: no finite fit with reg_coeff up to {reg_coeff:g}"
            )
        self.weights = weights

    def predict(self, observations: Tensor, mask: Tensor, dones: Tensor) -> Tensor:
        """Values `[T, B]` in the observations' dtype; 0 on padding, and everywhere before `fit`."""
        valid = mask.bool()
        if self.weights is None:
            return torch.zeros(valid.shape, dtype=observations.dtype, device=observations.device)
        features = self._grouped(_features(observations, dones))
        values = torch.einsum("tgbf,gf->tgb", features, self.weights).reshape(valid.shape)
        return torch.where(valid, values, 0.0).to(observations.dtype)

    def _grouped(self, x: Tensor) -> Tensor:
        """`x` `[T, B, ...]` as `[T, groups, B / groups, ...]`."""
        if x.shape[1] % self.groups:
            raise ValueError(f"{x.shape[1]} columns do not split into {self.groups} groups")
        return x.reshape(x.shape[0], self.groups, x.shape[1] // self.groups, *x.shape[2:])
