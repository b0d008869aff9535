"""PEARL's gradient step under implementation variants that could close its gap to the matmul
peak: do they give the same bits, and are they faster? (issue 14)

    python benchmarks/pearl_step_variants.py [--config fast|fast-e64|benchmark|paper] [--steps 30]

Variants, each on its own agent built from the same seed with the same buffers:
- `default`: what metarl ships (Adam's default implementation, out-of-place ReLU);
- `adam-foreach`: Adam's `foreach` implementation (multi-tensor kernels);
- `adam-fused`: Adam's `fused` kernel (one kernel per parameter group);
- `relu-inplace`: every ReLU of the step's networks in place.
After 20 steps each variant's critic and actor weights are compared bit for bit with the
default's; then `--steps` steps are timed alternating between the variants (medians printed),
so a noisy machine slows them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from metarl.agents.pearl import PEARL, PEARLConfig
from metarl.backend.allocator import keep_freed_memory

SIZES = {
    "paper": {},
    "benchmark": {"meta_batch_size": 8, "batch_size": 128, "hidden_sizes": (128, 128, 128)},
    "fast": {"meta_batch_size": 8, "batch_size": 128, "hidden_sizes": (64, 64, 64)},
    "fast-e64": {
        "meta_batch_size": 8,
        "batch_size": 128,
        "hidden_sizes": (64, 64, 64),
        "encoder_hidden_sizes": (64, 64, 64),
    },
}


def agent(size: dict, variant: str) -> PEARL:
    """A PEARL agent of `size` on HalfCheetahVel with `variant` applied and every task's
    buffers holding the same 1000 random rows."""
    tasks = size.get("meta_batch_size", PEARLConfig.meta_batch_size)
    config = PEARLConfig(num_train_tasks=tasks, num_tasks_sample=1, num_eval_tasks=1, **size)
    pearl = PEARL("halfcheetah-vel", config)
    if variant.startswith("adam-"):
        for optimizer in pearl.optimizers.values():
            for group in optimizer.param_groups:
                group[variant.removeprefix("adam-")] = True
    if variant == "relu-inplace":
        for network in (pearl.policy, pearl.critic, pearl.target_critic, pearl.encoder):
            for module in network.modules():
                if isinstance(module, nn.ReLU):
                    module.inplace = True
    rows = torch.randn(tasks, 1000, pearl.replay.width, generator=torch.Generator().manual_seed(1))
    for task in range(tasks):
        pearl.replay.add(task, rows[task])
        pearl.encoder_buffer.add(task, rows[task])
    return pearl


def main() -> None:
    """Print each variant's bit-identity with the default and its median step time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(SIZES), default="fast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    keep_freed_memory()  # as `metarl` commands do
    torch.set_num_threads(args.threads)
    variants = ("default", "adam-foreach", "adam-fused", "relu-inplace")
    agents = {name: agent(SIZES[args.config], name) for name in variants}
    tasks = torch.arange(agents["default"].config.meta_batch_size)
    for _ in range(20):
        for pearl in agents.values():
            pearl.gradient_step(tasks)
    reference = agents["default"]
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.steps):
        for name, pearl in agents.items():
            start = time.perf_counter()
            pearl.gradient_step(tasks)
            seconds[name].append(time.perf_counter() - start)
    print(f"PEARL step, config {args.config}, {args.threads} thread(s), {args.steps} steps")
    for name, pearl in agents.items():
        same = all(
            torch.equal(mine, theirs)
            for network in ("critic", "policy", "encoder")
            for mine, theirs in zip(
                getattr(pearl, network).parameters(),
                getattr(reference, network).parameters(),
                strict=True,
            )
        )
        median = statistics.median(seconds[name]) * 1e3
        print(f"{name:13s} {median:7.1f} ms   same bits as default after 20 steps: {same}")
        pearl.close()


if __name__ == "__main__":
    main()
