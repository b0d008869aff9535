"""The `metarl` command line: train, evaluate, plot, bench, demo, list."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. The command modules (torch, the agents:
    seconds to import) load here, so that a Ctrl-C during start-up is one line too."""
    try:
        from metarl.cli.main import main as run

        return run(argv)  # inside: a command may import a C extension lazily
    except KeyboardInterrupt:
        print("metarl: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a shared library that cannot load, at import
        from metarl.cli.install_check import broken_mujoco

        diagnosis = broken_mujoco(error)
        if diagnosis is None:
            raise
        print(f"metarl: error: {diagnosis}", file=sys.stderr)
        return 2
    except ImportError as error:
        # A Ctrl-C while a C extension (mujoco, torch) initializes surfaces as an ImportError
        # ("initialization failed") whose cause is the KeyboardInterrupt.
        if not _caused_by_interrupt(error):
            return _gl_error(error)
        print("metarl: interrupted", file=sys.stderr)
        return 130
    except (AttributeError, RuntimeError) as error:  # PyOpenGL without the backend's library
        return _gl_error(error)


def _gl_error(error: Exception) -> int:
    """Exit status 2 with the one-line diagnosis of a GL backend that cannot load (re-raise
    anything else)."""
    from metarl.cli.install_check import broken_gl

    diagnosis = broken_gl(error)
    if diagnosis is None:
        raise error
    print(f"metarl: error: {diagnosis}", file=sys.stderr)
    return 2


def _caused_by_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is somewhere in `error`'s chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


__all__ = ["main"]
