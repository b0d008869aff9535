"""Agents on a GPU (issue 14): an update on CUDA equals the CPU's from the same seed to float
tolerance, sampling stays on the CPU (bit-identical episodes from identical weights), and a
checkpoint written on CUDA resumes on the CPU. Skipped without CUDA; run where a GPU is:
`pytest tests/agents/test_cuda.py`."""

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from tiny_runs import tiny

from metarl.agents.registry import REGISTRY

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def build(name: str, device: str, env: str = "navigation2d"):
    entry = REGISTRY[name]
    names = {f.name for f in dataclasses.fields(entry.config_class)}
    values = {**tiny(name), "device": device, "num_gradient_steps": 5, "batch_size": 16}
    config = {k: v for k, v in values.items() if k in names}
    return entry.agent_class(env, entry.config_class(**{**config, **entry.overrides}))


def weights(agent) -> dict[str, torch.Tensor]:
    modules = {k: m for k, m in vars(agent).items() if isinstance(m, torch.nn.Module)}
    modules["policy"] = agent.policy
    return {
        f"{k}.{n}": p.detach().cpu() for k, m in modules.items() for n, p in m.named_parameters()
    }


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("maml-trpo", "navigation2d"),
        ("maml-trpo", "halfcheetah-vel"),
        ("meta-sgd", "navigation2d"),
        ("promp", "navigation2d"),
        ("rl2-trpo", "bandit"),
        ("rl2-ppo", "bandit"),
        ("pearl", "navigation2d"),
        ("pearl", "halfcheetah-vel"),
        ("trpo", "navigation2d"),
        ("ppo", "navigation2d"),
    ],
)
def test_one_iteration_on_cuda_equals_the_cpu_one(name, env):
    rows, after = [], []
    for device in ("cpu", "cuda"):
        agent = build(name, device, env)
        try:
            rows.append(agent.train_step())
            after.append(weights(agent))
            if device == "cuda":
                assert all(p.is_cuda for p in agent.policy.parameters())
        finally:
            agent.close()
    cpu, cuda = rows
    # The first collection ran the same weights on the CPU: the same episodes, bit for bit.
    for key in ("pre_return", "return", "trial_return", "prior_return", "env_steps"):
        if key in cpu:
            assert cpu[key] == cuda[key], key
    for key in cpu:
        torch.testing.assert_close(
            torch.tensor(cuda[key], dtype=torch.float64),
            torch.tensor(cpu[key], dtype=torch.float64),
            rtol=1e-3,
            atol=1e-4,
            equal_nan=True,
            msg=key,
        )
    for key, value in after[0].items():
        torch.testing.assert_close(after[1][key], value, **TOLERANCE, msg=key)


def test_a_cuda_checkpoint_resumes_on_the_cpu(tmp_path):
    from metarl.training.checkpoint import load_checkpoint, save_checkpoint

    agent = build("pearl", "cuda")
    try:
        agent.train_step()
        save_checkpoint(tmp_path / "c.pt", {"agent": agent.state_dict()})
        expected = weights(agent)
    finally:
        agent.close()
    resumed = build("pearl", "cpu")
    try:
        resumed.load_state_dict(load_checkpoint(tmp_path / "c.pt")["agent"])
        for key, value in weights(resumed).items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
        resumed.train_step()  # the buffers and optimizers came over too
    finally:
        resumed.close()
