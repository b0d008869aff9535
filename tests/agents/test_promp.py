"""ProMP beside MAML: the same inner loop and initial weights, its own outer loop and
checkpoint state (old checkpoints, which also held MAML's Fisher RNG, still load)."""

import copy

import torch

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.promp import ProMP, ProMPConfig

TINY = dict(meta_batch_size=2, episodes_per_task=2, horizon=8, hidden_sizes=(5,), num_workers=0)


def test_promp_is_a_sibling_of_maml_with_its_own_outer_loop():
    assert not issubclass(ProMP, MAML)
    for trpo_only in ("outer_loss", "outer_kl", "_exploration_loss", "_exploration_credit"):
        assert not hasattr(ProMP, trpo_only)


def test_maml_and_promp_start_from_the_same_weights():
    maml, promp = (
        MAML("navigation2d", MAMLConfig(**TINY)),
        ProMP("navigation2d", ProMPConfig(**TINY)),
    )
    try:
        for (name, a), (_, b) in zip(
            maml.policy.state_dict().items(), promp.policy.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), name
    finally:
        maml.close()
        promp.close()


def test_promp_resumes_from_its_state_and_from_a_checkpoint_with_a_fisher_rng():
    first, second = (
        ProMP("navigation2d", ProMPConfig(**TINY)),
        ProMP("navigation2d", ProMPConfig(**TINY, seed=5)),
    )
    try:
        first.train_step()
        state = copy.deepcopy(first.state_dict())  # as a checkpoint file holds it
        assert set(state) == {"policy", "inner_lrs", "task_rng", "sampler", "optimizer"}
        old_style = {**state, "fisher_rng": torch.Generator().get_state()}
        second.load_state_dict(old_style)
        assert first.train_step() == second.train_step()
    finally:
        first.close()
        second.close()


def test_maml_checkpoints_keep_their_keys():
    agent = MAML("navigation2d", MAMLConfig(**TINY))
    try:
        assert list(agent.state_dict()) == [
            "policy",
            "inner_lrs",
            "task_rng",
            "sampler",
            "fisher_rng",
        ]
    finally:
        agent.close()
