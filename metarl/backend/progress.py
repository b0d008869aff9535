"""Progress inside one training iteration: named phases of counted steps (PEARL's gradient
steps, the conjugate gradient's Fisher products, the line search's candidates), so that a
minutes-long iteration shows where it is and how fast it goes.

Agents and the TRPO step report to a `Progress`; the trainer gives them one that draws a
nested progress bar (`metarl.training.trainer`), and everything else gets `SILENT`, which does
nothing. The reports change no value the agent computes.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives an iteration's phases and their steps."""

    def phase(self, name: str, total: int) -> None:
        """A phase of `total` steps (e.g. "gradient steps", 2000) begins; the last one ends."""

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps of the current phase are done."""


class Silent:
    """A `Progress` that ignores every report: the default of agents and backend functions."""

    def phase(self, name: str, total: int) -> None:
        """Ignore the phase."""

    def advance(self, steps: int = 1) -> None:
        """Ignore the steps."""


SILENT = Silent()
"""The `Progress` that reports nothing (stateless, so one instance serves every caller)."""
