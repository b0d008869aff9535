"""metarl: meta-reinforcement learning on Gymnasium and MuJoCo.

`import metarl` registers the task-distribution envs (`metarl/<Name>-v0`) with Gymnasium;
`metarl.load(run_dir)` gives a trained agent to adapt and act with from Python
(`metarl.training.deploy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from metarl import envs  # noqa: F401  (registers the envs with Gymnasium)

if TYPE_CHECKING:
    from pathlib import Path

    from metarl.training.deploy import MetaPolicy


def load(run_dir: str | Path) -> MetaPolicy:
    """The trained agent of a run folder, ready to `adapt(env, task, budget)` to a task and
    `act` (`metarl.training.deploy`); imported on first use, so `import metarl` stays light."""
    from metarl.training.deploy import load as load_run

    return load_run(run_dir)
