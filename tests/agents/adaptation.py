"""What the MAML-family tests share: synthetic task stacks, the learning tests' tiny
Navigation2D setting, the zero-action yardstick, and the mean return on held-out tasks before
and after one inner step."""

import copy

import numpy as np
import torch

from metarl.agents.parts.inner_loop import TaskStack


def synthetic_stack(policy, seed, tasks=2, steps=6, columns=3):
    """Episodes of n tasks sampled by `policy` (their log-probs are its own), fixed advantages,
    one shorter episode, float64."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(tasks, steps, columns, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = policy(obs)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=g, dtype=torch.float64)
        log_probs = policy.action_dist.distribution((mean, log_std)).log_prob(actions)
    mask = torch.ones(tasks, steps, columns, dtype=torch.float64)
    mask[1, -2:, 0] = 0  # one shorter episode
    advantages = torch.randn(tasks, steps, columns, generator=g, dtype=torch.float64)
    return TaskStack(obs, actions, log_probs, mask, advantages)


TINY_NAVIGATION = dict(
    meta_batch_size=10, episodes_per_task=10, horizon=20, hidden_sizes=(32, 32), num_workers=0
)
"""10 tasks × 10 episodes × 20 steps (1/40 of the paper's batch): Navigation2D moves at most
0.1 a step and its goals lie in [−0.5, 0.5]², so 20 steps reach any goal."""


def zero_action_return(tasks, horizon):
    """Mean return of the policy that never moves: the point stays at the origin, so every step
    costs ‖g‖₂."""
    return -horizon * float(np.mean([np.hypot(*task["goal"]) for task in tasks]))


def held_out_returns(agent, tasks, restore=True):
    """(pre, post): mean return over `tasks` before and after one inner step. With `restore`
    the agent's state (its sampler's RNG) is put back afterwards, so evaluating mid-training
    does not change the training run."""
    state = copy.deepcopy(agent.state_dict()) if restore else None
    pre, post = agent.adaptation_returns(tasks, 1).mean(1).tolist()
    if state is not None:
        agent.load_state_dict(state)
    return pre, post


def train_and_measure(agent, iterations, tasks):
    """(untrained post-update, trained pre-update, trained post-update) mean returns on `tasks`
    around `iterations` training steps; the agent is closed afterwards."""
    try:
        _, untrained_post = held_out_returns(agent, tasks)
        for _ in range(iterations):
            agent.train_step()
        pre, post = held_out_returns(agent, tasks)
    finally:
        agent.close()
    return untrained_post, pre, post
