"""Learner arithmetic: FLOPs, time and GFLOP/s of one gradient step of each agent's learner,
against this machine's float32 matmul peak (`metarl bench learner`).

Sampling is left out, so the figures say how well the learner itself uses the cores:

- `pearl`: one `PEARL.gradient_step` on a meta-batch (critics + encoder, then actor, then the
  target critics), its replay and encoder buffers filled beforehand with one collection of
  prior-z episodes per task (real transitions);
- `maml-trpo`: one `MAML.train_step` (adaptation through the inner steps, meta-gradient,
  Gauss-Newton Fisher products in CG, line search) on a meta batch sampled once and then
  returned by `sample_meta_batch` for every step;
- `rl2-trpo`: one `RL2TRPO.train_step` (advantages, then the TRPO step through the GRU unroll)
  on trials sampled once and then returned by `sample_trials` for every step.

Before each timed TRPO step the policy is put back to the parameters the batch was sampled
with, so every step is the same computation as the counted one (the same line search).

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` over one whole step, forward and
backward: it counts matmul-type ops (mm, addmm, bmm, ...), which carry nearly all of these
networks' arithmetic; elementwise ops (activations, Adam, Polyak averaging) are not counted.
The peak is the best rate of a float32 `torch.mm` of square matrices on the same thread count.
The machine is shared and noisy: compare figures of one run only.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from metarl.agents.registry import agent_spec
from metarl.backend.device import resolve_device
from metarl.cli.shipped_configs import config_path
from metarl.envs import resolve_env_id
from metarl.sampling.sampler import torch_threads
from metarl.training.config import build_config, load_yaml

LEARNERS = ("pearl", "maml-trpo", "rl2-trpo")
"""The learners measured, by their agent names (`metarl train NAME`)."""

DEFAULT_ENV = "halfcheetah-vel"

PEAK_SIZES = (512, 1024, 2048)
"""Sides of the square float32 matrices of the peak measurement."""

QUICK_PEAK_SIZES = (128, 256, 512)
"""`--quick`'s: well under a second."""

TOP_OPS = 3
"""Ops listed per record, by FLOPs."""

_PEARL_SETUP = {"num_tasks_sample": 1, "num_eval_tasks": 1}
"""PEARL values that only shorten set-up (collection and evaluation tasks); a gradient step's
arithmetic depends on none of them. `num_train_tasks` is set to the meta-batch size too, so
that one collection fills every task a step draws from."""


@dataclass(frozen=True)
class Workload:
    """One learner at one size: an agent name and the config values it is built with."""

    learner: str
    """Agent name, one of `LEARNERS`."""
    config: str
    """Where the values come from, as the table shows it: the agent's config class (its
    defaults, the paper's), a shipped config's name, or `quick`."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Config values over the agent's defaults."""


class Peak(NamedTuple):
    """The float32 matmul peak: the best rate and the matrix side that reached it."""

    gflops_per_s: float
    size: int


@dataclass
class OpShare:
    """One op's part of a step's FLOPs."""

    op: str
    """The aten op, e.g. `aten.mm`."""
    flops: int
    share: float
    """Its fraction of the step's FLOPs."""


@dataclass
class Record:
    """One learner's step at one size: what `--json` prints."""

    learner: str
    config: str
    """Which config (see `Workload.config`)."""
    env: str
    workload: str
    """The step's work in words (batch, network sizes)."""
    flops_per_step: int
    """FLOPs of one step, forward and backward (matmul-type ops, `FlopCounterMode`)."""
    seconds_per_step: float
    """Median wall time of the timed steps."""
    steps: int
    """Steps timed (after one counted, untimed step that is also the warm-up)."""
    gflops_per_s: float
    """flops_per_step / seconds_per_step, in 1e9 FLOP/s."""
    peak_gflops_per_s: float
    """The float32 matmul peak measured in the same run, on the same threads."""
    fraction_of_peak: float
    """gflops_per_s / peak_gflops_per_s."""
    threads: int
    """torch intra-op threads of the steps and of the peak."""
    peak_size: int
    """Side of the square matrices that reached the peak."""
    top_ops: list[OpShare]
    """The ops with the most FLOPs (`TOP_OPS` of them), most first."""
    device: str = "cpu"
    """Where the networks and the steps ran (and the peak): "cpu" or a CUDA device."""


