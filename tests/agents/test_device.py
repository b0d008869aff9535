"""The `device` config key of every agent (issue 14): `auto` / `cpu` / `cuda[:N]`, a CUDA
device that is absent as a one-line error, sampling on the CPU whatever the device, and the
phases an iteration reports to the trainer's nested bar (which change no value). The CUDA
runs themselves are tests/agents/test_cuda.py (skipped without a GPU)."""

import dataclasses
import io
import sys

import pytest
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "training"))
from tiny_runs import tiny

from metarl.agents.registry import REGISTRY
from metarl.backend.device import resolve_device
from metarl.cli import main
from metarl.sampling.sampler import VectorSampler
from metarl.training.phase_bar import PhaseBar

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
LEARNERS = [name for name in REGISTRY]


class Recorder:
    """A `Progress` that keeps what it was told: [(phase, total, steps advanced)]."""

    def __init__(self) -> None:
        self.phases: list[list] = []

    def phase(self, name: str, total: int) -> None:
        self.phases.append([name, total, 0])

    def advance(self, steps: int = 1) -> None:
        self.phases[-1][2] += steps


def build(name: str, env: str = "navigation2d", **values):
    entry = REGISTRY[name]
    names = {f.name for f in dataclasses.fields(entry.config_class)}
    config = {k: v for k, v in {**tiny(name), **values}.items() if k in names}
    return entry.agent_class(env, entry.config_class(**{**config, **entry.overrides}))


@no_cuda
def test_auto_is_the_cpu_without_a_gpu_and_cuda_is_a_one_line_error():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ValueError, match=r"torch finds no CUDA device.*device=cpu"):
            resolve_device(name)


@pytest.mark.parametrize("value", ["gpu", "mps", 3, None, "cuda:x"])
def test_a_device_that_is_not_one_is_named_in_the_error(value):
    with pytest.raises(ValueError, match="config key 'device' must be 'auto', 'cpu', 'cuda'"):
        resolve_device(value)


@no_cuda
@pytest.mark.parametrize("agent", ["maml-trpo", "pearl", "rl2-trpo", "ppo"])
def test_train_with_device_cuda_without_a_gpu_is_one_line_exit_2(agent, capsys, tmp_path):
    env = "bandit" if agent.startswith("rl2") else "navigation2d"
    args = ["train", agent, "--env", env, "--set", "device=cuda", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("metarl: error: config key 'device' is 'cuda'") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


@pytest.mark.parametrize("name", LEARNERS)
def test_every_agent_takes_device_cpu_and_keeps_its_networks_there(name):
    agent = build(name, device="cpu")
    try:
        modules = [m for m in vars(agent).values() if isinstance(m, torch.nn.Module)]
        modules += [agent.policy]
        for module in modules:
            assert all(p.device.type == "cpu" for p in module.parameters())
    finally:
        agent.close()


def test_a_cpu_policy_goes_to_the_sampler_as_itself_without_a_copy():
    with VectorSampler("navigation2d", 2, horizon=3, num_workers=0) as sampler:
        agent = build("maml-trpo")
        try:
            policy = agent.policy
            params = [{k: v.clone() for k, v in policy.named_parameters()}]
            host, host_params = sampler._host_copies.of(policy, params)
            assert host is policy and host_params is params
        finally:
            agent.close()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pearl", ["gradient steps"]),
        ("maml-trpo", ["sampling", "conjugate gradient", "line search"]),
        ("promp", ["sampling", "outer steps"]),
        ("rl2-trpo", ["conjugate gradient", "line search"]),
        ("trpo", ["conjugate gradient", "line search"]),
    ],
)
def test_an_iteration_reports_its_phases_and_their_steps(name, expected):
    env = "bandit" if name.startswith("rl2") else "navigation2d"
    agent = build(name, env, num_gradient_steps=7)
    try:
        agent.progress = recorder = Recorder()
        agent.train_step()
    finally:
        agent.close()
    assert [phase for phase, _, _ in recorder.phases] == expected
    for phase, total, done in recorder.phases:
        assert 1 <= done <= total, (phase, total, done)
    if name == "pearl":
        assert recorder.phases[0][1:] == [7, 7]
    if "conjugate gradient" in expected:
        cg = expected.index("conjugate gradient")
        assert recorder.phases[cg][1] == agent.config.cg_iterations + 1


@pytest.mark.parametrize("name", ["pearl", "maml-trpo", "rl2-trpo"])
def test_reporting_progress_changes_no_value(name):
    env = "bandit" if name.startswith("rl2") else "navigation2d"
    rows = []
    for progress in (None, Recorder()):
        agent = build(name, env)
        try:
            if progress is not None:
                agent.progress = progress
            rows.append([agent.train_step() for _ in range(2)])
        finally:
            agent.close()
    assert str(rows[0]) == str(rows[1])  # str: NaN equals NaN


def test_the_phase_bar_draws_the_phase_its_count_and_rate():
    out = io.StringIO()
    bar = PhaseBar(file=out, disable=False)
    bar.phase("gradient steps", 2000)
    bar.advance(5)
    bar.phase("line search", 15)
    bar.advance()
    bar.close()
    text = out.getvalue()
    assert "gradient steps" in text and "/2000" in text
    assert "line search" in text and "/15" in text and "step/s" in text


def test_the_phase_bar_stays_off_a_pipe_by_default():
    out = io.StringIO()  # not a TTY
    bar = PhaseBar(file=out)
    bar.phase("gradient steps", 10)
    bar.advance(10)
    bar.close()
    assert out.getvalue() == ""
