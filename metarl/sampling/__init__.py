"""Sampling: (policy, parameters, tasks) → `Episodes`, one batched step for all envs.

`VectorSampler` steps a batch env: `MujocoBatchEnv` (metarl's MuJoCo envs, C threads),
`ToyBatchEnv` (Navigation2D, Bandit, TabularMDP: numpy arrays in this process) or `GymBatchEnv`
(any other Gymnasium env, worker processes); `tasks` draws training and held-out tasks from an
env's seeded distribution.

`Episodes` and `VectorSampler` are imported on first use: a `GymBatchEnv` worker process, which
imports this package to run `gym_batch_env._worker`, then starts without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metarl.sampling.episodes import Episodes
    from metarl.sampling.sampler import VectorSampler

__all__ = ["Episodes", "VectorSampler"]

_LAZY = {"Episodes": "metarl.sampling.episodes", "VectorSampler": "metarl.sampling.sampler"}


def __getattr__(name: str) -> Any:
    """`Episodes` and `VectorSampler`, imported from their modules when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *__all__})