def parse_learners(text: str | None) -> tuple[str, ...]:
    """`--learners`' comma-separated names (None: all of `LEARNERS`), in the order given; an
    unknown or missing one is a one-line `ValueError`."""
    if text is None:
        return LEARNERS
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in LEARNERS]
    if unknown:
        raise ValueError(
            f"unknown learner(s) {', '.join(map(repr, unknown))} in --learners; the learners "
            f"are: {', '.join(LEARNERS)}"
        )
    return tuple(dict.fromkeys(names))  # each once


def full_workloads(learner: str) -> list[Workload]:
    """The sizes a learner is measured at: the paper's (the config class's defaults) and, for
    PEARL, the shipped benchmark and laptop configs; RL² at its shipped HalfCheetah config."""
    if learner == "pearl":
        return [
            Workload("pearl", "PEARLConfig()"),
            *(
                Workload("pearl", name, load_yaml(config_path(name)))
                for name in ("pearl-halfcheetah-vel", "pearl-fast-halfcheetah-vel")
            ),
        ]
    if learner == "maml-trpo":
        return [Workload("maml-trpo", "MAMLConfig()")]
    if learner == "rl2-trpo":
        return [Workload("rl2-trpo", "rl2-halfcheetah", load_yaml(config_path("rl2-halfcheetah")))]
    raise ValueError(f"unknown learner {learner!r}; the learners are: {', '.join(LEARNERS)}")


def quick_workload(learner: str) -> Workload:
    """A tiny size of the learner, for a run of seconds (tests, CI)."""
    values: dict[str, dict[str, Any]] = {
        "pearl": {
            "meta_batch_size": 4,
            "batch_size": 32,
            "context_batch_size": 16,
            "hidden_sizes": [32, 32],
            "encoder_hidden_sizes": [32, 32],
            "num_prior_episodes": 1,
            "horizon": 50,
            "max_envs": 4,
            "num_workers": 1,
        },
        "maml-trpo": {
            "meta_batch_size": 4,
            "episodes_per_task": 2,
            "hidden_sizes": [32, 32],
            "horizon": 20,
            "cg_iterations": 3,
            "num_workers": 1,
        },
        # Short trials: the counter's Python dispatch of every op of the unroll, forward and
        # twice backward per Fisher product, costs ~10× the step itself.
        "rl2-trpo": {
            "meta_batch_size": 4,
            "episodes_per_trial": 2,
            "hidden_size": 32,
            "horizon": 10,
            "cg_iterations": 3,
            "num_workers": 1,
        },
    }
    if learner not in values:
        raise ValueError(f"unknown learner {learner!r}; the learners are: {', '.join(LEARNERS)}")
    return Workload(learner, "quick", values[learner])


def matmul_peak(
    sizes: Sequence[int] = PEAK_SIZES, repeats: int = 5, device: torch.device | None = None
) -> Peak:
    """The best float32 `torch.mm` rate over square matrices of `sizes`, `repeats` timings each
    (after one warm-up), on torch's current thread count (or on `device`, a GPU). A timing runs
    enough products to reach ~1 GFLOP (a GPU: ~100), so that small sizes are not mostly timer
    and dispatch overhead."""
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    best = Peak(0.0, 0)
    work = 1e9 if device.type == "cpu" else 1e11
    for n in sizes:
        a = torch.randn(n, n, generator=generator).to(device)
        b = torch.randn(n, n, generator=generator).to(device)
        out = torch.empty(n, n, device=device)
        flops = 2 * n**3
        count = max(1, math.ceil(work / flops))
        torch.mm(a, b, out=out)
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            for _ in range(count):
                torch.mm(a, b, out=out)
            _synchronize(device)
            rate = count * flops / (time.perf_counter() - start) / 1e9
            if rate > best.gflops_per_s:
                best = Peak(rate, n)
    return best


def _synchronize(device: torch.device) -> None:
    """Wait for `device`'s queued kernels (a GPU runs them asynchronously; the CPU: nothing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _GlobalOnly:
    """Stands in for `FlopCounterMode`'s module tracker, so that every op counts under "Global"
    alone (the only counts reported here). The tracker's hooks fail on a module output that
    requires grad without a grad_fn, which a view of a parameter made under `no_grad` is (the
    GRU policy's expanded log-std, in the TRPO anchor's forward)."""

    parents = frozenset({"Global"})
    """The names the counter adds each op's FLOPs to."""

    def __enter__(self) -> _GlobalOnly:
        """Nothing to install."""
        return self

    def __exit__(self, *args: object) -> None:
        """Nothing to remove."""


