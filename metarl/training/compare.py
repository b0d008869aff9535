"""Adaptation speed of several trained runs and non-meta baselines on one held-out task list
(docs/architecture.md §7): what `metarl compare` computes.

Every agent adapts to the *same* tasks (a `TaskList`, saved as `tasks.json` so that a later
comparison reuses it) within the same budget of adaptation experience in env steps, the x-axis
all agents share: a gradient-step agent (the MAML family, ProMP, Reptile) gets as many inner
steps as fit (k steps cost k × episodes_per_task × horizon), a trial agent (RL², PEARL) as many
episodes (episode i comes after i × horizon steps of its trial).

Baselines, as the MAML paper defines them (Finn et al. 2017, §5.3), each within the same
budget:
- `scratch` (`--baselines scratch`): a freshly initialized policy trained on each test task
  alone by metarl's TRPO, one update per batch of `episodes_per_task` episodes (the first
  gradient-step run's, else 20) with the runs' policy width; point k is the return of the
  batch sampled after k updates.
- `sb3-ppo`, `sb3-sac`: the same with Stable-Baselines3's PPO (`n_steps` = one batch, so one
  update per batch as TRPO) or SAC at their defaults, the off-the-shelf choice; point k is the
  mean return of `episodes_per_task` fresh episodes of the policy after k batches of training
  (those episodes are measurement, not counted in the budget). SAC takes a gradient step per
  env step: minutes per task on MuJoCo budgets.
- pretrained: a `multitask` run among the run folders (TRPO on all tasks pooled), fine-tuned
  with the inner loop's steps like the MAML family.
- oracle: an `oracle` run among the run folders (its policy observes the task): one return,
  drawn flat across the budget, since it has nothing to adapt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from metarl.agents.registry import adaptation_kind
from metarl.envs import resolve_env_id
from metarl.envs.base import Task
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks
from metarl.training.evaluation import evaluate, final_checkpoint, mean_ci95, success_summary
from metarl.training.run_folder import Run

DEFAULT_STEPS = 3
"""Inner steps (or episodes after the first) a comparison allows when no budget is given: the
MAML paper's test protocol, 0–3 gradient steps."""


@dataclass
class TaskList:
    """The held-out tasks of a comparison, with where they came from (`tasks.json`)."""

    env: str
    """Full Gymnasium id of the env."""
    env_kwargs: dict[str, Any]
    """Arguments of `gymnasium.make` (a paper's velocity range, say)."""
    seed: int | None
    """The seed `held_out_tasks` drew them with (None: given by hand)."""
    tasks: list[Task]
    """The tasks, JSON-able."""

    @classmethod
    def held_out(cls, env: str, env_kwargs: dict[str, Any], num_tasks: int, seed: int) -> TaskList:
        """`num_tasks` tasks of the env's test distribution, drawn with `HELD_OUT_SEED_OFFSET +
        seed` (the stream `metarl evaluate` draws from, never a training task stream)."""
        if num_tasks < 1:
            raise ValueError(f"compare needs --tasks >= 1, got {num_tasks}")
        task_seed = HELD_OUT_SEED_OFFSET + seed
        tasks = held_out_tasks(env, env_kwargs, task_seed, num_tasks)
        return cls(resolve_env_id(env), dict(env_kwargs), task_seed, list(tasks))

    def to_json(self) -> bytes:
        """The list as `tasks.json` holds it."""
        record = {"env": self.env, "env_kwargs": self.env_kwargs, "seed": self.seed}
        return json.dumps({**record, "tasks": self.tasks}, indent=1).encode()

    @classmethod
    def load(cls, path: Path) -> TaskList:
        """A `tasks.json` written by `metarl compare`, or a one-line `ValueError`."""
        path = Path(path)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"--tasks-file {path} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a task list ({error})") from None
        keys = {"env", "env_kwargs", "seed", "tasks"}
        if not isinstance(record, dict) or set(record) != keys:
            raise ValueError(f"{path} is not a task list: it needs the keys {sorted(keys)}")
        if not isinstance(record["tasks"], list) or not record["tasks"]:
            raise ValueError(f"{path}: 'tasks' must be a non-empty list of tasks")
        return cls(record["env"], record["env_kwargs"] or {}, record["seed"], record["tasks"])


