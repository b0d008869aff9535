"""Sampling: (policy, parameters, tasks) → `Episodes`, one batched step for all envs.

`VectorSampler` steps a batch env: `MujocoBatchEnv` (metarl's MuJoCo envs, C threads) or
`GymBatchEnv` (any other Gymnasium env, worker processes); `tasks` draws training and held-out
tasks from an env's seeded distribution.
"""

from metarl.sampling.episodes import Episodes
from metarl.sampling.sampler import VectorSampler

__all__ = ["Episodes", "VectorSampler"]
