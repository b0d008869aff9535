"""Training: the one trainer loop and its run folder, config loading, checkpoints, the logger,
and evaluation on held-out tasks (numbers only; `metarl.cli.report` writes them out).
"""
