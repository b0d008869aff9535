"""metarl: meta-reinforcement learning on Gymnasium and MuJoCo.

`import metarl` registers the task-distribution envs (`metarl/<Name>-v0`) with Gymnasium.
"""

__version__ = "0.1.0"

from metarl import envs  # noqa: F401  (registers the envs with Gymnasium)
