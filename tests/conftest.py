"""Shared test settings: one BLAS/torch thread (CI has 2 cores) and the envs registered."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import metarl  # noqa: F401  (registers metarl/<Name>-v0 with Gymnasium)
