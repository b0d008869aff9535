"""CLI names of the few-shot learners → learner class, config class and config defaults, as
`metarl.agents.registry` maps the RL agents' (issue 19). The task distribution decides which
registry a name is looked up in: `metarl train fo-maml --env sinusoid` is this FO-MAML,
`--env halfcheetah-vel` the RL one."""

from __future__ import annotations

from metarl.agents.registry import AgentSpec
from metarl.fewshot.maml import MAML, MAMLConfig
from metarl.fewshot.matching_net import MatchingNet, MatchingNetConfig
from metarl.fewshot.meta_lstm import MetaLSTM, MetaLSTMConfig
from metarl.fewshot.pretrained import Pretrained, PretrainedConfig
from metarl.fewshot.protonet import ProtoNet, ProtoNetConfig
from metarl.fewshot.reptile import Reptile, ReptileConfig

FEWSHOT_REGISTRY: dict[str, AgentSpec] = {
    "maml": AgentSpec(MAML, MAMLConfig, "MAML, second-order (Finn et al. 2017)"),
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
    "reptile": AgentSpec(
        Reptile, ReptileConfig, "Reptile: θ moves toward the SGD-adapted weights (Nichol 2018)"
    ),
    "protonet": AgentSpec(
        ProtoNet, ProtoNetConfig, "Prototypical Networks: nearest class mean (Snell et al. 2017)"
    ),
    "matching-net": AgentSpec(
        MatchingNet,
        MatchingNetConfig,
        "Matching Networks: attention over the support set (Vinyals et al. 2016)",
    ),
    "meta-lstm": AgentSpec(
        MetaLSTM,
        MetaLSTMConfig,
        "the LSTM meta-learner: a learned optimizer (Ravi & Larochelle 2017)",
    ),
    "pretrained": AgentSpec(
        Pretrained,
        PretrainedConfig,
        "the 'pretrained' baseline: all tasks pooled, fine-tuned at test (MAML's Fig. 2)",
    ),
}


def fewshot_spec(name: str) -> AgentSpec:
    """The spec of a few-shot learner's CLI name, or a `ValueError` listing the valid names."""
    if name not in FEWSHOT_REGISTRY:
        raise ValueError(
            f"unknown few-shot learner {name!r}; the few-shot learners are: "
            f"{', '.join(FEWSHOT_REGISTRY)}"
        )
    return FEWSHOT_REGISTRY[name]
