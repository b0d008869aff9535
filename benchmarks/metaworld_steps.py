"""Env steps per second of a Meta-World batch: metarl's sampler (the generic path: Gymnasium
envs in worker processes) against one Meta-World env stepped in a loop, measured in one run.

    python benchmarks/metaworld_steps.py [--env push-v3] [--tasks 10] [--episodes 2]
        [--horizon 500] [--repeats 3] [--json OUT]

Needs the metaworld extra (README, "Meta-World"). Each sampler row samples `tasks × episodes`
episodes of `horizon` steps with an untrained (64, 64) Gaussian policy; the loop row steps one
Meta-World env with uniform random actions, resetting it every `horizon` steps. Medians over
`repeats` calls; the workers are started (and Meta-World's goals built) before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import metarl  # noqa: F401  (registers metarl/ML1-v0)
from metarl.policies import make_policy
from metarl.sampling.sampler import VectorSampler


def sampler_rate(
    env_name: str, tasks: int, episodes: int, horizon: int, workers: int, repeats: int
) -> float:
    """Median env steps per second of `VectorSampler.sample` on the ML1 env."""
    kwargs = {"env_name": env_name}
    with VectorSampler(
        "metarl/ML1-v0",
        tasks * episodes,
        horizon=horizon,
        seed=0,
        num_workers=workers,
        env_kwargs=kwargs,
    ) as sampler:
        torch.manual_seed(0)
        policy = make_policy(sampler.observation_space, sampler.action_space)
        task_env = gym.make("metarl/ML1-v0", **kwargs).unwrapped
        task_env.reset(seed=0)
        rates = []
        for _ in range(repeats):
            batch = task_env.sample_tasks(tasks)
            start = time.perf_counter()
            episodes_ = sampler.sample(policy, batch, episodes)
            rates.append(episodes_.num_env_steps / (time.perf_counter() - start))
    return statistics.median(rates)


def loop_rate(env_name: str, steps: int, horizon: int, repeats: int) -> float:
    """Median env steps per second of one Meta-World env (through metarl's) in a loop."""
    env = gym.make("metarl/ML1-v0", env_name=env_name)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, 4))
    rates = []
    for _ in range(repeats):
        env.reset()
        start = time.perf_counter()
        for i, action in enumerate(actions, start=1):
            env.step(action)
            if i % horizon == 0:
                env.reset()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    """Print the rows (and write them as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="push-v3")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = args.tasks * args.episodes * args.horizon
    rows = {"one env in a loop": loop_rate(args.env, steps, args.horizon, args.repeats)}
    for workers in (0, 1, 2):
        rows[f"sampler, {workers} workers"] = sampler_rate(
            args.env, args.tasks, args.episodes, args.horizon, workers, args.repeats
        )
    print(f"ML1 {args.env}: {args.tasks} tasks × {args.episodes} episodes × {args.horizon} steps")
    for name, rate in rows.items():
        print(f"  {name:<22} {rate:8,.0f} env steps/s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "steps_per_s": rows}, indent=1
            )
        )


if __name__ == "__main__":
    main()
