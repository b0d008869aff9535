"""Route MuJoCo's C-level warnings to Python's `warnings`, dropping one known deprecation.

MuJoCo 4 warns that HalfCheetah's XML uses `settotalmass`, on stderr and into `MUJOCO_LOG.TXT` in
the working directory, every time the model compiles (docs/architecture.md §1). The model is
Gymnasium's, so the warning is not ours to fix; every other MuJoCo warning still reaches the user.
"""

from __future__ import annotations

import warnings

import mujoco

_IGNORED = ("'settotalmass' is deprecated",)


def _forward_warning(message: str) -> None:
    if not any(pattern in message for pattern in _IGNORED):
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def install() -> None:
    """Make `_forward_warning` MuJoCo's process-wide warning handler."""
    mujoco.set_mju_user_warning(_forward_warning)
