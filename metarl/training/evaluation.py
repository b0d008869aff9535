"""Adaptation on held-out tasks (docs/architecture.md §7), for every kind of agent.

Gradient-step agents (the MAML family) report the return after 0, 1, …, K inner steps; trial
agents (RL², PEARL, the reference bandit/MDP agents) the return of each episode of a trial, and
the total reward per trial. Both also give each point's env steps of adaptation experience, the
x-axis all agents share (`metarl plot --adaptation`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
from torch import Tensor

from metarl.agents.parts.config import check_execution
from metarl.envs import resolve_env_id
from metarl.envs.base import Task
from metarl.fewshot.data import is_fewshot_task
from metarl.sampling.episodes import EpisodeOutcomes
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks
from metarl.training.checkpoint import load_checkpoint, restore_agent
from metarl.training.config import build_config
from metarl.training.run_folder import Run


def evaluate(
    run_dir: Path,
    num_tasks: int = 40,
    adapt_steps: int = 3,
    seed: int | None = None,
    episodes: int | None = None,
    tasks: list[Task] | None = None,
    execution: dict[str, Any] | None = None,
    shots: int | None = None,
    scratch_from: Path | None = None,
) -> dict[str, Any]:
    """Adaptation of a trained run on `num_tasks` held-out tasks, with 95% confidence intervals
    (`metarl.cli.report.write_result` writes it out as `metarl evaluate` does).

    Gradient-step agents adapt for `adapt_steps` steps on `episodes` episodes per task; trial
    agents run trials of `episodes` episodes. `episodes` defaults to the run's training value.
    `tasks` gives the task list itself (`metarl compare`'s, shared by every run); then
    `num_tasks` and `seed` are not used. `execution` replaces the run's values of
    `EXECUTION_KEYS` (e.g. `{"sampler": "ray"}` fans the held-out tasks out over Ray actors).
    A few-shot run (`metarl.fewshot`) reports its query loss and accuracy instead of returns
    (`fewshot_summary`), on tasks of `shots` shots (default: its training value), and takes
    its scratch baseline from the evaluation of the run folder `scratch_from` where that one
    was measured on the very same tasks and network (else a one-line `ValueError`).
    """
    if tasks is not None:
        num_tasks = len(tasks)
    _check_counts(num_tasks, adapt_steps)
    run_dir = Path(run_dir)
    run = Run.load(run_dir)
    if is_fewshot_task(run.env):
        if episodes is not None or execution:
            raise ValueError(
                "a few-shot run adapts on --shots, with no episodes or sampler to choose"
            )
        reuse = None if scratch_from is None else _scratch_of(Path(scratch_from))
        return _evaluate_fewshot(run_dir, run, num_tasks, adapt_steps, seed, shots, reuse)
    if shots is not None:
        raise ValueError("--shots is for few-shot runs; RL runs adapt on --episodes")
    if scratch_from is not None:
        raise ValueError("--scratch-from is for few-shot runs (their scratch baseline)")
    trial = "episodes_per_trial" in run.config
    overrides = {} if episodes is None or trial else {"episodes_per_task": episodes}
    path, payload = final_checkpoint(run_dir, run)  # read before the agent is built: fail fast
    agent = run.build(**overrides, **check_execution(execution or {}))
    try:
        restore_agent(agent, payload, path, f"{run.agent} on {run.env}")
        if tasks is None:
            seed = run.config["seed"] + HELD_OUT_SEED_OFFSET if seed is None else seed
            tasks = held_out_tasks(run.env, run.env_kwargs, seed, num_tasks)
        horizon = run.config.get("horizon") or _registered_horizon(run.env)
        if hasattr(agent, "trial_returns"):
            episodes = episodes or run.config["episodes_per_trial"]
            summary = trial_summary(agent.trial_outcomes(tasks, episodes), horizon)
        elif hasattr(agent, "adaptation_returns"):
            summary = _steps_summary(agent, tasks, adapt_steps, horizon)
        elif hasattr(agent, "task_outcomes"):  # the oracle: it knows the task, nothing to adapt
            summary = _steps_summary(agent, tasks, 0, horizon)
        else:
            raise ValueError(f"{run.agent} does not adapt to tasks: there is nothing to evaluate")
    finally:
        agent.close()
    return _result(run, payload, num_tasks, seed, summary)


def _scratch_of(run_dir: Path) -> dict[str, Any]:
    """The scratch curve, with its key, of the few-shot run folder `run_dir`'s evaluation."""
    path = run_dir / "eval" / "adaptation.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} has no evaluation to take a scratch baseline from ({path})")
    scratch = json.loads(path.read_text()).get("scratch")
    if not isinstance(scratch, dict) or "key" not in scratch:
        raise ValueError(
            f"{path} has no keyed scratch baseline (a run evaluated before metarl kept the "
            "key, or not a few-shot run): evaluate that run again first"
        )
    return scratch


