"""The `metarl` command line: train, evaluate, plot, bench, demo, list."""

from metarl.cli.main import main

__all__ = ["main"]
