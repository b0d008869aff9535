"""Learning tests (`learning`, part of the default run, so CI runs them): MAML-TRPO, FO-MAML and
E-MAML meta-learn on a small Navigation2D problem, and one inner step after training beats what
no non-learner reaches.

The problem (seed 0): 20 tasks × 10 episodes per iteration, 20-step episodes (the point moves up
to 0.1 per coordinate per step and goals lie in [−0.5, 0.5]², so 5 steps reach any goal), the
TRPO curvature on 5 of the 20 tasks, the sampler in this process (faster than worker processes
on so small a batch). After 40 iterations the agent adapts with one inner step on 40 held-out
tasks, and its post-update return must beat, each by a margin:
  (a) the same agent before training, after the same inner step;
  (b) the zero-action policy, which stays at the origin: return −horizon·‖g‖₂, exactly. The
      origin is the best fixed point for goals uniform on the square, so no policy that ignores
      the rewards does better in expectation (the best fixed point for the 40 held-out goals
      themselves, chosen in hindsight, gains at most 0.24 on seeds 0–3);
  (c) its own pre-update return: what the inner step gains must exceed what it gains untrained.
Each margin lies above every non-learner's value and below every trained agent's, measured for
the test seed and seeds 1–3 (non-learners for seeds 0–19); the numbers are beside each assertion.
For scale (seed 0): the untrained agent scores −10.57 before its inner step and −9.35 after, the
zero-action policy −6.95, the trained agents −4.2 to −4.7 after one step, and the best policy
that knows each goal −0.42.
"""

import pytest
from adaptation import held_out_returns, zero_action_return

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.registry import agent_spec
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks

SEED = 0
HORIZON = 20
ITERATIONS = 40
HELD_OUT = held_out_tasks("navigation2d", {}, SEED + HELD_OUT_SEED_OFFSET, 40)


@pytest.mark.learning
@pytest.mark.parametrize("name", ["maml-trpo", "fo-maml", "e-maml"])
def test_meta_training_makes_one_inner_step_beat_every_non_learner(name):
    config = MAMLConfig(
        meta_batch_size=20,
        episodes_per_task=10,
        horizon=HORIZON,
        fisher_tasks=5,
        num_workers=0,
        seed=SEED,
        **agent_spec(name).overrides,
    )
    agent = MAML("navigation2d", config)
    try:
        _, untrained_post = held_out_returns(agent, HELD_OUT, restore=False)
        for _ in range(ITERATIONS):
            agent.train_step()
        pre, post = held_out_returns(agent, HELD_OUT, restore=False)
    finally:
        agent.close()
    zero = zero_action_return(HELD_OUT, HORIZON)
    numbers = {"untrained post": untrained_post, "zero action": zero, "pre": pre, "post": post}

    # (a) post − untrained post. Non-learners: the untrained agent itself 0; the zero-action
    # policy 2.40 (seed 0), 1.14–3.09 (seeds 0–19). Trained, seeds 0/1/2/3: MAML-TRPO 5.17/5.92/
    # 5.69/5.26, FO-MAML 4.67/6.28/5.44/5.03, E-MAML 5.20/5.86/5.62/5.38.
    assert post > untrained_post + 3.75, numbers
    # (b) post − zero action. Non-learners: the zero-action policy 0; the best fixed point for
    # the held-out goals, in hindsight, 0.24 (seed 0), at most 0.24 (seeds 0–3); the untrained
    # agent after its inner step −2.40 (seed 0), −1.14 to −3.09 (seeds 0–19). Trained, seeds
    # 0/1/2/3: MAML-TRPO 2.76/3.51/3.52/3.91, FO-MAML 2.27/3.87/3.27/3.67, E-MAML 2.79/3.45/3.44/
    # 4.02.
    assert post > zero + 1.25, numbers
    # (c) post − pre. Non-learners: the untrained agent 1.21 (seed 0), 0.78–1.75 (seeds 0–19);
    # the zero-action policy 0 (it has nothing to adapt). Trained, seeds 0/1/2/3: MAML-TRPO 3.37/
    # 3.88/3.75/4.07, FO-MAML 2.80/4.25/3.65/3.90, E-MAML 3.46/3.83/3.66/4.20.
    assert post > pre + 2.25, numbers
