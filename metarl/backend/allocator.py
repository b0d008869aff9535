"""Keep freed tensor memory in the process, so that large CPU tensors are not page-faulted in anew
each time they are allocated.

glibc's malloc serves every block above its mmap threshold (at most 32 MiB) with a fresh `mmap`
and returns it to the OS on free, so each such tensor costs one page fault per 4 KiB page when it
is first written. A meta-batch's activations are of that size (MAML's HalfCheetah batch: 160k
steps × 64 units × 4 B = 41 MiB per layer), and the meta-update allocates hundreds of them per
iteration: measured on the 2-core machine (benchmarks/fisher_product.py, without the inner
loop's task chunks), one exact Fisher-vector product of that batch took 1.95–3.42 s with the
default allocator and 0.85–0.96 s with freed memory kept (benchmarks/README.md, "Where an
iteration's time goes"). `keep_freed_memory` turns mmap off for malloc
and raises the trim threshold, so freed blocks stay in the heap for the next tensor; the peak
resident memory is unchanged, but it is not handed back to the OS until the process ends.

It changes the C allocator of the whole process (there is one), so metarl calls it only where it
owns the process: `metarl train`, `metarl evaluate` and `metarl bench`. A library user who wants
the same speed calls it once at start-up. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
"""glibc's mallopt parameter: free heap top memory above this many bytes goes back to the OS."""
M_MMAP_MAX = -4
"""glibc's mallopt parameter: how many blocks may be served by mmap at once (0: none)."""
TRIM_THRESHOLD = 1 << 30
"""Heap memory kept after a free: 1 GiB, above any meta-batch's working set."""


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (see the module docstring); True when it
    took effect, False where the C library is not glibc. Idempotent."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