def _evaluate_fewshot(
    run_dir: Path,
    run: Run,
    num_tasks: int,
    adapt_steps: int,
    seed: int | None,
    shots: int | None,
    reuse: dict[str, Any] | None,
) -> dict[str, Any]:
    """`evaluate` for a few-shot run, its scratch baseline `reuse`d where given."""
    from metarl.training.fewshot_evaluation import fewshot_summary  # it uses mean_ci95 below

    if shots is not None and shots < 1:
        raise ValueError(f"evaluate needs shots >= 1, got {shots}")
    path, payload = final_checkpoint(run_dir, run)
    agent = run.build()
    restore_agent(agent, payload, path, f"{run.agent} on {run.env}")
    seed = run.config["seed"] + HELD_OUT_SEED_OFFSET if seed is None else seed
    summary = fewshot_summary(agent, num_tasks, adapt_steps, seed, shots, reuse=reuse)
    return _result(run, payload, num_tasks, seed, summary)


def _result(
    run: Run, payload: dict[str, Any], num_tasks: int, seed: int, summary: dict[str, Any]
) -> dict[str, Any]:
    """An evaluation result: which run, iteration and tasks, then the `summary`."""
    return {
        "agent": run.agent,
        "env": run.env,
        "env_kwargs": run.env_kwargs,
        "iteration": payload["iteration"],
        "tasks": num_tasks,
        "task_seed": seed,
        **summary,
    }


