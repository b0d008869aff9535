"""Parts the agents are composed from: the agent protocols, the base config, the trust-region
update, the gradient-based inner loop and the single-task training loop."""
