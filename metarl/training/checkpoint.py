"""Run-folder files written atomically, and checkpoints read with clear errors
(docs/architecture.md §7)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

FORMAT = "metarl-checkpoint-2"
"""What a checkpoint's `format` says. 2 adds the run's identity (`run`: agent and env) and its
progress rows (`progress`) to 1's iteration, env_steps, wall_time, agent and global_rng."""
READABLE = ("metarl-checkpoint-1", FORMAT)


EXPERIENCE_COLUMNS = ("env_steps", "examples")
"""What a run's experience is counted in, the x-axis of its curves: env steps (the RL agents) or
labelled examples (the few-shot learners, `metarl.fewshot`); a run has exactly one of them."""


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temporary file beside `path`, fsync it and rename it over `path`, so
    that a crash or Ctrl-C leaves either the old file or the new one, never a torn one."""
    make_folder(path.parent)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def make_folder(path: Path) -> Path:
    """Create the folder `path` (and its parents) for files to be written into, or a one-line
    `ValueError` if it is a file, lies under a file, or cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"cannot create {path}: a part of its path is a file") from None
    except OSError as error:
        raise ValueError(f"cannot create {path}: {error.strerror}") from None
    return path


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (tensors and plain values) to `path` atomically."""
    write_atomically(path, lambda file: torch.save({"format": FORMAT, **payload}, file))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The payload saved at `path`, or a one-line `ValueError` naming the file and its fault."""
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # GPU runs too
    except Exception as error:  # torch raises many types for truncated or foreign files
        # torch's messages run to paragraphs; their first sentence says what failed.
        reason = str(error).strip().split(". ")[0].split("\n")[0]
        detail = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
        raise ValueError(
            f"checkpoint {path} is corrupt, truncated or not a torch file ({detail})"
        ) from None
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("metarl-"):
        raise ValueError(f"{path} is a torch file but not a metarl checkpoint")
    if payload["format"] not in READABLE:
        raise ValueError(
            f"{path} is a {payload['format']} file; this metarl reads {', '.join(READABLE)}: "
            "upgrade metarl"
        )
    missing = [key for key in ("iteration", "agent") if key not in payload]
    if not any(key in payload for key in EXPERIENCE_COLUMNS):
        missing.append(" or ".join(EXPERIENCE_COLUMNS))
    if missing:
        raise ValueError(f"checkpoint {path} lacks {', '.join(missing)}")
    return payload


def restore_agent(agent: Any, payload: dict[str, Any], path: Path, what: str) -> None:
    """Load the checkpoint `payload` read from `path` into `agent`, or a one-line `ValueError`
    if it is another agent's or env's (`what` names the run's agent and env), or its tensors
    have other shapes (another config's network sizes)."""
    identity = payload.get("run")
    if identity is not None and f"{identity['agent']} on {identity['env']}" != what:
        raise ValueError(
            f"checkpoint {path} is from {identity['agent']} on {identity['env']}, but the run "
            f"folder's config.yaml describes {what}"
        )
    try:
        agent.load_state_dict(payload["agent"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {path} does not fit {what} as config.yaml configures it ({reason[:200]})"
        ) from None
