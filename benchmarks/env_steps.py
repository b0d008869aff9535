"""Single-thread env-steps/s of every metarl env, beside the raw MuJoCo physics it runs on.

    python benchmarks/env_steps.py [--steps N] [--env ID ...] [--json]

`gymnasium.make` includes Gymnasium's wrappers (time limit, order and passive checks);
`unwrapped` is the env's own `step`; `raw mj_step` is MuJoCo alone, frame_skip steps per env
step (plus the contact-force pass Ant's reward needs), the ceiling for any sampler on one core.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym

import metarl  # noqa: F401  (registers the envs)
from metarl.cli.bench import Workload, raw_mujoco_steps_per_s
from metarl.envs import ENVS


def steps_per_second(env: gym.Env, steps: int, seed: int = 0) -> float:
    """Step `env` with pre-drawn random actions, resetting at episode ends."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--env", action="append", help="measure only these ids (repeatable)")
    args = parser.parse_args()
    records = []
    for entry in ENVS:
        if not entry.installed or (args.env and entry.id not in args.env):
            continue  # an extra's env (Meta-World) that is not installed here, or not asked for
        env = gym.make(entry.id)
        record = {
            "env": entry.id,
            "observation_shape": list(env.observation_space.shape),
            "action_space": str(env.action_space),
            "make_steps_per_s": steps_per_second(env, args.steps),
            "unwrapped_steps_per_s": steps_per_second(env.unwrapped, args.steps),
        }
        if hasattr(env.unwrapped, "model"):
            # The sampler benchmark's raw loop: the same steps as 1 task × N/200 episodes × 200.
            workload = Workload(entry.id, 1, max(args.steps // 200, 1), 200)
            record["raw_mj_step_steps_per_s"] = raw_mujoco_steps_per_s(workload).env_steps_per_s
        records.append(record)
        env.close()
    if args.json:
        print(json.dumps(records, indent=1))
        return
    print("| env | obs | action | gymnasium.make | unwrapped | raw mj_step |")
    print("|---|---|---|---|---|---|")
    for r in records:
        raw = r.get("raw_mj_step_steps_per_s")
        print(
            f"| `{r['env']}` | {r['observation_shape']} | {r['action_space']} "
            f"| {r['make_steps_per_s']:,.0f} | {r['unwrapped_steps_per_s']:,.0f} "
            f"| {f'{raw:,.0f}' if raw else '–'} |"
        )


if __name__ == "__main__":
    main()
