"""metarl's meta-RL agents (MAML family, ProMP, RL², PEARL, Reptile), by CLI name.

`AGENTS` maps each CLI name to a one-line description; it grows as agents land (DESIGN §5, §7).
"""

AGENTS: dict[str, str] = {}