def compare(
    run_dirs: Sequence[Path],
    task_list: TaskList | None = None,
    *,
    baselines: Sequence[str] = (),
    num_tasks: int = 40,
    seed: int = 0,
    budget: int | None = None,
    report: Callable[[str], None] = lambda line: None,
    execution: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], TaskList]:
    """The adaptation curves of `run_dirs` and of `baselines` on one task list (`task_list`, or
    `num_tasks` held-out tasks drawn with `seed`) within `budget` env steps of adaptation
    experience per task (default: `DEFAULT_STEPS` steps or episodes of the costliest run).
    `report` hears one line per curve as it starts. All runs must be of one env. Returns the
    result (JSON-able) and the task list used. `execution` replaces the runs' values of
    `EXECUTION_KEYS` (the baselines sample locally: a fresh policy per task each)."""
    if not run_dirs:
        raise ValueError("compare needs at least one run folder")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(
            f"unknown baseline {unknown[0]!r}; the baselines are: {', '.join(BASELINES)}"
        )
    runs = [Run.load(Path(d)) for d in run_dirs]
    first = runs[0]
    for run_dir, run in zip(run_dirs, runs, strict=True):
        if not _adapts(run):
            raise ValueError(
                f"{run_dir} is a {run.agent} run, which does not adapt to tasks (compare takes "
                "meta-RL runs; --baselines adds the non-meta ones)"
            )
        final_checkpoint(Path(run_dir), run)  # a run with nothing to evaluate fails before any work
        if (run.env, run.env_kwargs) != (first.env, first.env_kwargs):
            raise ValueError(
                f"compare needs runs of one env: {run_dirs[0]} is {_env_name(first)}, "
                f"{run_dir} is {_env_name(run)}"
            )
    if task_list is None:
        task_list = TaskList.held_out(first.env, first.env_kwargs, num_tasks, seed)
    elif (task_list.env, task_list.env_kwargs) != (first.env, first.env_kwargs):
        raise ValueError(
            f"the task list is of {task_list.env} {task_list.env_kwargs or ''}, the runs of "
            f"{_env_name(first)}"
        )
    horizons = {_horizon(run) for run in runs}
    if len(horizons) > 1:
        raise ValueError(f"compare needs runs of one horizon, got {sorted(horizons)}")
    horizon = horizons.pop()
    if budget is None:
        budget = max(_step_cost(run, horizon) * DEFAULT_STEPS for run in runs)
    if budget < 0:
        raise ValueError(f"--budget must be >= 0 env steps, got {budget}")

    curves = []
    for run_dir, run in zip(map(Path, run_dirs), runs, strict=True):
        report(f"{run.agent} ({run_dir})")
        curves.append(_run_curve(run_dir, run, task_list.tasks, budget, horizon, execution))
    for name in baselines:
        report(f"baseline {name}")
        curves.append(BASELINES[name](runs, task_list, budget, horizon))
    _unique_labels(curves)
    result = {
        "env": first.env,
        "env_kwargs": first.env_kwargs,
        "tasks": len(task_list.tasks),
        "task_seed": task_list.seed,
        "horizon": horizon,
        "budget": budget,
        "curves": curves,
    }
    return result, task_list


