"""One Fisher-vector product of MAML-TRPO's meta-update, timed and counted, under each allocator
and task-chunking setting: the measurements behind benchmarks/README.md, "Where an iteration's
time goes".

    python benchmarks/fisher_product.py [--allocator default|keep] [--chunks on|off]
        [--tasks 40] [--compare-hessian] [--flops]

Samples one HalfCheetahVel meta-batch (`--tasks` × 20 episodes × 200 steps, `MAMLConfig()`),
then times building the second-order graph with its Gauss-Newton operator and one product
(best of 3 after a warm-up; wall and CPU seconds). `--compare-hessian` also times the previous
operator (`hessian_operator` of the KL through the inner steps) and prints the two products'
relative difference; `--flops` counts each product's matrix-multiply FLOPs
(`torch.utils.flop_counter`). Run each setting in a fresh process: the allocator setting is
process-wide and cannot be undone.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from metarl.agents.maml import MAML, MAMLConfig
from metarl.agents.parts import inner_loop
from metarl.backend.allocator import keep_freed_memory
from metarl.backend.optim import flat, hessian_operator, leaves


def best(fn: Callable[[], object], repeats: int = 3) -> dict[str, float]:
    """The fastest of `repeats` calls after one warm-up: wall and CPU seconds."""
    fn()
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(runs)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocator", choices=["default", "keep"], default="keep")
    parser.add_argument("--chunks", choices=["on", "off"], default="on")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--compare-hessian", action="store_true")
    parser.add_argument("--flops", action="store_true")
    args = parser.parse_args()
    if args.allocator == "keep":
        keep_freed_memory()
    if args.chunks == "off":
        inner_loop.CHUNK_BYTES = 1 << 62
    torch.set_num_threads(2)
    agent = MAML("halfcheetah-vel", MAMLConfig(meta_batch_size=args.tasks))
    loop = agent.inner_loop
    batch = loop.sample_meta_batch()
    inner, post = batch.inner, batch.post
    old = loop.dist_params(batch.adapted, post.observations)
    meta_params = loop.meta_parameters()
    v = torch.randn(flat(meta_params).numel(), generator=torch.Generator().manual_seed(0))

    def gauss_newton() -> Callable[[torch.Tensor], torch.Tensor]:
        at = leaves(meta_params)
        dist_params = loop.dist_params(loop.adapt(at, inner), post.observations)
        return loop.kl_fisher(at, dist_params, post, old, 1e-5)

    def hessian() -> Callable[[torch.Tensor], torch.Tensor]:
        return hessian_operator(lambda p: agent.outer_kl(p, inner, post, old), meta_params, 1e-5)

    record: dict[str, object] = {"allocator": args.allocator, "chunks": args.chunks}
    builders = {"gauss-newton": gauss_newton}
    if args.compare_hessian:
        builders["hessian"] = hessian
    products = {}
    for name, build in builders.items():
        record[f"{name} build"] = best(build, 2)
        operator = build()
        record[f"{name} product"] = best(lambda op=operator: op(v))
        products[name] = operator(v)
        if args.flops:
            with FlopCounterMode(display=False) as counter:
                operator(v)
            record[f"{name} GFLOP"] = round(counter.get_total_flops() / 1e9, 2)
        del operator
    if args.compare_hessian:
        difference = products["gauss-newton"] - products["hessian"]
        record["relative difference"] = float(difference.norm() / products["hessian"].norm())
    agent.close()
    print(json.dumps(record))


if __name__ == "__main__":
    main()