class _Prepared(NamedTuple):
    """An agent ready to step: one step, what puts it back before a timed step, and the
    step's work in words."""

    step: Callable[[], object]
    reset: Callable[[], None]
    description: str


def measure(
    workload: Workload,
    env: str,
    steps: int,
    peak: Peak,
    threads: int | None = None,
    device: str = "cpu",
) -> Record:
    """Build the workload's agent on `env` with its networks on `device`, prepare its cached
    data, count one step's FLOPs (that step is also the warm-up), then time `steps` steps; the
    agent is closed after. threads: recorded (the caller sets torch's threads; None records
    the current count)."""
    spec = agent_spec(workload.learner)
    values = {**spec.overrides, **workload.values, "device": device}
    if workload.learner == "pearl":
        meta_batch = values.get("meta_batch_size", spec.config_class.meta_batch_size)
        values = {**values, **_PEARL_SETUP, "num_train_tasks": meta_batch}
    config = build_config(spec.config_class, values)
    agent = spec.agent_class(env, config)
    try:
        prepared = _PREPARE[workload.learner](agent)
        prepared.reset()
        counter = FlopCounterMode(display=False)
        counter.mod_tracker = _GlobalOnly()
        with counter:
            prepared.step()
        seconds = []
        where = config.torch_device
        for _ in range(steps):
            prepared.reset()
            _synchronize(where)
            start = time.perf_counter()
            prepared.step()
            _synchronize(where)
            seconds.append(time.perf_counter() - start)
    finally:
        agent.close()
    flops = int(counter.get_total_flops())
    per_op = sorted(counter.get_flop_counts().get("Global", {}).items(), key=lambda kv: -kv[1])
    top = [OpShare(str(op), int(n), n / flops) for op, n in per_op[:TOP_OPS] if flops]
    median = statistics.median(seconds)
    rate = flops / median / 1e9
    return Record(
        learner=workload.learner,
        config=workload.config,
        env=env,
        workload=prepared.description,
        flops_per_step=flops,
        seconds_per_step=median,
        steps=steps,
        gflops_per_s=rate,
        peak_gflops_per_s=peak.gflops_per_s,
        fraction_of_peak=rate / peak.gflops_per_s,
        threads=threads if threads is not None else torch.get_num_threads(),
        device=str(config.torch_device),
        peak_size=peak.size,
        top_ops=top,
    )


def _prepare_pearl(agent: Any) -> _Prepared:
    """Fill every training task's replay and encoder buffers with `num_prior_episodes` episodes
    with z from the prior (the start of each iteration's collection); a step is one
    `gradient_step` on all of them (the meta-batch size)."""
    cfg = agent.config
    tasks = torch.arange(cfg.num_train_tasks)
    agent.collect(tasks, cfg.num_prior_episodes, False, True)
    description = (
        f"SAC + encoder step: {cfg.meta_batch_size} tasks × {cfg.batch_size} transitions, "
        f"context {cfg.context_batch_size}; actor and twin critics {_sizes(cfg.hidden_sizes)}, "
        f"encoder {_sizes(cfg.encoder_hidden_sizes)}, latent {cfg.latent_size}"
    )
    return _Prepared(lambda: agent.gradient_step(tasks), lambda: None, description)


def _prepare_maml(agent: Any) -> _Prepared:
    """Sample one meta batch and make `sample_meta_batch` return it; a step is `train_step`
    from the parameters that sampled it."""
    cfg, loop = agent.config, agent.inner_loop
    batch = loop.sample_meta_batch()
    loop.sample_meta_batch = lambda: batch  # the instance's, shadowing the method
    start = {name: p.detach().clone() for name, p in loop.meta_parameters().items()}
    fisher = cfg.fisher_tasks or cfg.meta_batch_size
    description = (
        f"outer TRPO step: {cfg.meta_batch_size} tasks × {cfg.episodes_per_task} episodes × "
        f"{loop.sampler.horizon} steps, policy {_sizes(cfg.hidden_sizes)}, "
        f"{cfg.num_inner_steps} inner step(s), CG {cfg.cg_iterations} iterations on "
        f"{fisher} tasks, line search"
    )
    return _Prepared(agent.train_step, lambda: loop.load_meta_parameters(start), description)


