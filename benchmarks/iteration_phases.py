"""Where a meta-iteration's time goes: sampling, inner steps, meta-gradient, CG / Fisher, line
search, per agent, on the paper batches.

    python benchmarks/iteration_phases.py [--workload NAME ...] [--iterations N] [--json FILE]

Each workload builds its agent as `metarl train` would (registry name, shipped config, extra
values), runs one warm-up iteration and then `--iterations` timed ones, and reports the median of
each phase. Phases are measured by wrapping metarl's own functions (wherever a module imported
them) with a timer: a call's time goes to its phase minus the time of the wrapped calls nested in
it, and the "absorbing" phases (sampling, CG / Fisher, line search) keep everything nested in
them, so that the inner steps a Fisher product re-runs count as the Fisher's. "other" is the
iteration's time outside every wrapped call (the surrogate's forward and backward for ProMP's
Adam steps, metrics). The same script runs on an older checkout, which is how the README's
"before" columns were taken: names missing in a version are skipped.

The machine is shared and noisy: compare versions in one run (`farm-bench`, or both checkouts
back to back), never across days.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from metarl.agents.registry import agent_spec
from metarl.cli.shipped_configs import config_path
from metarl.training.config import build_config, load_yaml

WORKLOADS: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {
    # name: (agent, env, shipped config or None, extra config values)
    "maml-halfcheetah-exact": ("maml-trpo", "halfcheetah-vel", None, {}),
    "maml-halfcheetah-fisher10": ("maml-trpo", "halfcheetah-vel", "halfcheetah", {}),
    "promp-halfcheetah": ("promp", "halfcheetah-vel", "halfcheetah-promp", {}),
    "rl2-halfcheetah": ("rl2-trpo", "halfcheetah-vel", "rl2-halfcheetah", {}),
    "rl2-halfcheetah-exact": (
        "rl2-trpo",
        "halfcheetah-vel",
        "rl2-halfcheetah",
        {"fisher_trials": None},
    ),
    "maml-navigation-exact": ("maml-trpo", "navigation2d", "navigation2d", {"fisher_tasks": None}),
    "maml-navigation": ("maml-trpo", "navigation2d", "navigation2d", {}),
    # Duan et al.'s n = 100 bandit row (k = 5, the env's default) with the paper's value function
    # and GRU 256, at 500 trials (the paper's batch is 2500)
    "rl2-bandit-n100-paper": (
        "rl2-trpo",
        "bandit",
        "rl2-bandit",
        {
            "episodes_per_trial": 100,
            "meta_batch_size": 500,
            "hidden_size": 256,
            "value_function": "gru",
            "gae_lambda": 0.3,
        },
    ),
}

# (module, attribute path, phase, absorbing): the functions timed. Absorbing phases keep the
# time of every wrapped call nested in them.
PHASES: list[tuple[str, str, str, bool]] = [
    ("metarl.sampling.sampler", "VectorSampler.sample", "sampling", True),
    ("metarl.agents.parts.inner_loop", "GradientInnerLoop.inner_step", "inner steps", False),
    ("metarl.agents.parts.inner_loop", "TaskStack.of", "advantages", False),
    ("metarl.agents.rl2", "RL2.advantages", "advantages", False),
    ("metarl.backend.optim", "trpo_step", "meta-gradient & step", False),
    ("metarl.backend.optim", "trust_region_step", "meta-gradient & step", False),
    ("metarl.backend.optim", "hessian_operator", "CG / Fisher", True),
    ("metarl.backend.optim", "gauss_newton_operator", "CG / Fisher", True),
    ("metarl.backend.optim", "conjugate_gradient", "CG / Fisher", True),
    ("metarl.backend.optim", "natural_gradient_step", "CG / Fisher", True),
    ("metarl.backend.optim", "backtracking_line_search", "line search", True),
    ("metarl.agents.promp", "ProMP._old_stage_dists", "inner steps", False),
    ("metarl.agents.parts.recurrent_value", "RecurrentValue.fit", "value fit", False),
]


class PhaseClock:
    """Accumulates each phase's exclusive time over the wrapped calls (see the module doc)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [phase, absorbing, nested seconds]

    def wrap(self, fn: Callable, phase: str, absorbing: bool) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if any(frame[1] for frame in self._stack):
                return fn(*args, **kwargs)
            frame = [phase, absorbing, 0.0]
            self._stack.append(frame)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._stack.pop()
                self.seconds[phase] += elapsed - frame[2]
                if self._stack:
                    self._stack[-1][2] += elapsed

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed


def install(clock: PhaseClock) -> None:
    """Wrap every function of `PHASES` that this version of metarl has, in its own module and
    wherever another module imported it by name."""
    for module_name, path, phase, absorbing in PHASES:
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            continue
        wrapped = clock.wrap(original, phase, absorbing)
        raw = owner.__dict__.get(name)
        setattr(owner, name, staticmethod(wrapped) if isinstance(raw, staticmethod) else wrapped)
        if isinstance(raw, classmethod):
            setattr(owner, name, classmethod(clock.wrap(raw.__func__, phase, absorbing)))
        for module in list(sys.modules.values()):
            if module is not None and getattr(module, name, None) is original:
                setattr(module, name, wrapped)


def run_workload(name: str, iterations: int, clock: PhaseClock) -> dict[str, Any]:
    """Median seconds per phase (and per iteration) of `iterations` timed iterations."""
    agent_name, env, config, extra = WORKLOADS[name]
    spec = agent_spec(agent_name)
    values = {**spec.overrides, **(load_yaml(config_path(config)) if config else {}), **extra}
    agent = spec.agent_class(env, build_config(spec.config_class, values))
    rows = []
    try:
        for i in range(iterations + 1):
            clock.seconds.clear()
            start = time.perf_counter()
            agent.train_step()
            total = time.perf_counter() - start
            row = dict(clock.seconds)
            row["other"] = total - sum(row.values())
            row["iteration"] = total
            print(f"{name} iteration {i}: {total:.2f} s", file=sys.stderr, flush=True)
            if i:  # the first is a warm-up
                rows.append(row)
    finally:
        agent.close()
    phases = sorted({key for row in rows for key in row})
    return {
        "workload": name,
        "agent": agent_name,
        "env": env,
        "config": config,
        "extra": extra,
        "iterations": iterations,
        "median_s": {k: statistics.median(row.get(k, 0.0) for row in rows) for k in phases},
        # The process's peak so far: run one workload per process for a figure of its own.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


ORDER = [
    "sampling",
    "inner steps",
    "advantages",
    "meta-gradient & step",
    "CG / Fisher",
    "line search",
    "other",
    "iteration",
]


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per workload, one column per phase (median seconds)."""
    lines = [
        "| workload | " + " | ".join(ORDER) + " | peak RSS MiB |",
        "|---|" + "---|" * (len(ORDER) + 1),
    ]
    for result in results:
        cells = [f"{result['median_s'].get(phase, 0.0):.2f}" for phase in ORDER]
        cells.append(f"{result['peak_rss_mib']:.0f}")
        lines.append(f"| {result['workload']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations (median)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc as it is (metarl train keeps freed memory: see allocator)",
    )
    args = parser.parse_args()
    if not args.default_allocator:
        try:
            from metarl.backend.allocator import keep_freed_memory
        except ImportError:  # a version before the allocator setting
            pass
        else:
            keep_freed_memory()
    torch.set_num_threads(2)
    clock = PhaseClock()
    install(clock)
    results = [run_workload(name, args.iterations, clock) for name in args.workload]
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
