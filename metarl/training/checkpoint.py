"""Run-folder files written atomically, and checkpoints read with clear errors
(docs/architecture.md §7)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

FORMAT = "metarl-checkpoint-1"


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a temporary file beside `path`, fsync it and rename it over `path`, so
    that a crash or Ctrl-C leaves either the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (tensors and plain values) to `path` atomically."""
    write_atomically(path, lambda file: torch.save({"format": FORMAT, **payload}, file))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The payload saved at `path`, or a one-line `ValueError` naming the file and its fault."""
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        # torch's messages run to paragraphs; their first sentence says what failed.
        reason = str(error).strip().split(". ")[0].split("\n")[0]
        detail = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
        raise ValueError(
            f"checkpoint {path} is corrupt, truncated or not a torch file ({detail})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is a torch file but not a metarl checkpoint")
    return payload
