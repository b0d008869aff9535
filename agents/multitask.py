"""The "pretrained" baseline (Finn et al. 2017, §5.3): one policy trained by TRPO on the whole
task distribution without meta-learning, then fine-tuned on a new task with the same inner-loop
steps the MAML family takes.

Training: each iteration draws `meta_batch_size` tasks, samples `episodes_per_task` episodes of
each with the one policy (which never sees the task) and takes one TRPO step on all of them
pooled, the advantages on one baseline for the whole batch. Evaluation (`metarl evaluate`,
`metarl compare`, `metarl.load`) fine-tunes it exactly as the MAML family adapts: `inner_lr`
VPG steps on fresh episodes of the task, through the same inner-loop component, so the
comparison differs only in how θ was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metarl.agents.maml import vpg_inner_loss
from metarl.agents.parts.checks import config_error
from metarl.agents.parts.inner_loop import GradientInnerLoop, InnerLoopAgent, InnerLoopConfig
from metarl.agents.parts.task_batch import pooled_trpo_step
from metarl.agents.parts.trust_region import TrustRegionConfig
from metarl.policies import call


@dataclass
class MultiTaskConfig(InnerLoopConfig, TrustRegionConfig):
    """Multi-task TRPO settings: MAML-TRPO's batch and trust region (docs/architecture.md §5).
    `inner_lr` and `num_inner_steps` are the fine-tuning's at evaluation, not used in
    training."""

    def __post_init__(self) -> None:
        """Check the inner loop's and the trust region's fields; learned step sizes (Meta-SGD)
        have nothing to learn them here and are an error."""
        InnerLoopConfig.__post_init__(self)
        TrustRegionConfig.__post_init__(self)
        if self.learn_inner_lr:
            raise config_error(
                "learn_inner_lr", "be false for multitask (no meta-gradient learns α)", True
            )


class MultiTask(InnerLoopAgent):
    """Multi-task TRPO on a metarl task env (see the module docstring)."""

    def __init__(
        self, env: str, config: MultiTaskConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """The inner-loop component (sampler, tasks, policy) that evaluation fine-tunes with."""
        self.config = cfg = config or MultiTaskConfig()
        self.inner_loop = GradientInnerLoop(env, cfg, vpg_inner_loss, env_kwargs=env_kwargs)

    def train_step(self) -> dict[str, float]:
        """One iteration: a batch of fresh tasks, one pooled TRPO step. Metrics: mean episode
        `return` (and `success`), env steps, the TRPO step's."""
        cfg, loop = self.config, self.inner_loop
        tasks = loop.task_env.sample_tasks(cfg.meta_batch_size)
        self.progress.phase("sampling", 1)
        episodes = loop.sampler.sample(loop.policy, tasks, cfg.episodes_per_task)
        self.progress.advance()
        episodes = episodes.to(loop.device)
        observations = episodes.observations
        return pooled_trpo_step(
            loop.policy,
            episodes,
            lambda params: call(loop.policy, params, observations),
            cfg,
            per_task_baselines=False,
            progress=self.progress,
        )

    def state_dict(self) -> dict[str, Any]:
        """The inner loop's state: policy, task and sampler RNGs."""
        return self.inner_loop.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.inner_loop.load_state_dict(state)
