"""Where an agent's networks, buffers and updates live: `auto`, `cpu` or `cuda[:N]`, as SB3's
`device` argument.

Sampling always runs on the CPU (the physics is there, and a batch of small forwards is faster
on the host than a round trip per env step); the sampler takes a CPU copy of a policy that
lives elsewhere, once per collection (`metarl.sampling.sampler`). Random draws come from CPU
generators on every device and are moved to the update's device, so a run on CUDA sees the
same minibatches, noise and tasks as on the CPU and differs from it only by float rounding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import Tensor

DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"
"""The values a `device` config key takes, as its messages spell them."""


def resolve_device(name: str) -> torch.device:
    """The torch device `name` names: `auto` is CUDA's first device where torch finds one and
    the CPU otherwise. A CUDA device that is absent is a one-line `ValueError` (never a silent
    fall-back to the CPU: a run asked for a GPU should not take days on a laptop unnoticed)."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ValueError(f"config key 'device' must be {DEVICES}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ValueError(
            f"config key 'device' is {name!r} but torch finds no CUDA device (a CPU-only torch "
            "build or no GPU); use device=cpu or device=auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"config key 'device' is {name!r} but torch finds {torch.cuda.device_count()} CUDA "
            "device(s)"
        )
    return device


def adam(params: Iterable[Tensor], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam over `params`, which live on `device`: fused into one kernel per step on CUDA
    (where a step of many small tensors is otherwise launch-bound); torch's default
    implementation on the CPU, whose results a seed has always given."""
    return torch.optim.Adam(params, lr=lr, fused=True if device.type == "cuda" else None)
