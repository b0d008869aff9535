"""Adaptation on held-out tasks: return after 0, 1, …, K inner steps (DESIGN §1, §7)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from metarl.checkpoint import load_checkpoint
from metarl.trainer import Run

HELD_OUT_SEED_OFFSET = 10_000  # held-out tasks come from seed + this, never the training stream


def evaluate(
    run_dir: Path,
    num_tasks: int = 40,
    adapt_steps: int = 3,
    seed: int | None = None,
    episodes: int | None = None,
) -> dict[str, Any]:
    """Mean return and 95% confidence interval after each number of adaptation steps on
    `num_tasks` held-out tasks, adapting on `episodes` episodes per task (default: training's);
    also written to `run_dir/eval/adaptation.{json,csv,png}`."""
    if num_tasks < 1 or adapt_steps < 0:
        raise ValueError(
            f"evaluate needs tasks >= 1 and adapt_steps >= 0, got {num_tasks}, {adapt_steps}"
        )
    run_dir = Path(run_dir)
    run = Run.load(run_dir)
    agent = run.build(**({} if episodes is None else {"episodes_per_task": episodes}))
    try:
        if not hasattr(agent, "adaptation_returns"):
            raise ValueError(f"{run.agent} does not adapt to tasks: there is nothing to evaluate")
        payload = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
        agent.load_state_dict(payload["agent"])
        seed = run.config["seed"] + HELD_OUT_SEED_OFFSET if seed is None else seed
        task_env = gym.make(run.env, **run.env_kwargs).unwrapped
        task_env.reset(seed=seed)
        tasks = task_env.sample_tasks(num_tasks)
        batch = run.config["meta_batch_size"]  # the sampler holds this many tasks at once
        returns = torch.cat(
            [
                agent.adaptation_returns(tasks[i : i + batch], adapt_steps)
                for i in range(0, num_tasks, batch)
            ],
            dim=1,
        )
    finally:
        agent.close()
    mean = returns.mean(1)
    half_width = 1.96 * returns.std(1) / math.sqrt(num_tasks) if num_tasks > 1 else 0 * mean
    result = {
        "agent": run.agent,
        "env": run.env,
        "iteration": payload["iteration"],
        "tasks": num_tasks,
        "episodes_per_task": agent.config.episodes_per_task,
        "task_seed": seed,
        "adapt_steps": list(range(adapt_steps + 1)),
        "mean_return": mean.tolist(),
        "ci95": half_width.tolist(),
    }
    _write(run_dir / "eval", result)
    return result


def _write(out_dir: Path, result: dict[str, Any]) -> None:
    out_dir.mkdir(exist_ok=True)
    (out_dir / "adaptation.json").write_text(json.dumps(result, indent=1))
    with open(out_dir / "adaptation.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["adapt_steps", "mean_return", "ci95"])
        rows = zip(result["adapt_steps"], result["mean_return"], result["ci95"], strict=True)
        writer.writerows(rows)
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.errorbar(
        result["adapt_steps"], result["mean_return"], yerr=result["ci95"], marker="o", capsize=4
    )
    axes.set(
        xlabel="adaptation steps",
        ylabel="mean return (95% CI)",
        title=f"{result['agent']} on {result['env']}\n{result['tasks']} held-out tasks",
    )
    axes.set_xticks(result["adapt_steps"])
    figure.tight_layout()
    figure.savefig(out_dir / "adaptation.png", dpi=120)
    plt.close(figure)
