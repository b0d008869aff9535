"""Shared test settings: one BLAS/torch thread (CI has 2 cores) and the envs registered."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

import metarl  # noqa: F401  (registers metarl/<Name>-v0 with Gymnasium)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (logical CPUs for 3 actors, no network) for every test that
    samples on Ray; the test is skipped where the ray extra is not installed."""
    pytest.importorskip("ray", reason='the ray extra is not installed (pip install -e ".[ray]")')
    from metarl.sampling.ray_sampler import connect

    ray = connect(None, workers=3)
    yield ray
    ray.shutdown()
