"""The policy-gradient backend: pure functions with `[T, B]` shape contracts.

`advantages` (discounted returns, GAE, normalization, GAE on a fitted baseline), `baselines`
(the linear feature baseline), `losses` (VPG, LVC, surrogates, KL) and `optim` (conjugate
gradient, Hessian- and Fisher-vector products, line search, `trpo_step`). Every agent uses
these; none re-implements them.
"""
