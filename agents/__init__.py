"""metarl's agents: the meta-RL learners and the single-task baselines
(docs/architecture.md §5, §7).

`AGENTS` maps each trainable agent's CLI name to a one-line description (`registry.REGISTRY`
says how to build it); `REFERENCE_AGENTS` does the same for the reference agents that need no
training (`reference.REFERENCE_AGENTS`), which `metarl evaluate --agent` runs.
"""

from metarl.agents.reference import REFERENCE_AGENTS as _REFERENCE_SPECS
from metarl.agents.registry import REGISTRY

AGENTS: dict[str, str] = {name: spec.description for name, spec in REGISTRY.items()}
REFERENCE_AGENTS: dict[str, str] = {
    name: spec.description for name, spec in _REFERENCE_SPECS.items()
}
