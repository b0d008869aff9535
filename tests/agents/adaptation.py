"""What the MAML-family learning tests measure: mean return on held-out tasks before and after
one inner step, optionally leaving the agent's RNGs as they were."""

import copy


def held_out_returns(agent, tasks, restore=True):
    """(pre, post): mean return over `tasks` before and after one inner step. With `restore`
    the agent's state (its sampler's RNG) is put back afterwards, so evaluating mid-training
    does not change the training run."""
    state = copy.deepcopy(agent.state_dict()) if restore else None
    pre, post = agent.adaptation_returns(tasks, 1).mean(1).tolist()
    if state is not None:
        agent.load_state_dict(state)
    return pre, post
