"""The `metarl` command line (docs/architecture.md §7)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

import metarl
from metarl.agents import AGENTS, REFERENCE_AGENTS
from metarl.backend.allocator import keep_freed_memory
from metarl.cli.shipped_configs import shipped_configs
from metarl.envs import ENVS
from metarl.fewshot.data import DESCRIPTIONS as FEWSHOT_TASKS
from metarl.fewshot.parts.config import CHECKPOINT_EVERY as FEWSHOT_CHECKPOINT_EVERY
from metarl.fewshot.registry import FEWSHOT_REGISTRY


def _list(args: argparse.Namespace) -> int:
    width = max(len(e.id) for e in ENVS)
    short = max(len(e.short_name) for e in ENVS)
    print("Environments (full id, or its short name):")
    for entry in ENVS:
        needs = "" if entry.installed else f' (needs pip install -e ".[{entry.extra}]")'
        print(f"  {entry.id:<{width}}  {entry.short_name:<{short}}  {entry.description}{needs}")
    print("Agents:")
    if not AGENTS:
        print("  none in this version yet")
    for name, description in AGENTS.items():
        print(f"  {name:<{width + short + 2}}  {description}")
    print("Reference agents (no training; metarl evaluate --agent NAME --env ENV):")
    for name, description in REFERENCE_AGENTS.items():
        print(f"  {name:<{width + short + 2}}  {description}")
    print("Few-shot task distributions (supervised; metarl train LEARNER --env NAME):")
    for name, description in FEWSHOT_TASKS.items():
        print(f"  {name:<{width + short + 2}}  {description}")
    print("Few-shot learners:")
    for name, spec in FEWSHOT_REGISTRY.items():
        print(f"  {name:<{width + short + 2}}  {spec.description}")
    print("Shipped configs (metarl train AGENT --env ENV --config NAME):")
    for name, path in shipped_configs().items():
        print(f"  {name:<{width + short + 2}}  {_first_comment(path)}")
    return 0


def _first_comment(path: Path) -> str:
    """The first comment line of a YAML file, which says what the config is for."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _demo(args: argparse.Namespace) -> int:
    from metarl.cli.demo import describe_task, random_policy_returns

    names = args.env or [entry.id for entry in ENVS if entry.installed]  # extras if there
    results = [
        result
        for name in names
        for result in random_policy_returns(name, args.tasks, args.episodes, args.seed)
    ]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    print(
        f"Mean return of a uniformly random policy on tasks drawn with seed {args.seed} "
        f"({args.episodes} episodes per task), and env steps per second on one thread."
    )
    tasks = [describe_task(r.task) for r in results]
    env_width, task_width = max(len(r.env) for r in results), max(map(len, tasks))
    header = (
        f"{'env':<{env_width}} {'obs':>5} {'action':>11}  {'task':<{task_width}} "
        f"{'return':>9} {'steps/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r, task in zip(results, tasks, strict=True):
        obs = "×".join(str(d) for d in r.observation_shape)
        print(
            f"{r.env:<{env_width}} {obs:>5} {r.action_space:>11}  {task:<{task_width}} "
            f"{r.mean_return:>9.2f} {r.env_steps_per_s:>9,.0f}"
        )
    return 0


def _bench_sampler(args: argparse.Namespace) -> int:
    from metarl.cli.bench import DEFAULT_ENVS, sampler_report

    def progress(what: str) -> None:
        print(f"measuring {what}", file=sys.stderr, flush=True)

    print(sampler_report(args.env or DEFAULT_ENVS, args.quick, args.json, log=progress))
    return 0


def _bench_learner(args: argparse.Namespace) -> int:
    from metarl.cli.bench_learner import learner_report, parse_learners

    def progress(what: str) -> None:
        print(f"measuring {what}", file=sys.stderr, flush=True)

    learners = parse_learners(args.learners)
    report = learner_report(
        learners,
        args.env,
        args.steps,
        args.quick,
        args.threads,
        args.json,
        log=progress,
        device=args.device,
    )
    print(report)
    return 0


def _train(args: argparse.Namespace) -> int:
    from metarl.envs import ENVS, resolve_env_id
    from metarl.fewshot.data import is_fewshot_task, resolve_task_id
    from metarl.training.trainer import new_run, train

    continued = args.resume or args.restart
    if args.resume and args.restart:
        raise ValueError("--resume DIR continues a run, --restart DIR starts it over: pick one")
    if args.resume and (args.set or args.config or args.seed is not None):
        raise ValueError(
            "--resume continues a run as recorded (only --iterations may change); to change "
            "config values, start it over with --restart DIR --set KEY=VALUE"
        )
    if continued and (args.agent or args.env or args.env_kwargs):
        raise ValueError("--resume/--restart take the agent and env the run folder records")
    if continued:
        values = {**_config_values(args), **_execution(args)} if args.restart else None
        execution = {} if args.restart else _execution(args)
        run_dir = train(
            Path(continued),
            args.iterations,
            restart=bool(args.restart),
            values=values,
            execution=execution,
        )
        print(f"run folder: {run_dir}")
        return 0
    if not args.agent or not args.env:
        raise ValueError("train needs an AGENT and --env ENV (or --resume DIR)")
    values = {**_config_values(args), **_execution(args)}
    env_kwargs = _env_kwargs(args.env_kwargs)
    if is_fewshot_task(args.env):
        short = resolve_task_id(args.env).removeprefix("fewshot/")
    else:
        short = next(e.short_name for e in ENVS if e.id == resolve_env_id(args.env))
    out = Path(args.out or f"runs/{args.agent}-{short}-{time.strftime('%Y%m%d-%H%M%S')}")
    every = args.checkpoint_every
    if every is None:
        every = FEWSHOT_CHECKPOINT_EVERY if is_fewshot_task(args.env) else 50
    new_run(args.agent, args.env, values, out, env_kwargs, every)
    print(f"run folder: {train(out)}")
    return 0


def _config_values(args: argparse.Namespace) -> dict:
    """The config values of `--config` (a file, or a shipped config's name), `--set`, `--seed`
    and `--iterations`, in that order of precedence."""
    from metarl.cli.shipped_configs import config_path
    from metarl.training.config import load_yaml, parse_sets

    values = {**(load_yaml(config_path(args.config)) if args.config else {})}
    values.update(parse_sets(args.set))
    for key in ("seed", "iterations"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return values


def _execution(args: argparse.Namespace) -> dict:
    """The values of `EXECUTION_KEYS` that `--sampler`, `--ray-address` and `--ray-workers`
    give (none given: empty)."""
    flags = {"sampler": args.sampler, "ray_address": args.ray_address}
    flags["ray_workers"] = args.ray_workers
    return {key: value for key, value in flags.items() if value is not None}


def _add_sampler_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """`--sampler`, `--ray-address` and `--ray-workers` (config keys of the same names)."""
    parser.add_argument(
        "--sampler",
        choices=("local", "ray"),
        help=f"where the envs step {what}: 'local', or 'ray' (the batch split over Ray actors, "
        'the same episodes; pip install -e ".[ray]")',
    )
    parser.add_argument(
        "--ray-address",
        help="with --sampler ray: the cluster's HOST:PORT or 'auto' (default: local)",
    )
    parser.add_argument(
        "--ray-workers", type=_positive_int, help="with --sampler ray: Ray actors (default 2)"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from metarl.cli.report import write_result
    from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET
    from metarl.training.config import parse_sets
    from metarl.training.evaluation import evaluate, evaluate_reference

    if (args.run_dir is None) == (args.agent is None):
        raise ValueError("evaluate takes a run folder, or --agent NAME --env ENV (not both)")
    if args.agent is None:
        if args.env or args.env_kwargs or args.set or args.out:
            raise ValueError("--env, --env-kwargs, --set and --out go with --agent")
    elif args.scratch_from:
        raise ValueError("--scratch-from goes with a few-shot run folder")
    elif _execution(args):
        raise ValueError("--sampler, --ray-address and --ray-workers go with a run folder")
    if args.agent is None:
        result = evaluate(
            Path(args.run_dir),
            args.tasks,
            args.adapt_steps,
            args.seed,
            args.episodes,
            execution=_execution(args),
            shots=args.shots,
            scratch_from=args.scratch_from and Path(args.scratch_from),
        )
        written = Path(args.run_dir) / "eval"
    else:
        if not args.env:
            raise ValueError("--agent needs --env ENV")
        seed = HELD_OUT_SEED_OFFSET if args.seed is None else args.seed
        result = evaluate_reference(
            args.agent,
            args.env,
            _env_kwargs(args.env_kwargs),
            args.tasks,
            args.episodes or 10,
            seed,
            parse_sets(args.set),
        )
        written = Path(args.out) if args.out else None
    if written is not None:
        write_result(written, result)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    where = f", iteration {result['iteration']}" if "iteration" in result else ""
    print(
        f"{result['agent']} on {result['env']}{where}: "
        f"{result['tasks']} held-out tasks (seed {result['task_seed']})"
    )
    if "mean_loss" in result:
        _print_fewshot(result)
        print(f"written to {written}")
        return 0
    axis = result["axis"]
    label = {"adapt_steps": "after {} adaptation step(s)", "episode": "episode {} of the trial"}
    for i, (x, mean, ci) in enumerate(
        zip(result[axis], result["mean_return"], result["ci95"], strict=True)
    ):
        success = ""
        if "success_rate" in result:
            rate, rate_ci = result["success_rate"][i], result["success_ci95"][i]
            success = f"   success {100 * rate:5.1f}% ± {100 * rate_ci:.1f}"
        print(f"  {label[axis].format(x)}: {mean:10.2f} ± {ci:.2f}{success}")
    if "mean_total_reward" in result:
        total, ci = result["mean_total_reward"], result["total_reward_ci95"]
        print(f"  total reward per trial: {total:.2f} ± {ci:.2f}")
    if written:
        print(f"written to {written}")
    return 0


def _print_fewshot(result: dict) -> None:
    """A few-shot evaluation: query loss (and accuracy) at each point, then the scratch
    baseline's on the same tasks."""
    accuracy = "mean_accuracy" in result

    def line(label: str, curve: dict, i: int) -> str:
        text = f"  {label:<28} loss {curve['mean_loss'][i]:8.4f} ± {curve['loss_ci95'][i]:.4f}"
        if accuracy:
            mean, ci = curve["mean_accuracy"][i], curve["accuracy_ci95"][i]
            text += f"   accuracy {100 * mean:5.1f}% ± {100 * ci:.1f}"
        return text

    if result["axis"] == "adapt_steps":
        for i, steps in enumerate(result["adapt_steps"]):
            print(line(f"after {steps} step(s)", result, i))
    else:
        print(line(f"{result['shots'][0]}-shot", result, 0))
    print(line("scratch (trained on support)", result["scratch"], 0))


def _env_kwargs(text: str | None) -> dict:
    """The JSON object of --env-kwargs."""
    try:
        env_kwargs = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"--env-kwargs is not valid JSON: {error}") from None
    if not isinstance(env_kwargs, dict):
        raise ValueError("--env-kwargs takes a JSON object, e.g. '{\"k\": 10}'")
    return env_kwargs


def _plot(args: argparse.Namespace) -> int:
    from metarl.cli.plot import plot, plot_adaptation

    sources = [Path(d) for d in args.run_dirs]
    if args.adaptation:
        out = Path(args.output or sources[0] / "adaptation_env_steps.png")
        print(f"written to {plot_adaptation(sources, out)}")
        return 0
    out = Path(args.output or sources[0] / "learning_curves.png")
    print(f"written to {plot(sources, out)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from metarl.cli.compare import write_comparison
    from metarl.training.compare import TaskList, compare

    task_list = TaskList.load(Path(args.tasks_file)) if args.tasks_file else None
    baselines = [b for b in (args.baselines or "").split(",") if b]
    if args.videos:  # before any work: the env must render
        from metarl.cli.render import check_renders
        from metarl.training.run_folder import Run

        check_renders(Run.load(Path(args.run_dirs[0])).env)
    result, task_list = compare(
        [Path(d) for d in args.run_dirs],
        task_list,
        baselines=baselines,
        num_tasks=args.tasks,
        seed=args.seed,
        budget=args.budget,
        report=lambda line: print(f"adapting: {line}", file=sys.stderr, flush=True),
        execution=_execution(args),
    )
    out = Path(args.out or "comparison")
    files = write_comparison(out, result, task_list.to_json())
    if args.videos:
        files += _comparison_videos(out / "videos", result, task_list.tasks[0])
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print((out / "comparison.md").read_text(), end="")
    print(f"written to {out}: {', '.join(f.name for f in files)}")
    return 0


def _comparison_videos(folder: Path, result: dict, task: dict) -> list[Path]:
    """One before/after video per run of a comparison, on its first task, adapted with the
    steps or episodes the comparison gave it (`videos/LABEL.mp4`)."""
    from metarl.agents.registry import adaptation_kind
    from metarl.cli.render import render_video

    written = []
    for curve in result["curves"]:
        source = Path(curve["source"])
        if not (source / "config.yaml").is_file():
            continue  # the scratch baseline has no run folder
        adapts = adaptation_kind(curve["agent"]) != "oracle"
        budget = len(curve["env_steps"]) - 1 if adapts else 0
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in curve["label"])
        print(f"rendering: {curve['label']}", file=sys.stderr, flush=True)
        video = render_video(source, task, budget, folder / f"{name}.mp4")["video"]
        written.append(Path(video))
    return written


def _reproduce(args: argparse.Namespace) -> int:
    from metarl.cli.reproduce import find_benchmarks, listing, reproduce, table

    benchmarks = find_benchmarks(Path(args.benchmarks) if args.benchmarks else None)
    if args.list:
        if args.name or args.quick or args.seeds or args.out:
            raise ValueError("--list takes no NAME or other option")
        print(listing(benchmarks))
        return 0
    if not args.name:
        raise ValueError("reproduce needs a NAME (metarl reproduce --list names them)")
    record = reproduce(
        benchmarks,
        args.name,
        seeds=args.seeds,
        quick=args.quick,
        out_dir=Path(args.out) if args.out else None,
    )
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        print(table(record), end="")
        if "out" in record:
            print(f"written to {record['out']} (the report reproduction.*, the runs seed-*/)")
    return 1 if record["passed"] is False else 0


def _sweep(args: argparse.Namespace) -> int:
    from metarl.sampling.ray_sampler import import_ray
    from metarl.training.sweep import (
        SweepSpec,
        combinations,
        launch,
        parse_grid,
        parse_seeds,
        prepare,
        write_summary,
    )

    import_ray()  # without the extra: one line, before any folder is made
    spec = SweepSpec.load(Path(args.config))
    points = combinations(parse_seeds(args.seeds), parse_grid(args.set))
    out = Path(args.out or f"sweeps/{Path(args.config).stem}")
    runs = prepare(spec, points, out)  # every folder recorded before anything trains
    print(f"{len(runs)} runs in {out}", file=sys.stderr, flush=True)

    def report(folder: Path, entry: dict) -> None:
        outcome = entry.get("error") or f"{entry['last_row']['iteration']} iterations"
        print(f"{entry['status']}: {folder.name} ({outcome})", file=sys.stderr, flush=True)

    entries = launch(runs, args.cpus_per_run, args.ray_address, report)
    summary = write_summary(out, spec, points, entries)
    failed = [entry for entry in entries if entry["status"] == "failed"]
    print(f"{len(entries) - len(failed)} finished, {len(failed)} failed; written to {summary}")
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    from metarl.cli.render import render_video

    if (args.adapt_steps is None) == (args.episodes is None):
        raise ValueError(
            "render takes --adapt-steps K (gradient agents) or --episodes K (RL², PEARL)"
        )
    budget = args.adapt_steps if args.adapt_steps is not None else args.episodes
    result = render_video(
        Path(args.run_dir),
        _task(args.task),
        budget,
        Path(args.output),
        seed=args.seed,
        size=(args.width, args.height),
    )
    for side in result["sides"]:
        print(f"{side['label']}: return {side['return']:.2f} ({side['frames']} frames)")
    print(f"written to {result['video']}")
    return 0


def _task(text: str) -> dict:
    """A task given as a JSON object on the command line."""
    try:
        task = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"--task must be a JSON object, e.g. '{{\"velocity\": 1.0}}' ({error})"
        ) from None
    if not isinstance(task, dict):
        raise ValueError(f"--task must be a JSON object of task fields, got {text}")
    return task


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line like every other error of the command line
    (sub-command parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        """`metarl: error: MESSAGE (see `PROG --help`)` on stderr, exit status 2."""
        self.exit(2, f"metarl: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    parser = _Parser(
        prog="metarl", description="Meta-reinforcement learning on Gymnasium and MuJoCo."
    )
    parser.add_argument("--version", action="version", version=f"metarl {metarl.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the environments and agents").set_defaults(run=_list)

    demo = commands.add_parser(
        "demo", help="random-policy returns per task for every env (checks the install)"
    )
    demo.add_argument(
        "--env", action="append", help="env id or short name (repeatable; default: all)"
    )
    demo.add_argument("--tasks", type=_positive_int, default=3, help="tasks per env (default 3)")
    demo.add_argument(
        "--episodes", type=_positive_int, default=10, help="episodes per task (default 10)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed for tasks and actions")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=_demo)

    bench = commands.add_parser("bench", help="throughput benchmarks")
    targets = bench.add_subparsers(dest="target", required=True, metavar="TARGET")
    sampler = targets.add_parser(
        "sampler",
        help="env steps/s of the sampler on the MAML workload, against raw MuJoCo and "
        "Gymnasium's vector envs",
    )
    sampler.add_argument(
        "--env",
        action="extend",
        nargs="+",
        help="MuJoCo env ids or short names (default: HalfCheetahVel and AntDir)",
    )
    sampler.add_argument(
        "--quick",
        action="store_true",
        help="10 tasks × 4 episodes × 100 steps instead of 40 × 20 × 200 (under a minute)",
    )
    sampler.add_argument("--json", action="store_true", help="print the records as JSON")
    sampler.set_defaults(run=_bench_sampler)
    learner = targets.add_parser(
        "learner",
        help="FLOPs, time, GFLOP/s and fraction of the float32 matmul peak of one gradient step "
        "of each agent's learner",
    )
    learner.add_argument(
        "--learners",
        metavar="NAMES",
        help="comma-separated: pearl, maml-trpo, rl2-trpo (default: all)",
    )
    learner.add_argument(
        "--env", default="halfcheetah-vel", help="env id or short name (default halfcheetah-vel)"
    )
    learner.add_argument(
        "--steps",
        type=_positive_int,
        default=3,
        help="timed steps per learner after one counted warm-up step; the median is reported "
        "(default 3)",
    )
    learner.add_argument(
        "--quick", action="store_true", help="tiny sizes that run in seconds (tests, CI)"
    )
    learner.add_argument(
        "--threads",
        type=_positive_int,
        default=2,
        help="torch threads of the steps and of the matmul peak (default 2)",
    )
    learner.add_argument(
        "--device",
        default="cpu",
        help="where the networks, buffers and steps run: cpu (default), cuda, cuda:N or auto",
    )
    learner.add_argument("--json", action="store_true", help="print the records as JSON")
    learner.set_defaults(run=_bench_learner)

    train = commands.add_parser(
        "train",
        help="train an agent into a run folder, or resume one",
        add_help=False,
        description="Train an agent into a run folder, resume one, or start one over. "
        "`metarl train AGENT --help` lists AGENT's config keys.",
    )
    train.add_argument("agent", nargs="?", help="agent name (see `metarl list`)")
    train.add_argument("--env", help="env id or short name")
    train.add_argument(
        "--config", help="YAML file of config values, or a shipped config's name (metarl list)"
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config value (repeatable; YAML syntax: hidden_sizes=[32,32])",
    )
    train.add_argument("--seed", type=int, help="short for --set seed=S")
    train.add_argument("--iterations", type=_positive_int, help="short for --set iterations=N")
    train.add_argument("--env-kwargs", help="JSON object of env constructor arguments")
    train.add_argument("--out", help="run folder (default: runs/AGENT-ENV-TIME)")
    train.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        help="iterations between kept checkpoints (latest.pt is every one); default 50, and "
        f"{FEWSHOT_CHECKPOINT_EVERY} for few-shot runs, whose iterations take milliseconds",
    )
    train.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR (with --iterations N: to N in all)"
    )
    train.add_argument(
        "--restart",
        metavar="DIR",
        help="start the run in DIR over from iteration 0, discarding its checkpoints and "
        "progress (--config/--set/--seed change its recorded config)",
    )
    train.add_argument(
        "-h", "--help", action=_AgentHelp, help="this help; `train AGENT --help`: AGENT's config"
    )
    _add_sampler_flags(train, "while training")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="adaptation on held-out tasks",
        description="Adaptation of a trained run (RUN_DIR) or of a reference agent that needs no "
        "training (--agent ucb1 --env bandit ...) on held-out tasks.",
    )
    evaluate.add_argument("run_dir", nargs="?", help="a run folder")
    evaluate.add_argument("--agent", help=f"a reference agent: {', '.join(REFERENCE_AGENTS)}")
    evaluate.add_argument("--env", help="env id or short name (with --agent)")
    evaluate.add_argument("--env-kwargs", help="JSON object of env arguments (with --agent)")
    evaluate.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="reference agent config"
    )
    evaluate.add_argument("--out", help="folder for adaptation.{json,csv,png} (with --agent)")
    evaluate.add_argument("--tasks", type=_positive_int, default=40, help="held-out tasks")
    evaluate.add_argument(
        "--adapt-steps", type=_nonnegative_int, default=3, help="adaptation steps K (default 3)"
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        help="task seed (default: the run's training seed + 10000; 10000 with --agent)",
    )
    evaluate.add_argument(
        "--episodes",
        type=_positive_int,
        help="episodes per task and adaptation step, or per trial for trial agents "
        "(default: training's; 10 with --agent)",
    )
    evaluate.add_argument(
        "--shots",
        type=_positive_int,
        help="few-shot runs: support examples per class or task (default: training's)",
    )
    evaluate.add_argument(
        "--scratch-from",
        metavar="RUN_DIR",
        help="few-shot runs: take the scratch baseline from RUN_DIR's evaluation, which must "
        "have been on the same tasks and network (it is checked), instead of training it again",
    )
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_sampler_flags(evaluate, "while evaluating")
    evaluate.set_defaults(run=_evaluate)

    comparison = commands.add_parser(
        "compare",
        help="adaptation speed of runs and baselines on the same held-out tasks",
        description="Every run (and baseline) adapts to the same held-out tasks within the same "
        "budget of env steps per task; writes tasks.json and a table (Markdown, CSV, JSON) and "
        "plot of return (and success) against env steps of adaptation experience.",
    )
    comparison.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, one env")
    comparison.add_argument(
        "--baselines",
        help="comma-separated: scratch (metarl TRPO from a fresh policy), sb3-ppo, sb3-sac",
    )
    comparison.add_argument("--tasks", type=_positive_int, default=40, help="held-out tasks")
    comparison.add_argument(
        "--tasks-file", help="a tasks.json of an earlier comparison (replaces --tasks/--seed)"
    )
    comparison.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="task seed (tasks from 10000 + S)"
    )
    comparison.add_argument(
        "--budget",
        type=_nonnegative_int,
        help="env steps of adaptation experience per task (default: 3 inner steps or episodes "
        "of the costliest run)",
    )
    comparison.add_argument("--out", help="output folder (default: ./comparison)")
    comparison.add_argument(
        "--videos", action="store_true", help="also a before/after video per run (videos/*.mp4)"
    )
    comparison.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_sampler_flags(comparison, "while the runs adapt")
    comparison.set_defaults(run=_compare)

    reproduce = commands.add_parser(
        "reproduce",
        help="run a named benchmark and check it against its committed reference band",
        description="Runs a reproduction of benchmarks/reproductions/ and compares every "
        "curve, point by point, with the band its reference seeds draw (the 95%% prediction "
        "interval of one more seed); prints a pass/fail table (exit 1 on fail). --quick "
        "retrains the first iterations of the reference seeds: rows identical to the "
        "recorded ones, or inside the band.",
    )
    reproduce.add_argument("name", nargs="?", metavar="NAME", help="the reproduction (--list)")
    reproduce.add_argument("--list", action="store_true", help="name the reproductions there are")
    reproduce.add_argument(
        "--quick", action="store_true", help="only the first iterations of the reference seeds"
    )
    reproduce.add_argument(
        "--seeds",
        type=_positive_int,
        help="runs: the first K reference seeds, then new ones (default: the reference seeds)",
    )
    reproduce.add_argument(
        "--out",
        help="folder of the runs and report (default: reproductions/NAME; --quick: temporary)",
    )
    reproduce.add_argument(
        "--benchmarks", help="the benchmarks/ folder (default: the repository's)"
    )
    reproduce.add_argument("--json", action="store_true", help="print the record as JSON")
    reproduce.set_defaults(run=_reproduce)

    sweep = commands.add_parser(
        "sweep",
        help="one run per seed and config value, as Ray tasks (local or a cluster)",
        description="Train one run folder per combination of --seeds and --set values, each a "
        "Ray task; the same command continues an interrupted sweep run by run (needs "
        'pip install -e ".[ray]").',
    )
    sweep.add_argument(
        "config",
        metavar="CONFIG",
        help="YAML of agent, env, env_kwargs, config (a run's config.yaml)",
    )
    sweep.add_argument(
        "--seeds", default="0", help="FIRST..LAST or a list: 0..4, 0,3,7 (default 0)"
    )
    sweep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values of a config key to sweep (repeatable: every combination runs)",
    )
    sweep.add_argument("--out", help="sweep folder (default: sweeps/CONFIG-NAME)")
    sweep.add_argument("--ray-address", help="the cluster's HOST:PORT or 'auto' (default: local)")
    sweep.add_argument(
        "--cpus-per-run",
        type=_positive_number,
        default=1.0,
        help="CPUs Ray reserves per run (default 1)",
    )
    sweep.set_defaults(run=_sweep)

    render = commands.add_parser(
        "render",
        help="video of a policy before and after adaptation to a task",
        description="One episode before adaptation and one after, side by side (offscreen "
        "MuJoCo: MUJOCO_GL=egl, the default here).",
    )
    render.add_argument("run_dir", metavar="RUN_DIR")
    render.add_argument(
        "--task", required=True, help="the task as JSON, e.g. '{\"velocity\": 1.5}'"
    )
    render.add_argument("--adapt-steps", type=_nonnegative_int, help="inner steps (MAML family)")
    render.add_argument(
        "--episodes", type=_nonnegative_int, help="episodes of context (RL², PEARL)"
    )
    render.add_argument("-o", "--output", required=True, help="FILE.mp4 or FILE.gif")
    render.add_argument("--seed", type=_nonnegative_int, default=0, help="the episodes' reset seed")
    render.add_argument("--width", type=_positive_int, default=320, help="pixels per side")
    render.add_argument("--height", type=_positive_int, default=240, help="pixels")
    render.set_defaults(run=_render)

    plot = commands.add_parser("plot", help="learning curves of run folders")
    plot.add_argument("run_dirs", nargs="+", metavar="DIR")
    plot.add_argument(
        "--adaptation",
        action="store_true",
        help="plot `metarl evaluate` results against env steps of adaptation experience",
    )
    plot.add_argument("-o", "--output", help="PNG file (default: a PNG in the first DIR)")
    plot.set_defaults(run=_plot)
    return parser


class _AgentHelp(argparse.Action):
    """`-h/--help` of `train`: the usual help, then the config keys of the AGENT given before
    it (`metarl train maml-trpo --help`) with their types, defaults and docstrings."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        """A flag with no value, as argparse's own help."""
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        """Print the help and exit with status 0 (an unknown AGENT: the error, status 2)."""
        from metarl.cli.agent_help import config_help

        parser.print_help()
        agent = getattr(namespace, "agent", None)
        if agent:
            try:
                text = config_help(agent, getattr(namespace, "env", None))
            except ValueError as error:
                parser.exit(2, f"metarl: error: {error}\n")
            print(f"\n{text}")
        parser.exit()


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    value = int(text)
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # this process is metarl's: large tensors without page faults
    try:
        return args.run(args)
    except ValueError as error:  # bad user input (unknown env, bad task): no traceback
        print(f"metarl: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an --out that cannot be written, a disk that is full
        where = f"{error.filename}: " if error.filename else ""
        print(f"metarl: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C; `train` has kept its checkpoint and said how to resume
        print("metarl: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, so that `metarl train ... && metarl evaluate ...` stops
