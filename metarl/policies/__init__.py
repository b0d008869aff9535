"""Policies: the networks that the sampler runs and the backend differentiates.

A layer of its own below sampling (docs/architecture.md): `distributions` (action
distributions), `functional` (parameters as dicts, `call`), `networks` (MLPs, the GRU),
`attention` (SNAIL and a causal Transformer for RL²).
"""

from metarl.policies.attention import SNAILPolicy, TransformerPolicy, TrialInputs
from metarl.policies.distributions import CategoricalActions, DiagGaussian, DistParams
from metarl.policies.functional import Params, call, parameters
from metarl.policies.networks import (
    CategoricalMLPPolicy,
    GaussianMLPPolicy,
    GRUPolicy,
    flat_obs_dim,
    make_policy,
    make_recurrent_policy,
    mlp,
    unroll,
)

__all__ = [
    "CategoricalActions",
    "CategoricalMLPPolicy",
    "DiagGaussian",
    "DistParams",
    "GRUPolicy",
    "GaussianMLPPolicy",
    "Params",
    "SNAILPolicy",
    "TransformerPolicy",
    "TrialInputs",
    "call",
    "flat_obs_dim",
    "make_policy",
    "make_recurrent_policy",
    "mlp",
    "parameters",
    "unroll",
]
