"""`render_mode="rgb_array"` draws MuJoCo envs offscreen where EGL or OSMesa is available."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import gymnasium as gym, numpy as np, metarl
for env_id in ("metarl/HalfCheetahVel-v0", "metarl/AntGoal-v0"):
    env = gym.make(env_id, render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8, frame.shape
    assert frame.std() > 1.0, "blank frame"
    env.close()
print("rendered")
"""


def render_with(backend):
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )


def test_mujoco_envs_render_rgb_arrays_offscreen():
    # MuJoCo picks its GL backend at import, so each backend is tried in a fresh process.
    failures = {}
    for backend in ("egl", "osmesa"):
        result = render_with(backend)
        if result.returncode == 0:
            assert "rendered" in result.stdout
            return
        failures[backend] = result.stderr.strip().splitlines()[-1:]
        if "AssertionError" in result.stderr:
            pytest.fail(f"{backend} rendered a wrong frame: {result.stderr}")
    pytest.skip(f"no offscreen GL here: {failures}")