def _run_curve(
    run_dir: Path,
    run: Run,
    tasks: list[Task],
    budget: int,
    horizon: int,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A trained run's adaptation within `budget`: as many inner steps or episodes as fit."""
    kind = adaptation_kind(run.agent)
    cost = _step_cost(run, horizon)
    if kind == "oracle":
        result = evaluate(run_dir, tasks=tasks, adapt_steps=0, execution=execution)
        flat = {k: v * 2 for k, v in result.items() if k in SERIES}  # its one point, twice
        label = "oracle (observes the task)"
        return _curve(label, run.agent, str(run_dir), "observes the task", [0, budget], flat)
    if kind == "trial":
        result = evaluate(run_dir, tasks=tasks, episodes=budget // cost + 1, execution=execution)
    else:
        result = evaluate(run_dir, tasks=tasks, adapt_steps=budget // cost, execution=execution)
    unit = "episodes" if kind == "trial" else "inner steps"
    label = "pretrained (multitask)" if run.agent == "multitask" else run.agent
    unit = "fine-tuning steps" if run.agent == "multitask" else unit
    return _curve(label, run.agent, str(run_dir), unit, result["adaptation_env_steps"], result)


SERIES = ("mean_return", "ci95", "success_rate", "success_ci95")
"""The per-point values of a curve."""

META_UNITS = ("inner steps", "episodes")
"""The units of the meta-learners' curves; the baselines' are the others."""


def _curve(
    label: str, agent: str, source: str, unit: str, env_steps: list[int], summary: dict
) -> dict[str, Any]:
    """One curve of a comparison, from an evaluation summary's returns (and successes)."""
    curve = {
        "label": label,
        "agent": agent,
        "source": source,
        "unit": unit,
        "env_steps": list(env_steps),
        "mean_return": summary["mean_return"],
        "ci95": summary["ci95"],
    }
    for key in SERIES[2:]:
        if key in summary:
            curve[key] = summary[key]
    return curve


def _scratch(runs: list[Run], task_list: TaskList, budget: int, horizon: int) -> dict[str, Any]:
    """The `scratch` baseline (module docstring): TRPO from a fresh policy on each task, task i
    seeded from the task list's seed and i (so a reused `tasks.json` gives the same curve)."""
    from metarl.agents.trpo import TRPO, TRPOConfig

    reference = _scratch_reference(runs)
    episodes = reference.get("episodes_per_task", 20)
    hidden = reference.get("hidden_sizes", (64, 64))
    updates = budget // (episodes * horizon)
    returns, successes = [], []
    for index, task in enumerate(task_list.tasks):
        config = TRPOConfig(
            task=task,
            episodes_per_task=episodes,
            horizon=horizon,
            hidden_sizes=tuple(hidden),
            seed=_task_seed(task_list, index),
            num_workers=reference.get("num_workers", 2),
            device=reference.get("device", "auto"),
        )
        with TRPO(task_list.env, config, env_kwargs=task_list.env_kwargs) as agent:
            task_returns, task_successes = [], []
            for k in range(updates + 1):
                batch = agent.sample()
                task_returns.append(batch.episode_returns().double().mean().item())
                success = batch.episode_successes()
                task_successes.append(None if success is None else success.double().mean().item())
                if k < updates:
                    agent.update(batch.to(agent.device))
        returns.append(task_returns)
        successes.append(task_successes)
    summary = _summary(returns, successes)
    steps = [k * episodes * horizon for k in range(updates + 1)]
    label = "scratch (TRPO)"
    return _curve(label, "trpo", "fresh policy per task", "TRPO updates", steps, summary)


def _sb3(algorithm: str) -> Callable[..., dict[str, Any]]:
    """A `scratch` baseline with Stable-Baselines3's `algorithm` ("PPO" or "SAC") at its
    defaults, the off-the-shelf choice (module docstring)."""

    def baseline(runs: list[Run], task_list: TaskList, budget: int, horizon: int) -> dict[str, Any]:
        import stable_baselines3

        reference = _scratch_reference(runs)
        episodes = reference.get("episodes_per_task", 20)
        chunk = episodes * horizon
        points = budget // chunk
        returns, successes = [], []
        for index, task in enumerate(task_list.tasks):
            seed = _task_seed(task_list, index)
            env = gym.make(task_list.env, max_episode_steps=horizon, **task_list.env_kwargs)
            env.unwrapped.set_task(task)
            # One update per batch, in minibatches of SB3's 64 or the largest divisor below it.
            minibatch = max(d for d in range(1, 65) if chunk % d == 0)
            kwargs = {"n_steps": chunk, "batch_size": minibatch} if algorithm == "PPO" else {}
            model = getattr(stable_baselines3, algorithm)(
                "MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs
            )
            task_returns, task_successes = [], []
            for k in range(points + 1):
                if k:
                    model.learn(chunk, reset_num_timesteps=False)
                mean_return, success = _sb3_episodes(model, env, episodes, seed + k)
                task_returns.append(mean_return)
                task_successes.append(success)
            env.close()
            returns.append(task_returns)
            successes.append(task_successes)
        steps = [k * chunk for k in range(points + 1)]
        label = f"scratch (SB3 {algorithm})"
        summary = _summary(returns, successes)
        return _curve(
            label, algorithm.lower(), "SB3, fresh per task", "SB3 training", steps, summary
        )

    return baseline


def _sb3_episodes(model: Any, env: gym.Env, episodes: int, seed: int) -> tuple[float, float | None]:
    """Mean return (and success rate, where the env reports it) of `episodes` episodes of the
    model's stochastic policy, as the other curves sample theirs."""
    returns, successes = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + i)
        total, done, succeeded = 0.0, False, None
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
            if "success" in info:
                succeeded = bool(succeeded) or bool(info["success"])
        returns.append(total)
        successes.append(succeeded)
    rate = None if any(s is None for s in successes) else sum(successes) / episodes
    return sum(returns) / episodes, rate


BASELINES: dict[str, Callable[..., dict[str, Any]]] = {
    "scratch": _scratch,
    "sb3-ppo": _sb3("PPO"),
    "sb3-sac": _sb3("SAC"),
}
"""`--baselines` names → the function computing the baseline's curve."""


def _scratch_reference(runs: list[Run]) -> dict[str, Any]:
    """The config whose batch and policy width the scratch baselines take: the first gradient
    meta-learner's (else the first run's, with 20 episodes per batch)."""
    gradient = [r for r in runs if adaptation_kind(r.agent) == "gradient"]
    gradient = [r for r in gradient if r.agent != "multitask"] or gradient
    if gradient:
        return gradient[0].config
    return {**runs[0].config, "episodes_per_task": 20}


def _summary(returns: list[list[float]], successes: list[list[float | None]]) -> dict[str, Any]:
    """Mean and 95% CI over tasks of per-task values [tasks][points] (and of the success
    rates, where every one is known)."""
    mean, ci = mean_ci95(torch.tensor(returns, dtype=torch.float64).T)  # [points, tasks]
    summary: dict[str, Any] = {"mean_return": mean.tolist(), "ci95": ci.tolist()}
    if all(s is not None for row in successes for s in row):
        summary |= success_summary(torch.tensor(successes, dtype=torch.float64).T)
    return summary


def _step_cost(run: Run, horizon: int) -> int:
    """Env steps one unit of the run's adaptation takes: an inner step's episodes, or one
    episode of a trial."""
    if adaptation_kind(run.agent) == "trial":
        return horizon
    return run.config.get("episodes_per_task", 1) * horizon


def _task_seed(task_list: TaskList, index: int) -> int:
    """The seed of a scratch baseline's learner on task `index`: one stream per task, from the
    list's seed, so a reused `tasks.json` gives the same curve."""
    return ((task_list.seed or 0) * 100_003 + index) % 2**32


def _adapts(run: Run) -> bool:
    """Whether the run's agent adapts (a trial agent, a gradient-step one, the multitask
    baseline fine-tuned like one) or is the oracle."""
    return adaptation_kind(run.agent) != "none"


def _horizon(run: Run) -> int:
    """The run's episode length: its config's, else the env's registered one."""
    return run.config.get("horizon") or gym.spec(run.env).max_episode_steps


def _env_name(run: Run) -> str:
    return f"{run.env} {run.env_kwargs}" if run.env_kwargs else run.env


def _unique_labels(curves: list[dict[str, Any]]) -> None:
    """Label curves of the same agent by their run folders too."""
    counts: dict[str, int] = {}
    for curve in curves:
        counts[curve["label"]] = counts.get(curve["label"], 0) + 1
    for curve in curves:
        if counts[curve["label"]] > 1:
            curve["label"] = f"{curve['label']} ({Path(curve['source']).name})"
