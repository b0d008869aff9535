"""The settings every few-shot learner has, declared once (issue 19): each learner's config
dataclass extends `FewShotConfig` with its own fields, as the RL agents' extend `AgentConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from metarl.agents.parts.checks import (
    check_choice,
    check_float,
    check_int,
    check_seed,
    check_sizes,
)
from metarl.backend.device import resolve_device

SAVE_SECONDS = 2.0
"""How often the trainer saves a few-shot run (its `save_seconds`): an iteration takes
milliseconds, and a checkpoint per iteration would take most of the time."""

CHECKPOINT_EVERY = 5000
"""Iterations between a few-shot run's kept checkpoints (`metarl train`'s default): at the RL
runs' 50, a 70,000-iteration sinusoid run kept 1,400 checkpoints, 4 GB with their rows."""

BACKBONES = ("auto", "mlp", "conv")
"""The values of the `backbone` key."""


@dataclass
class FewShotConfig:
    """The fields the trainer and every few-shot learner share."""

    iterations: int = 1000
    """Meta-iterations the trainer runs (one meta-batch of tasks each), >= 1."""
    seed: int = 0
    """Seeds the initial weights, the training tasks and every other draw, each from the
    learner's own generators. An integer in [0, 2**32)."""
    meta_batch_size: int = 25
    """Tasks per meta-iteration, >= 1 (Finn et al. 2017: 25 for the sinusoid, 32 for Omniglot)."""
    shots: int = 10
    """K: support examples per class (classification) or per task (regression), >= 1."""
    queries: int = 10
    """Query examples per class or per task, on which the adapted learner is measured, >= 1."""
    backbone: str = "auto"
    """The network: 'mlp' (ReLU layers of `hidden_sizes` on flattened inputs), 'conv' (the
    four-block conv net of Vinyals et al. 2016: `conv_channels` 3×3 filters, batch norm, ReLU,
    2×2 max-pool while the image is larger than 2×2) or 'auto' (conv for images, else mlp)."""
    hidden_sizes: Sequence[int] = (40, 40)
    """Hidden widths of the 'mlp' backbone (Finn et al. 2017's sinusoid net: 40, 40)."""
    conv_channels: int = 64
    """Filters per block of the 'conv' backbone, >= 1 (64 in Vinyals et al. and MAML)."""
    conv_blocks: int = 4
    """Blocks of the 'conv' backbone, >= 1."""
    outer_lr: float = 1e-3
    """Step size of the meta-optimizer (Adam unless the learner says otherwise), > 0."""
    threads: int = 1
    """torch's intra-op threads while the learner trains and is evaluated, >= 1 (the trainer and
    `metarl evaluate` set them). The networks here are small: MAML's sinusoid iteration took
    3.3 ms on one thread and 37 ms on two of a loaded 2-core machine."""
    device: str = "auto"
    """Where the networks and updates live: 'auto' (CUDA where torch finds a GPU, else the CPU),
    'cpu', 'cuda' or 'cuda:N'. Tasks are drawn on the CPU, so a seed gives the same run on any
    device up to float rounding."""

    def __post_init__(self) -> None:
        """Check the shared fields (each learner's config checks its own after calling this)."""
        check_int("iterations", self.iterations)
        check_seed("seed", self.seed)
        for name in (
            "meta_batch_size",
            "shots",
            "queries",
            "conv_channels",
            "conv_blocks",
            "threads",
        ):
            check_int(name, getattr(self, name))
        check_choice("backbone", self.backbone, BACKBONES)
        check_sizes("hidden_sizes", self.hidden_sizes)
        check_float("outer_lr", self.outer_lr, 0, low_open=True)
        resolve_device(self.device)  # a bad or absent device fails here, in one line

    @property
    def torch_device(self) -> torch.device:
        """The torch device `device` names (`auto` resolved on this machine)."""
        return resolve_device(self.device)


@dataclass
class GradientConfig(FewShotConfig):
    """The fields of a learner that adapts by gradient steps on the support set (MAML, FO-MAML,
    Meta-SGD, Reptile, the fine-tuned baselines)."""

    inner_lr: float = 0.01
    """α of the inner SGD step, >= 0 (Finn et al. 2017: 0.01 for the sinusoid, 0.4 for
    Omniglot); with `learn_inner_lr` the initial value, then > 0."""
    num_inner_steps: int = 1
    """Inner steps per task in meta-training, >= 1 (evaluation takes any number)."""

    def __post_init__(self) -> None:
        """Check the shared fields, then the inner step's."""
        FewShotConfig.__post_init__(self)
        check_float("inner_lr", self.inner_lr, 0)
        check_int("num_inner_steps", self.num_inner_steps)