def _prepare_rl2(agent: Any) -> _Prepared:
    """Sample one batch of trials and make `sample_trials` return it; a step is `train_step`
    from the parameters that sampled it."""
    cfg = agent.config
    trials = agent.sample_trials(
        agent.task_env.sample_tasks(cfg.meta_batch_size), cfg.episodes_per_trial
    )
    agent.sample_trials = lambda tasks, episodes_per_trial: trials
    start = {name: p.detach().clone() for name, p in agent.policy.state_dict().items()}
    fisher = cfg.fisher_trials or cfg.meta_batch_size
    description = (
        f"TRPO step through the GRU unroll: {cfg.meta_batch_size} trials × "
        f"{cfg.episodes_per_trial} episodes × {agent.sampler.horizon} steps, GRU "
        f"{cfg.hidden_size}, CG {cfg.cg_iterations} iterations on {fisher} trials, line search"
    )
    return _Prepared(agent.train_step, lambda: agent.policy.load_state_dict(start), description)


_PREPARE: dict[str, Callable[[Any], _Prepared]] = {
    "pearl": _prepare_pearl,
    "maml-trpo": _prepare_maml,
    "rl2-trpo": _prepare_rl2,
}


def _sizes(widths: Sequence[int]) -> str:
    """Hidden layers in words: `3×300` when all are one width, else `128-64`."""
    if not widths:
        return "linear"
    if len(set(widths)) == 1:
        return f"{len(widths)}×{widths[0]}"
    return "-".join(map(str, widths))


def format_table(records: Sequence[Record]) -> str:
    """A Markdown table of the records, under a header with the peak and what is counted."""
    first = records[0]
    threads = f"{first.threads} thread" + ("s" if first.threads > 1 else "")
    if first.device != "cpu":
        threads = f"{first.device} (sampling on {threads})"
    lines = [
        f"One gradient step of each learner on {first.env}, {threads}; float32 matmul peak "
        f"{first.peak_gflops_per_s:,.1f} GFLOP/s (torch.mm {first.peak_size}², best rate).",
        "FLOPs: FlopCounterMode over the step, forward + backward, matmul-type ops only "
        f"(elementwise ops not counted); time: median of {first.steps} timed step(s).",
        "",
        "| learner | config | workload | GFLOP/step | ms/step | GFLOP/s | of peak | top ops |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in records:
        ops = ", ".join(f"{o.op.removeprefix('aten.')} {o.share:.0%}" for o in r.top_ops)
        lines.append(
            f"| {r.learner} | {r.config} | {r.workload} | {r.flops_per_step / 1e9:,.3f} | "
            f"{r.seconds_per_step * 1e3:,.1f} | {r.gflops_per_s:,.2f} | "
            f"{r.fraction_of_peak:.1%} | {ops} |"
        )
    return "\n".join(lines)


def learner_report(
    learners: Sequence[str] = LEARNERS,
    env: str = DEFAULT_ENV,
    steps: int = 3,
    quick: bool = False,
    threads: int = 2,
    as_json: bool = False,
    log: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> str:
    """Measure the peak, then every workload of `learners` on `env`, all on `threads` torch
    threads; the table, or the JSON list of records. What `metarl bench learner` prints.

    log: called with each measurement's name before it starts (a full run takes minutes).
    device: where the learners' networks and steps run, and the peak is taken (`auto`, `cpu`,
    `cuda[:N]`; an absent GPU is a one-line error before anything is measured)."""
    log = log or (lambda _: None)
    env_id = resolve_env_id(env)  # a bad env name fails before measuring
    where = resolve_device(device)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    workloads = [
        w
        for learner in learners
        for w in ([quick_workload(learner)] if quick else full_workloads(learner))
    ]
    with torch_threads(threads):
        log("the float32 matmul peak")
        sizes = (QUICK_PEAK_SIZES, 3) if quick else (PEAK_SIZES, 5)
        if where.type == "cuda" and not quick:
            sizes = ((2048, 4096, 8192), 5)
        peak = matmul_peak(*sizes, device=where)
        records = []
        for workload in workloads:
            log(f"{workload.learner} ({workload.config})")
            records.append(measure(workload, env_id, steps, peak, threads, str(where)))
    if as_json:
        return json.dumps([asdict(r) for r in records], indent=1)
    return format_table(records)
