"""Learning test (`learning`, part of the default run, so CI runs them): Reptile meta-learns on
the small Navigation2D problem of the MAML-family test (`test_learning.py`), and three inner
steps after training beat what no non-learner reaches.

The problem (seed 0): 20 tasks × 10 episodes of 20 steps per iteration, the defaults otherwise
(k = 3 inner steps of α = 0.1, ε annealed from 1 to 0 over the 60 iterations). The trained
agent then adapts with three inner steps on 40 held-out tasks; its return must beat, each by a
margin:
  (a) the same agent before training, after the same three steps;
  (b) the zero-action policy (return −horizon·‖g‖₂ exactly; the best fixed point for the
      held-out goals, chosen in hindsight, gains at most 0.24 over it on seeds 0–3).
Each margin lies above every non-learner's value and below every trained agent's, measured for
the test seed and seeds 1–3 (non-learners for seeds 0–19). What adapting gains (post − pre),
the MAML test's third margin, does not separate Reptile from a non-learner here: the untrained
agent gains 1.46–3.31 from three steps (seeds 0–19), the trained one 2.85–3.66 (seeds 0–3).
For scale (seed 0): untrained −10.21 before and −8.42 after three steps, zero-action −6.95,
trained −7.93 before and −5.08 after.
"""

import pytest
from adaptation import zero_action_return

from metarl.agents.reptile import Reptile, ReptileConfig
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks

SEED = 0
HORIZON = 20
ITERATIONS = 60
STEPS = 3
HELD_OUT = held_out_tasks("navigation2d", {}, SEED + HELD_OUT_SEED_OFFSET, 40)


@pytest.mark.learning
def test_reptile_makes_three_inner_steps_beat_every_non_learner():
    config = ReptileConfig(
        meta_batch_size=20,
        episodes_per_task=10,
        horizon=HORIZON,
        num_workers=0,
        seed=SEED,
        iterations=ITERATIONS,
    )
    agent = Reptile("navigation2d", config)
    try:
        untrained = agent.adaptation_returns(HELD_OUT, STEPS).mean(1)[STEPS].item()
        for _ in range(ITERATIONS):
            agent.train_step()
        post = agent.adaptation_returns(HELD_OUT, STEPS).mean(1)[STEPS].item()
    finally:
        agent.close()
    zero = zero_action_return(HELD_OUT, HORIZON)
    numbers = {"untrained post": untrained, "zero action": zero, "post": post}

    # (a) post − untrained post. Non-learners: the untrained agent itself 0; the zero-action
    # policy 1.47 (seed 0), 0.05–2.08 (seeds 0–19). Trained, seeds 0/1/2/3: 3.34/3.62/3.04/3.02.
    assert post > untrained + 2.5, numbers
    # (b) post − zero action. Non-learners: the zero-action policy 0; the best fixed point in
    # hindsight at most 0.24 (seeds 0–3); the untrained agent after three steps −1.47 (seed 0),
    # −2.08 to −0.05 (seeds 0–19). Trained, seeds 0/1/2/3: 1.87/2.20/1.73/2.80.
    assert post > zero + 1.25, numbers
