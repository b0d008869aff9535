"""The `metarl` command line: train, evaluate, plot, bench, demo, list."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. The command modules (torch, the agents:
    seconds to import) load here, so that a Ctrl-C during start-up is one line too."""
    try:
        from metarl.cli.main import main as run
    except KeyboardInterrupt:
        print("metarl: interrupted", file=sys.stderr)
        return 130
    return run(argv)


__all__ = ["main"]
