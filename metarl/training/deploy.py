"""A trained agent from Python, without the CLI: `metarl.load(run_dir)` gives a `MetaPolicy`
whose `adapt(env, task, budget)` returns an `AdaptedPolicy` with `act(obs)`
(docs/architecture.md §7).

Each family adapts the way its paper and `metarl evaluate` do, with `budget` in its own unit:
- gradient-step agents (the MAML family, ProMP, Reptile): `budget` inner policy-gradient
  steps, each on `episodes_per_task` fresh episodes of the task; the adapted policy is θ'.
- RL²: `budget` episodes of one trial; the adapted policy carries the GRU's hidden state and
  the previous (action, reward, done) on, so it needs `observe(reward, done)` after each step.
- PEARL: `budget` episodes, the first with z from the prior and each later one from the
  posterior of the episodes before it; the adapted policy acts with z drawn from the posterior
  of all of them.
The adaptation episodes run on the agent's own batched sampler; `act` is one observation at a
time, for deployment and inspection. `AdaptedPolicy.episode(env)` runs one episode the way the
evaluation does (`reset`, then `act`/`observe` until it ends) and returns its return.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from metarl.agents.parts.config import ClosesOnExit
from metarl.agents.registry import adaptation_kind
from metarl.envs import resolve_env_id
from metarl.envs.base import Task
from metarl.policies import Params, call
from metarl.training.checkpoint import restore_agent
from metarl.training.evaluation import final_checkpoint
from metarl.training.run_folder import Run


def load(run_dir: str | Path) -> MetaPolicy:
    """The trained agent of the run folder `run_dir` (its newest checkpoint), ready to adapt;
    a one-line `ValueError` for a folder that is no run or has no checkpoint."""
    return MetaPolicy(Path(run_dir))


class AdaptedPolicy:
    """A policy after adaptation to one task: `act(obs)` one observation at a time.

    `adaptation_env_steps` is the experience the adaptation used. Recurrent policies (RL²)
    also need `observe(reward, done)` after every env step; for the others it does nothing,
    so one loop serves every family.
    """

    def __init__(
        self,
        policy: nn.Module,
        params: Params | None,
        action_space: gym.Space,
        *,
        deterministic: bool,
        adaptation_env_steps: int,
        recurrent: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        """`policy` under `params` (None: its own), acting by its mode or by sampling;
        `recurrent` = (hidden, previous action, previous reward, previous done) to go on
        from, for a recurrent policy."""
        self.policy, self.params, self.action_space = policy, params, action_space
        self.deterministic = deterministic
        self.adaptation_env_steps = adaptation_env_steps
        self._state = recurrent
        self._last_action: Tensor | None = None
        self._generator = torch.Generator().manual_seed(seed)
        self._device = next(iter(policy.parameters())).device

    @property
    def recurrent(self) -> bool:
        """Whether the policy carries a hidden state (and needs `observe`)."""
        return self._state is not None

    def act(self, obs: Any) -> np.ndarray | int:
        """The action for one observation (a flat array of the env's observation shape): the
        distribution's mode with `deterministic`, else a sample; Box actions clipped to the
        action space as the sampler clips them."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self._device)[None]
        with torch.no_grad():
            if self._state is None:
                dist_params = call(self.policy, self.params, x)
            else:
                hidden, action, reward, done = self._state
                dist_params, hidden = call(
                    self.policy, self.params, x, action, reward, done, hidden
                )
                self._state = (hidden, action, reward, done)
            dist = self.policy.action_dist
            if self.deterministic:
                action = dist.mode(dist_params)
            else:
                action = dist.sample(dist_params, self._generator)
        self._last_action = action
        if isinstance(self.action_space, gym.spaces.Discrete):
            return int(action[0].item())
        out = action[0].cpu().numpy().astype(self.action_space.dtype)
        return np.clip(out, self.action_space.low, self.action_space.high)

    def observe(self, reward: float, done: bool) -> None:
        """Feed the outcome of the last `act` back (RL²'s previous reward and done; `done` ends
        the episode, the hidden state carries on as within a trial). No-op for the others."""
        if self._state is None:
            return
        if self._last_action is None:
            raise ValueError("observe() comes after act(): there is no action to pair it with")
        hidden, _, _, _ = self._state
        action = self._last_action.to(self._state[1].dtype)
        reward_t = torch.tensor([float(reward)], device=self._device)
        done_t = torch.tensor([float(done)], device=self._device)
        self._state = (hidden, action, reward_t, done_t)

    def episode(
        self, env: gym.Env, *, seed: int | None = None, each_step: Callable[[], None] | None = None
    ) -> float:
        """Run one episode of `env` (set to the task already) with `act`/`observe`; its
        undiscounted return. `each_step` is called after the reset and after every step (to
        grab a frame, say)."""
        obs, _ = env.reset(seed=seed)
        if each_step is not None:
            each_step()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(self.act(obs))
            done = bool(terminated or truncated)
            self.observe(float(reward), done)
            total += float(reward)
            if each_step is not None:
                each_step()
        return total


class MetaPolicy(ClosesOnExit):
    """A trained run's agent, restored from its newest checkpoint, for `adapt` (see the module
    docstring). Close it (or use it as a context manager) to release its samplers."""

    def __init__(self, run_dir: Path) -> None:
        """Read `run_dir`'s record and checkpoint and build its agent on the run's env."""
        self.run_dir = run_dir
        self.run = Run.load(run_dir)
        self._path, self._payload = final_checkpoint(run_dir, self.run)
        self._agents: dict[tuple[str, str], Any] = {}
        self.agent = self._agent_for(self.run.env, self.run.env_kwargs)

    @property
    def family(self) -> str:
        """'gradient' (the MAML family, ProMP, Reptile, the multitask baseline), 'rl2',
        'pearl', 'oracle' or 'single-task'."""
        kind = adaptation_kind(self.run.agent)
        if kind == "trial":
            return "pearl" if hasattr(self.agent, "posterior_after") else "rl2"
        return {"none": "single-task"}.get(kind, kind)

    @property
    def budget_unit(self) -> str:
        """What `adapt`'s budget counts for this agent: 'inner steps', 'episodes', or nothing
        for the oracle and single-task agents, whose budget is 0."""
        family = self.family
        if family == "gradient":
            return "inner steps"
        return "episodes" if family in ("rl2", "pearl") else "steps (it does not adapt)"

    def adapt(
        self,
        env: str | gym.Env | None,
        task: Task,
        budget: int,
        *,
        deterministic: bool | None = None,
    ) -> AdaptedPolicy:
        """Adapt to `task` of `env` (an env id or name, a Gymnasium env made from one, or None
        for the run's env) with `budget` inner steps or episodes (`budget_unit`); budget 0 is
        the unadapted meta-policy. `deterministic` chooses how the adapted policy acts (None:
        as `metarl evaluate` does: sampling, or PEARL's `eval_deterministic`)."""
        if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 0:
            raise ValueError(f"budget must be an integer >= 0 ({self.budget_unit}), got {budget!r}")
        agent = self._agent_for(*self._env_of(env))
        family = self.family
        if family == "gradient":
            return self._adapt_gradient(agent, task, int(budget), deterministic)
        if family == "rl2":
            return self._adapt_rl2(agent, task, int(budget), deterministic)
        if family == "pearl":
            return self._adapt_pearl(agent, task, int(budget), deterministic)
        if budget:
            kind = "observes the task" if family == "oracle" else "is a single-task agent"
            raise ValueError(f"{self.run.agent} {kind}: it does not adapt (budget must be 0)")
        params = agent.task_parameters([task])[0] if family == "oracle" else None
        return AdaptedPolicy(
            agent.policy,
            params,
            agent.sampler.action_space,
            deterministic=bool(deterministic),
            adaptation_env_steps=0,
        )

    # ----- the families -----------------------------------------------------------------------

    @staticmethod
    def _adapt_gradient(
        agent: Any, task: Task, budget: int, deterministic: bool | None
    ) -> AdaptedPolicy:
        loop = agent.inner_loop
        params = None
        steps = 0
        if budget:
            _, stages, adapted = loop.sample_adaptation([task], budget, sample_final=False)
            params = {name: p[0].detach() for name, p in adapted.items()}
            steps = sum(e.num_env_steps for e in stages)
        return AdaptedPolicy(
            loop.policy,
            params,
            loop.sampler.action_space,
            deterministic=bool(deterministic),
            adaptation_env_steps=steps,
        )

    @staticmethod
    def _adapt_rl2(
        agent: Any, task: Task, budget: int, deterministic: bool | None
    ) -> AdaptedPolicy:
        policy = agent.policy
        hidden = policy.initial_hidden(1)
        space = agent.sampler.action_space
        shape = () if isinstance(space, gym.spaces.Discrete) else space.shape
        dtype = torch.int64 if isinstance(space, gym.spaces.Discrete) else torch.float32
        device = agent.device
        action = torch.zeros(1, *shape, dtype=dtype, device=device)
        reward = torch.zeros(1, device=device)
        done = torch.zeros(1, device=device)
        steps = 0
        if budget:
            episodes = agent.sample_trials([task], budget).to(agent.device)
            steps = int(episodes.num_env_steps)
            valid = int(episodes.mask[:, 0].sum().item())  # the trial's steps, padding after
            previous = [x[:valid] for x in episodes.previous_step_inputs()]
            with torch.no_grad():
                _, hidden = policy(episodes.observations[:valid], *previous, hidden)
            action = episodes.actions[valid - 1].to(dtype)
            reward = episodes.rewards[valid - 1].float()
            done = torch.ones(1, device=device)  # the last episode ended
        return AdaptedPolicy(
            policy,
            None,
            space,
            deterministic=bool(deterministic),
            adaptation_env_steps=steps,
            recurrent=(hidden, action, reward, done),
        )

    @staticmethod
    def _adapt_pearl(
        agent: Any, task: Task, budget: int, deterministic: bool | None
    ) -> AdaptedPolicy:
        mean, variance, steps = agent.posterior_after([task], budget)
        z = agent.sample_z(mean, variance, agent.eval_generator)[0]
        if deterministic is None:
            deterministic = agent.config.eval_deterministic
        return AdaptedPolicy(
            agent.policy,
            {"z": z},
            agent.sampler.action_space,
            deterministic=deterministic,
            adaptation_env_steps=steps,
        )

    # ----- agents per env ---------------------------------------------------------------------

    def _env_of(self, env: str | gym.Env | None) -> tuple[str, dict[str, Any]]:
        """(env id, env kwargs) that `env` names: the run's own for None or the same id."""
        if env is None:
            return self.run.env, self.run.env_kwargs
        if isinstance(env, gym.Env):
            if env.spec is None:
                raise ValueError("adapt's env must come from gymnasium.make (it has no spec)")
            return env.spec.id, dict(env.spec.kwargs)
        if isinstance(env, str):
            env_id = resolve_env_id(env)
            kwargs = self.run.env_kwargs if env_id == self.run.env else {}
            return env_id, kwargs
        raise ValueError(f"adapt's env must be an env id, a Gymnasium env or None, got {env!r}")

    def _agent_for(self, env: str, env_kwargs: dict[str, Any]) -> Any:
        """The run's agent on `env` with its checkpoint loaded (built once per env)."""
        key = (env, repr(sorted(env_kwargs.items())))
        if key not in self._agents:
            run = Run(self.run.agent, env, env_kwargs, self.run.config)
            agent = run.build()
            try:
                restore_agent(agent, self._payload, self._path, f"{run.agent} on {self.run.env}")
            except ValueError:
                agent.close()
                raise
            self._agents[key] = agent
        return self._agents[key]

    def close(self) -> None:
        """Release every agent's sampler."""
        for agent in self._agents.values():
            agent.close()
        self._agents.clear()
