"""metarl's agents by CLI name: the meta-RL agents and the single-task baselines (DESIGN §5, §7).

`AGENTS` maps each CLI name to a one-line description; it grows as agents land.
"""

AGENTS: dict[str, str] = {
    "trpo": "single-task TRPO (Schulman et al. 2015), the non-meta baseline: metarl.agents.trpo",
    "ppo": "single-task PPO (Schulman et al. 2017), the non-meta baseline: metarl.agents.ppo",
}
