"""CLI agent names → agent class, config class and config defaults (docs/architecture.md §5, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.multitask import MultiTask, MultiTaskConfig
from metarl.agents.oracle import Oracle, OracleConfig
from metarl.agents.parts.inner_loop import InnerLoopAgent
from metarl.agents.pearl import PEARL, PEARLConfig
from metarl.agents.ppo import PPO, PPOConfig
from metarl.agents.promp import ProMP, ProMPConfig
from metarl.agents.reptile import Reptile, ReptileConfig
from metarl.agents.rl2 import RL2PPO, RL2TRPO, RL2PPOConfig, RL2TRPOConfig
from metarl.agents.trpo import TRPO, TRPOConfig
from metarl.agents.varibad import VariBAD, VariBADConfig


@dataclass(frozen=True)
class AgentSpec:
    """How `metarl train NAME` builds an agent: `agent_class(env, config_class(**overrides))`."""

    agent_class: type
    config_class: type
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, AgentSpec] = {
    "maml-trpo": AgentSpec(MAML, MAMLConfig, "MAML with a TRPO outer loop (Finn et al. 2017)"),
    "fo-maml": AgentSpec(
        MAML,
        MAMLConfig,
        "first-order MAML: the inner gradient held constant",
        {"first_order": True},
    ),
    "meta-sgd": AgentSpec(
        MAML,
        MAMLConfig,
        "Meta-SGD: learned per-parameter inner step sizes (Li et al. 2017)",
        {"learn_inner_lr": True},
    ),
    "e-maml": AgentSpec(
        MAML,
        MAMLConfig,
        "E-MAML: credit for exploration in the pre-update episodes (Stadie et al. 2018)",
        # The credit is standardized across tasks, as are the surrogate's advantages, so both
        # terms are of unit scale: 0.1 adds exploration without outweighing the meta-objective.
        {"exploration_weight": 0.1},
    ),
    "promp": AgentSpec(
        ProMP, ProMPConfig, "ProMP: LVC inner step, clipped outer objective (Rothfuss et al. 2019)"
    ),
    "reptile": AgentSpec(
        Reptile,
        ReptileConfig,
        "Reptile: k policy-gradient steps per task, θ moves toward the adapted θ_i (Nichol 2018)",
    ),
    "rl2-trpo": AgentSpec(
        RL2TRPO, RL2TRPOConfig, "RL²: a GRU learns to adapt within trials (Duan et al. 2016)"
    ),
    "rl2-ppo": AgentSpec(RL2PPO, RL2PPOConfig, "RL² with PPO as the outer loop"),
    "pearl": AgentSpec(
        PEARL,
        PEARLConfig,
        "PEARL: a posterior over a task latent z, off-policy SAC (Rakelly et al. 2019)",
    ),
    "varibad": AgentSpec(
        VariBAD,
        VariBADConfig,
        "VariBAD: a belief over a task latent from the trial so far, PPO (Zintgraf et al. 2020)",
    ),
    "multitask": AgentSpec(
        MultiTask,
        MultiTaskConfig,
        "the 'pretrained' baseline: TRPO on all tasks pooled, fine-tuned by the inner loop",
    ),
    "oracle": AgentSpec(
        Oracle, OracleConfig, "the 'oracle' baseline: TRPO on all tasks, the policy sees the task"
    ),
    "trpo": AgentSpec(TRPO, TRPOConfig, "single-task TRPO, the non-meta baseline"),
    "ppo": AgentSpec(PPO, PPOConfig, "single-task PPO, the non-meta baseline"),
}


def agent_spec(name: str) -> AgentSpec:
    """The spec of a CLI agent name, or a `ValueError` listing the valid names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown agent {name!r}; the agents are: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def adaptation_kind(name: str) -> str:
    """How the agent `name` adapts to a task, by what its class offers: 'gradient' (inner
    steps: the MAML family, ProMP, Reptile, the multitask baseline), 'trial' (episodes of a
    trial: RL², PEARL), 'oracle' (it observes the task) or 'none' (single-task agents)."""
    agent_class = agent_spec(name).agent_class
    if issubclass(agent_class, InnerLoopAgent):
        return "gradient"
    if hasattr(agent_class, "trial_outcomes"):
        return "trial"
    if hasattr(agent_class, "task_outcomes"):
        return "oracle"
    return "none"
