"""Env steps per second of the Ray sampler against the local one, its per-call overhead, and a
measured model of the speed-up on K machines, all measured in one run.

    python benchmarks/ray_sampler.py [--tasks 40] [--episodes 5] [--horizon 200]
        [--actors 1,2,4] [--repeats 3] [--machines 1,2,4,8,16] [--json OUT]

The workload is MAML's post-update batch on HalfCheetahVel: `tasks` per-task parameter sets of
a (100, 100) Gaussian MLP, `episodes` episodes per task of `horizon` steps. Rows, medians over
`repeats` calls after one warm-up call:

- local: `VectorSampler` with the MuJoCo threads on every core of this machine;
- ray ×N: `RaySampler` with N actors of one physics thread each, on a local Ray instance
  (N above the cores shares them); every batch is checked equal to the local one;
- the overhead of a Ray call: its time less the slowest slice's own collection time, measured
  in this process with `sample_columns` on one thread, i.e. the broadcast of the policy and
  its parameter sets, the return of the episodes and the assembly; and the time of a call of
  one-step episodes (`one_step_call_s`), which is the broadcast and scheduling alone;
- the model: on K machines of this one's cores, an iteration's sampling takes the slowest
  slice (B/(K × cores) columns, measured here on one thread), plus the one-step call at
  K × cores actors (fitted linearly to the measured ones), plus the return of the episodes
  (their pickling round trip, measured here). Its speed-up is against the local row.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import metarl  # noqa: F401  (registers the envs)
from metarl.policies import GaussianMLPPolicy, parameters
from metarl.sampling.ray_sampler import RaySampler, connect, split_columns
from metarl.sampling.sampler import ColumnRequest, VectorSampler

ENV = "metarl/HalfCheetahVel-v0"


def workload(tasks: int) -> tuple[GaussianMLPPolicy, list, list]:
    """The policy, its per-task parameter sets and the tasks."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(17, 6, (100, 100))
    generator = torch.Generator().manual_seed(1)
    params = [
        {k: (v + 0.01 * torch.randn(v.shape, generator=generator)).detach() for k, v in
         parameters(policy).items()}
        for _ in range(tasks)
    ]  # fmt: skip
    probe = gym.make(ENV).unwrapped
    probe.reset(seed=1)
    return policy, params, probe.sample_tasks(tasks)


def timed(call, repeats: int) -> tuple[float, object]:
    """The median seconds of `repeats` calls after a warm-up call, and the last result."""
    result = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def slice_seconds(policy, params, tasks, episodes, horizon, columns, repeats) -> float:
    """Median seconds of one slice's `sample_columns` on one physics thread, here."""
    batch = len(tasks) * episodes
    with VectorSampler(ENV, columns.stop - columns.start, horizon=horizon, num_workers=1) as one:
        seeds = np.random.default_rng(0).integers(2**31, size=batch).tolist()
        request = ColumnRequest(
            columns, seeds[columns], torch.Generator().manual_seed(0).get_state()
        )
        seconds, _ = timed(
            lambda: one.sample_columns(policy, tasks, episodes, params, request), repeats
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--actors", default="1,2,4")
    parser.add_argument("--machines", default="1,2,4,8,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    actors = [int(n) for n in args.actors.split(",")]
    machines = [int(k) for k in args.machines.split(",")]
    cores = os.cpu_count() or 1
    policy, params, tasks = workload(args.tasks)
    batch, steps = args.tasks * args.episodes, args.tasks * args.episodes * args.horizon
    options = {"horizon": args.horizon, "seed": 0}

    with VectorSampler(ENV, batch, num_workers=cores, **options) as local:
        start = local.state_dict()

        def local_call():
            local.load_state_dict(start)
            return local.sample(policy, tasks, args.episodes, params)

        local_s, expected = timed(local_call, args.repeats)
    rows = [
        {"sampler": f"local ({cores} threads)", "seconds": local_s, "steps_per_s": steps / local_s}
    ]
    print(f"local: {local_s:.2f} s, {steps / local_s:,.0f} steps/s", flush=True)

    connect(None, workers=max(actors))
    for n in actors:
        with RaySampler(ENV, batch, ray_workers=n, num_workers=1, **options) as remote:

            def remote_call():
                remote.load_state_dict(start)
                return remote.sample(policy, tasks, args.episodes, params)

            seconds, episodes = timed(remote_call, args.repeats)
        assert torch.equal(episodes.rewards, expected.rewards), "Ray's batch is not the local one"
        with RaySampler(ENV, batch, ray_workers=n, num_workers=1, horizon=1) as short:
            fixed, _ = timed(
                lambda: short.sample(policy, tasks, args.episodes, params), args.repeats
            )
        slowest = max(
            slice_seconds(policy, params, tasks, args.episodes, args.horizon, cols, args.repeats)
            for cols in split_columns(batch, n)[:1]  # the first slice is the largest
        )
        rows.append(
            {
                "sampler": f"ray × {n}",
                "actors": n,
                "seconds": seconds,
                "steps_per_s": steps / seconds,
                "speedup": local_s / seconds,
                "slowest_slice_s": slowest,
                "overhead_s": seconds - slowest if n <= cores else None,
                "one_step_call_s": fixed,
            }
        )
        print(
            f"ray × {n}: {seconds:.2f} s (slowest slice {slowest:.2f} s; a one-step batch "
            f"{fixed:.3f} s)",
            flush=True,
        )

    # The model's overhead: the one-step call (broadcast, scheduling), fitted linearly in the
    # actors, plus the return of the whole batch's episodes, measured as their pickling round
    # trip here (what Ray does with tensors), which no actor count changes.
    counts = [row["actors"] for row in rows[1:]]
    fit = np.polyfit(counts, [row["one_step_call_s"] for row in rows[1:]], 1)
    return_s, _ = timed(lambda: pickle.loads(pickle.dumps(expected)), args.repeats)
    model = []
    for k in machines:
        count = k * cores
        columns = split_columns(batch, count)[0]
        slowest = slice_seconds(
            policy, params, tasks, args.episodes, args.horizon, columns, args.repeats
        )
        overhead = float(np.polyval(fit, count)) + return_s
        predicted = slowest + overhead
        model.append(
            {"machines": k, "actors": count, "slowest_slice_s": slowest,
             "overhead_s": overhead, "predicted_s": predicted, "speedup": local_s / predicted}
        )  # fmt: skip
        print(f"model, {k} machines: {predicted:.2f} s, ×{local_s / predicted:.1f}", flush=True)
    result = {
        "workload": {"env": ENV, "tasks": args.tasks, "episodes": args.episodes,
                     "horizon": args.horizon, "env_steps": steps, "policy": "(100, 100), per task"},
        "cores": cores,
        "rows": rows,
        "one_step_call_fit_s": {"per_actor": fit[0], "fixed": fit[1]},
        "episodes_return_s": return_s,
        "model": model,
    }  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
