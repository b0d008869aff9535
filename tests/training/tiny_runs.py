"""Tiny configs of every agent, for run-folder tests that need real but quick iterations."""

import dataclasses

from metarl.agents.registry import REGISTRY

TINY = {
    "meta_batch_size": 2,
    "episodes_per_task": 2,
    "horizon": 10,
    "hidden_sizes": [8],
    "hidden_size": 8,
    "episodes_per_trial": 2,
    "num_workers": 0,
    # PEARL's own sizes
    "num_train_tasks": 2,
    "batch_size": 8,
    "context_batch_size": 4,
    "num_initial_episodes": 1,
    "num_tasks_sample": 1,
    "num_prior_episodes": 1,
    "num_extra_posterior_episodes": 1,
    "num_gradient_steps": 2,
    "encoder_hidden_sizes": [8],
    "num_eval_tasks": 1,
    # VariBAD's own sizes
    "encoder_hidden_size": 8,
    "embedding_size": 4,
    "policy_hidden_sizes": [8],
    "decoder_hidden_sizes": [8],
    "vae_batch_trials": 2,
    "vae_buffer_trials": 8,
}


def tiny(agent, **values):
    """TINY, less the keys the agent's config lacks (single-task agents have no task batch)."""
    names = {f.name for f in dataclasses.fields(REGISTRY[agent].config_class)}
    return {**{k: v for k, v in TINY.items() if k in names}, **values}
