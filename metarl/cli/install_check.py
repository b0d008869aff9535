"""Diagnose a mujoco install that cannot load, for a one-line error: one that a downgrade left
half-replaced, or a `MUJOCO_GL` backend whose library is missing.

Installing the `metaworld` extra over mujoco 4 makes pip downgrade `mujoco` to 3.3.0 (Meta-World's
pin) while `mujoco-core` and `mujoco-studio` 4.0.0, which mujoco 3 does not have, stay installed;
their plugin libraries then break `import mujoco` with an `OSError` naming `libmujoco.so.4...`.
"""

from __future__ import annotations

import os
import traceback
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


GL_MODULES = ("/OpenGL/", "/mujoco/egl/", "/mujoco/osmesa/", "/mujoco/glfw/")
"""Where in a traceback a GL backend's loading fails (PyOpenGL, mujoco's GL contexts)."""


def broken_gl(error: BaseException) -> str | None:
    """The one-line diagnosis of `error` if it was raised while mujoco loaded the GL backend
    that `MUJOCO_GL` names (mujoco imports it with itself, so a missing OSMesa breaks every
    command), else None."""
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        return None
    frames = traceback.extract_tb(error.__traceback__)
    if not any(any(m in frame.filename for m in GL_MODULES) for frame in frames):
        return None
    libraries = {"egl": "libegl1", "osmesa": "libosmesa6", "glfw": "libglfw3"}
    library = libraries.get(backend.lower(), "its library")
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"MUJOCO_GL={backend} cannot be loaded ({type(error).__name__}: {reason[:100]}): install "
        f"{library} (Debian/Ubuntu: apt install {library}) or set MUJOCO_GL to a backend this "
        "machine has (egl, osmesa)"
    )
