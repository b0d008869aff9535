"""Diagnose a mujoco install that a downgrade left half-replaced, for a one-line error.

Installing the `metaworld` extra over mujoco 4 makes pip downgrade `mujoco` to 3.3.0 (Meta-World's
pin) while `mujoco-core` and `mujoco-studio` 4.0.0, which mujoco 3 does not have, stay installed;
their plugin libraries then break `import mujoco` with an `OSError` naming `libmujoco.so.4...`.
"""

from __future__ import annotations

from importlib import metadata


def broken_mujoco(error: OSError) -> str | None:
    """The one-line diagnosis and repair of `error` if it is that half-downgraded mujoco (the
    `mujoco` and `mujoco-core` distributions at different versions), else None."""
    if "libmujoco" not in str(error):
        return None
    try:
        mujoco, core = metadata.version("mujoco"), metadata.version("mujoco-core")
    except metadata.PackageNotFoundError:
        return None
    if mujoco == core:
        return None
    return (
        f"mujoco {mujoco} is installed beside mujoco-core {core}, left by a downgrade (the "
        "metaworld extra installed over mujoco 4?), and cannot load: repair it with `pip "
        f"uninstall -y mujoco-core mujoco-studio && pip install --force-reinstall --no-deps "
        f"mujoco=={mujoco}`, or install the extra into a fresh environment"
    )
