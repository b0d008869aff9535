"""The nested progress bar under the trainer's iteration bar: the phases an agent reports
inside one iteration (`metarl.backend.progress`), each with its count and steps/s, so that a
minutes-long PEARL or MAML-TRPO iteration never leaves a silent screen."""

from __future__ import annotations

from typing import IO

from tqdm import tqdm


class PhaseBar:
    """A `Progress` drawn as one tqdm bar that each phase resets: "gradient steps 412/2000
    [00:41, 10.1 steps/s]". Like tqdm's own default it draws only on a terminal (`file` a TTY)
    unless `disable` says otherwise, so logs and pipes get the iteration rows alone."""

    def __init__(self, file: IO[str] | None = None, disable: bool | None = None) -> None:
        """A bar on `file` (tqdm's default: stderr) below the iteration bar (position 1); it
        is removed when closed."""
        self._bar = tqdm(total=0, position=1, leave=False, unit="step", file=file, disable=disable)

    def phase(self, name: str, total: int) -> None:
        """Start the phase `name` of `total` steps: the count, the clock and the rate restart."""
        self._bar.reset(total=total)
        self._bar.set_description_str(name, refresh=False)
        self._bar.refresh()

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps of the current phase."""
        self._bar.update(steps)

    def close(self) -> None:
        """Remove the bar."""
        self._bar.close()
