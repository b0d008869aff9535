"""Shared test settings: keep torch and BLAS to one thread so the 2-core CI stays predictable."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
