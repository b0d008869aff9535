"""`python killable.py N ARGS...`: run `metarl ARGS...` in a process that SIGKILLs itself at
its Nth file-write event (N = 0: never), the crash a power cut or the OOM killer causes.

The events are those of `metarl.training.checkpoint.write_atomically`, through which every
run-folder file but the TensorBoard events is written: for each file, the middle of writing
its bytes (half of them written), the fsync, and the rename over the old file, in that order.
So N = 1, 2, 3, … walks a kill through every moment of every write that changes the folder.
`metarl train` prints `write events: K` on stderr at exit (with N = 0), which bounds N.
"""

from __future__ import annotations

import os
import signal
import sys
from types import SimpleNamespace
from typing import Any

from metarl.training import checkpoint


def install(kill_at: int) -> list[int]:
    """Count `write_atomically`'s events and SIGKILL this process at the `kill_at`th (0:
    count only); returns the one-element counter."""
    count = [0]

    def event() -> None:
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    class HalfThenKill:
        """A binary file whose first `write` stops half-way for a kill event (torch.save
        writes in many chunks: one event per file, after its first half-chunk)."""

        def __init__(self, file: Any) -> None:
            self.file = file
            self.started = False

        def write(self, data: bytes) -> int:
            if self.started:
                return self.file.write(data)
            self.started = True
            data = bytes(data)
            half = len(data) // 2
            self.file.write(data[:half])
            self.file.flush()
            event()
            return self.file.write(data[half:]) + half

        def __getattr__(self, name: str) -> Any:
            return getattr(self.file, name)

        def __enter__(self) -> HalfThenKill:
            return self

        def __exit__(self, *exc: object) -> None:
            if not self.started:  # an empty file (progress.csv of no rows) has its event too
                event()
            self.file.close()

    def fsync(fd: int) -> None:
        event()
        os.fsync(fd)

    def replace(source: str, target: str) -> None:
        event()
        os.replace(source, target)

    checkpoint.open = lambda *args, **kwargs: HalfThenKill(open(*args, **kwargs))
    checkpoint.os = SimpleNamespace(**{**vars(os), "fsync": fsync, "replace": replace})
    return count


def main() -> int:
    """Run the command line with the kill installed."""
    kill_at, args = int(sys.argv[1]), sys.argv[2:]
    count = install(kill_at)
    from metarl.cli import main as cli

    status = cli(args)
    print(f"write events: {count[0]}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
