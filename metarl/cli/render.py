"""`metarl render`: a video of a trained policy on one task before and after adaptation, side by
side (docs/architecture.md §7).

Each side is one episode of the run's env with `render_mode="rgb_array"` (offscreen MuJoCo,
through the model's `track` camera where it has one, which follows the body),
acted by `metarl.load(run_dir).adapt(...)` with budget 0 (left) and the requested budget
(right); a header over each names it and gives the episode's return. The shorter episode holds
its last frame. MP4 through imageio's ffmpeg plugin (`imageio-ffmpeg`), GIF through Pillow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from matplotlib.figure import Figure

from metarl.training.checkpoint import write_atomically
from metarl.training.deploy import AdaptedPolicy, MetaPolicy

FORMATS = (".mp4", ".gif")
"""The video formats `-o` takes, by suffix."""

GL_FIX = (
    "offscreen rendering needs OpenGL: install EGL (Debian/Ubuntu: apt install libegl1) and run "
    "with MUJOCO_GL=egl, or OSMesa (apt install libosmesa6) with MUJOCO_GL=osmesa"
)


def render_video(
    run_dir: Path,
    task: dict[str, Any],
    budget: int,
    out_file: Path,
    *,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    deterministic: bool = True,
) -> dict[str, Any]:
    """Write the before/after video of `run_dir` on `task` to `out_file` (`.mp4` or `.gif`);
    returns each side's label, return and frame count. `budget`: inner steps or episodes, as
    `MetaPolicy.adapt` counts them."""
    out_file = Path(out_file)
    if out_file.suffix.lower() not in FORMATS:
        raise ValueError(f"-o {out_file}: the video formats are {', '.join(FORMATS)}")
    os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen by default; read at the first render
    with MetaPolicy(Path(run_dir)) as meta:
        env = _render_env(meta, size)
        try:
            env.unwrapped.set_task(task)
            sides = []
            unit = meta.budget_unit.removesuffix("s") if budget == 1 else meta.budget_unit
            for label, k in (("before adaptation", 0), (f"after {budget} {unit}", budget)):
                policy = meta.adapt(None, task, k, deterministic=deterministic)
                frames, total = _episode_frames(env, policy, seed)
                sides.append({"label": label, "return": total, "frames": frames})
            fps = env.metadata.get("render_fps") or 30
        finally:
            env.close()
    video = _side_by_side(sides)
    _write_video(out_file, video, fps)
    return {
        "video": str(out_file),
        "sides": [
            {k: v for k, v in s.items() if k != "frames"} | {"frames": len(s["frames"])}
            for s in sides
        ],
    }


def check_renders(env_id: str) -> None:
    """A one-line `ValueError` if the env has no `rgb_array` render mode."""
    spec = gym.spec(env_id)
    creator = gym.envs.registration.load_env_creator(spec.entry_point)
    modes = creator.metadata.get("render_modes", [])
    if "rgb_array" not in modes:
        raise ValueError(f"{env_id} does not render (its render modes: {modes or 'none'})")


def _render_env(meta: MetaPolicy, size: tuple[int, int]) -> gym.Env:
    """The run's env rendering RGB arrays, at the run's horizon; a one-line error for an env
    that cannot render."""
    check_renders(meta.run.env)
    spec = gym.spec(meta.run.env)
    horizon = meta.run.config.get("horizon") or spec.max_episode_steps
    width, height = size
    kwargs = {**meta.run.env_kwargs, "render_mode": "rgb_array", "width": width, "height": height}
    if _has_tracking_camera(meta.run.env, meta.run.env_kwargs):
        kwargs["camera_name"] = "track"  # follows the body: a running cheetah stays in view
    return gym.make(meta.run.env, max_episode_steps=horizon, **kwargs)


def _has_tracking_camera(env_id: str, env_kwargs: dict[str, Any]) -> bool:
    """Whether the env is one of metarl's MuJoCo envs and its model has the `track` camera that
    Gymnasium's locomotion models define."""
    import mujoco

    from metarl.envs.mujoco_task import MujocoTaskEnv

    probe = gym.make(env_id, **env_kwargs)
    try:
        env = probe.unwrapped
        if not isinstance(env, MujocoTaskEnv):
            return False
        return mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0
    finally:
        probe.close()


def _episode_frames(
    env: gym.Env, policy: AdaptedPolicy, seed: int
) -> tuple[list[np.ndarray], float]:
    """One episode acted by `policy`: every frame (the first after reset) and the return."""
    frames: list[np.ndarray] = []
    total = policy.episode(env, seed=seed, each_step=lambda: frames.append(_frame(env)))
    return frames, total


def _frame(env: gym.Env) -> np.ndarray:
    """The env's current frame; the GL error as the one-line fix."""
    try:
        frame = env.render()
    except Exception as error:  # GL context errors come as many types (mujoco's, PyOpenGL's)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{GL_FIX} ({reason[:120]})") from None
    if frame is None:
        raise ValueError(GL_FIX)
    return np.asarray(frame, dtype=np.uint8)


def _side_by_side(sides: list[dict[str, Any]]) -> np.ndarray:
    """[frames, height + header, width × sides + gaps, 3]: each side under its header, the
    shorter episode holding its last frame."""
    length = max(len(s["frames"]) for s in sides)
    height, width = sides[0]["frames"][0].shape[:2]
    columns = []
    for side in sides:
        frames = np.stack(side["frames"] + [side["frames"][-1]] * (length - len(side["frames"])))
        header = _header(f"{side['label']}: return {side['return']:.1f}", width)
        columns.append(
            np.concatenate([np.broadcast_to(header, (length, *header.shape)), frames], 1)
        )
        columns.append(np.full((length, height + header.shape[0], 4, 3), 255, np.uint8))
    return np.ascontiguousarray(np.concatenate(columns[:-1], axis=2))


def _header(text: str, width: int, height: int = 24) -> np.ndarray:
    """`text` on white, `height` × `width` RGB, drawn once by matplotlib."""
    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    # A character is about 0.6 em wide: the size that fits the text in the width, at most 9 pt.
    fontsize = min(9.0, width / (len(text) * 0.6 * dpi / 72))
    figure.text(0.5, 0.5, text, ha="center", va="center", fontsize=fontsize)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="rgba", dpi=dpi, facecolor="white")
    image = np.frombuffer(buffer.getvalue(), np.uint8).reshape(height, width, 4)
    return image[..., :3].copy()


def _write_video(out_file: Path, video: np.ndarray, fps: float) -> None:
    """The frames as `out_file`, written atomically; a one-line error naming a missing plugin."""
    import imageio.v3 as iio

    suffix = out_file.suffix.lower()
    try:
        if suffix == ".mp4":
            # Sizes in whole 16-pixel macro blocks for the H.264 encoder: white padding.
            pad_h, pad_w = -video.shape[1] % 16, -video.shape[2] % 16
            video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=255)
            data = iio.imwrite("<bytes>", video, extension=".mp4", fps=fps, codec="libx264")
        else:
            data = iio.imwrite("<bytes>", video, extension=".gif", duration=1000 / fps, loop=0)
    except (ImportError, OSError, RuntimeError) as error:
        raise ValueError(
            f"writing {suffix} needs imageio's plugin ({error}); pip install imageio-ffmpeg for "
            "MP4, or use -o FILE.gif"
        ) from None
    write_atomically(out_file, lambda file: file.write(data))
