"""Checkpoints written atomically and read with clear errors (DESIGN §7)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "metarl-checkpoint-1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` so that a crash leaves either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        torch.save({"format": FORMAT, **payload}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The payload saved at `path`, or a `ValueError` saying what is wrong with the file."""
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise ValueError(f"checkpoint {path} is corrupt or unreadable ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a metarl checkpoint")
    return payload
