"""metarl's agents: the meta-RL learners and the single-task baselines (DESIGN §5, §7).

`AGENTS` maps each CLI name to a one-line description; `registry.REGISTRY` says how to build it.
"""

from metarl.agents.registry import REGISTRY

AGENTS: dict[str, str] = {name: spec.description for name, spec in REGISTRY.items()}