def evaluate_reference(
    name: str,
    env: str,
    env_kwargs: dict[str, Any] | None = None,
    num_tasks: int = 40,
    episodes: int = 10,
    seed: int = HELD_OUT_SEED_OFFSET,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A reference agent (no training: UCB1, Thompson sampling, PSRL, …) evaluated exactly as a
    trained trial agent is: trials of `episodes` episodes on `num_tasks` tasks drawn with `seed`.
    `config` sets the agent's config keys."""
    from metarl.agents.reference import REFERENCE_AGENTS

    _check_counts(num_tasks, 0)
    if name not in REFERENCE_AGENTS:
        raise ValueError(
            f"unknown reference agent {name!r}; they are: {', '.join(REFERENCE_AGENTS)} "
            "(a trained agent is evaluated from its run folder: metarl evaluate DIR)"
        )
    spec = REFERENCE_AGENTS[name]
    env_kwargs = dict(env_kwargs or {})
    agent = spec.agent_class(
        env, build_config(spec.config_class, config or {}), env_kwargs=env_kwargs
    )
    try:
        tasks = held_out_tasks(env, env_kwargs, seed, num_tasks)
        outcomes = EpisodeOutcomes(agent.trial_returns(tasks, episodes), None)  # no success
    finally:
        agent.close()
    horizon = _registered_horizon(env)
    result = {
        "agent": name,
        "env": resolve_env_id(env),
        "env_kwargs": env_kwargs,
        "config": config or {},
        "tasks": num_tasks,
        "task_seed": seed,
        **trial_summary(outcomes, horizon),
    }
    return result


def trial_summary(outcomes: EpisodeOutcomes, horizon: int) -> dict[str, Any]:
    """Mean return of each episode index of the trials (`outcomes` `[episodes, tasks]`), and
    the mean total reward per trial (the RL² tables' measure), each with its 95% CI; and the
    success rate of each episode index where the env reports success."""
    returns = outcomes.returns
    mean, ci = mean_ci95(returns)
    total, total_ci = mean_ci95(returns.sum(0))
    episodes = returns.shape[0]
    return {
        "axis": "episode",
        "episode": list(range(episodes)),
        "adaptation_env_steps": [i * horizon for i in range(episodes)],
        "mean_return": mean.tolist(),
        "ci95": ci.tolist(),
        "mean_total_reward": total.item(),
        "total_reward_ci95": total_ci.item(),
        **success_summary(outcomes.successes),
    }


def success_summary(successes: Tensor | None) -> dict[str, Any]:
    """`success_rate` of each point over the tasks `[points, tasks]` with its 95% CI
    (`success_ci95`), or nothing where the env reports no success."""
    if successes is None:
        return {}
    rate, ci = mean_ci95(successes)
    return {"success_rate": rate.tolist(), "success_ci95": ci.tolist()}


def mean_ci95(values: Tensor) -> tuple[Tensor, Tensor]:
    """Mean over the last axis and the half-width of its normal 95% confidence interval."""
    values = values.double()
    count = values.shape[-1]
    half_width = 1.96 * values.std(-1) / math.sqrt(count) if count > 1 else 0 * values.mean(-1)
    return values.mean(-1), half_width


def _steps_summary(agent: Any, tasks: list[Task], adapt_steps: int, horizon: int) -> dict:
    """Return after each number of inner steps; each step adapts on `episodes_per_task`
    episodes of `horizon` steps (nominal: an Ant episode may end early). The oracle, which
    observes the task, has the one point of 0 steps."""
    if hasattr(agent, "task_outcomes"):
        outcomes = agent.task_outcomes(tasks)
    else:
        outcomes = agent.adaptation_outcomes(tasks, adapt_steps)
    mean, ci = mean_ci95(outcomes.returns)
    per_step = agent.config.episodes_per_task * horizon
    return {
        "axis": "adapt_steps",
        "adapt_steps": list(range(adapt_steps + 1)),
        "episodes_per_task": agent.config.episodes_per_task,
        "adaptation_env_steps": [k * per_step for k in range(adapt_steps + 1)],
        "mean_return": mean.tolist(),
        "ci95": ci.tolist(),
        **success_summary(outcomes.successes),
    }


def final_checkpoint(run_dir: Path, run: Run) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run: `latest.pt`, or the policy-only `policy.pt` that a
    committed benchmark folder keeps instead; a one-line `ValueError` if there is neither."""
    folder = run_dir / "checkpoints"
    for name in ("latest.pt", "policy.pt"):
        if (folder / name).is_file():
            return folder / name, load_checkpoint(folder / name)
    if run.format == 1:
        raise ValueError(
            f"{run_dir} was written by metarl {run.version} (run-folder format 1) and kept its "
            "progress and evaluation but no checkpoint: re-run it with the command beside its "
            "numbers in benchmarks/README.md to evaluate it"
        )
    raise ValueError(
        f"{run_dir} has no checkpoint to evaluate (checkpoints/latest.pt or policy.pt): train it "
        f"first, or continue it with `metarl train --resume {run_dir}`"
    )


def _registered_horizon(env: str) -> int:
    """The env's registered `max_episode_steps`."""
    return gym.spec(resolve_env_id(env)).max_episode_steps


def _check_counts(num_tasks: int, adapt_steps: int) -> None:
    if num_tasks < 1 or adapt_steps < 0:
        raise ValueError(
            f"evaluate needs tasks >= 1 and adapt_steps >= 0, got {num_tasks}, {adapt_steps}"
        )
