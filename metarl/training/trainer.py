"""The one training loop for every agent (docs/architecture.md §7).

Each iteration writes, in this order and each atomically: `checkpoints/latest.pt` (the agent's
state, the global RNGs and every progress row so far: the run's one source of truth), the kept
`iter_NNNNN.pt` when due, then `progress.csv` and the TensorBoard point, which derive from it.
Agents whose iterations take milliseconds (the few-shot learners) ask, by `save_seconds`, for
these writes once per that many seconds instead, and at every kept checkpoint and the end.
A resumed run rewrites the derived files from its checkpoint, so a SIGKILL at any moment leaves
a folder that continues to exactly the rows the uninterrupted run writes. A finished run also
writes `checkpoints/policy.pt`, what evaluation needs without training's bulky state.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from metarl.agents.parts.config import check_execution
from metarl.agents.parts.protocol import Agent
from metarl.backend.progress import SILENT
from metarl.fewshot.data import is_fewshot_task, make_tasks
from metarl.sampling.sampler import torch_threads
from metarl.training.checkpoint import (
    load_checkpoint,
    restore_agent,
    save_checkpoint,
    write_atomically,
)
from metarl.training.logger import Logger, Row, read_progress
from metarl.training.phase_bar import PhaseBar
from metarl.training.run_folder import (
    Run,
    claim_folder,
    differences,
    discard_history,
    run_lock,
)


def new_run(
    agent: str,
    env: str,
    values: dict[str, Any],
    out_dir: Path,
    env_kwargs: dict[str, Any] | None = None,
    checkpoint_every: int = 50,
) -> Run:
    """Check the agent, env and config values, and record the run in `out_dir` (new, empty, or
    left by a creation that was interrupted)."""
    run = Run.create(agent, env, values, env_kwargs, checkpoint_every)
    _check_env_kwargs(run.env, run.env_kwargs)
    if is_fewshot_task(run.env):  # a learner that cannot take the tasks (protonet on a
        run.build().close()  # regression) fails here, in one line, before the folder exists
    out_dir = claim_folder(Path(out_dir))
    with run_lock(out_dir):
        claim_folder(out_dir)  # again under the lock: another process may have started it
        run.save(out_dir)
    return run


def ensure_run(record: Run, run_dir: Path) -> None:
    """Record the run `record` in `run_dir` (as `new_run`), or check that the folder records
    a run of the same setting already, at any iteration count (anything else is a one-line
    `ValueError`): how a reproduction or a sweep continues as it began."""
    run_dir = Path(run_dir)
    if (run_dir / "config.yaml").is_file():
        different = differences(record, Run.load(run_dir).with_values({}))
        if different:
            raise ValueError(f"{run_dir} holds a run of another setting: {different}")
        return
    new_run(
        record.agent,
        record.env,
        record.config,
        run_dir,
        record.env_kwargs,
        record.checkpoint_every,
    )


def train(
    run_dir: Path,
    iterations: int | None = None,
    *,
    restart: bool = False,
    values: dict[str, Any] | None = None,
    execution: dict[str, Any] | None = None,
) -> Path:
    """Train the run in `run_dir` to its `iterations` (or to `iterations`, recorded as the new
    total), from its latest checkpoint if it has one, holding the folder's lock throughout.

    `restart` discards the run's checkpoints and rows and trains from iteration 0, with the
    config `values` changed (a run whose value made it crash can only be started over). On
    Ctrl-C the checkpoint of the last finished iteration is kept and the `KeyboardInterrupt`
    propagates; train again to continue. An agent's `FloatingPointError` (a loss that is NaN or
    infinite) becomes a `ValueError` "iteration N: <what is not finite>", the checkpoint of
    iteration N − 1 kept. `execution` replaces recorded values of `EXECUTION_KEYS` (where the
    envs step) for this session only: they change nothing the run computes.
    """
    run_dir = Path(run_dir)
    run = Run.load(run_dir)
    execution = check_execution(execution or {})
    with run_lock(run_dir):
        if values and not restart:
            raise ValueError("config values change only with --restart (the run starts over)")
        if restart:
            run = run.with_values(values or {})
            tqdm.write(f"{discard_history(run_dir)}; training from iteration 0")
        checkpoint, rows = _resume_point(run_dir, run)
        if iterations is not None:
            done = checkpoint["iteration"] if checkpoint else 0
            if iterations < done:
                raise ValueError(f"{run_dir} has already run {done} iterations")
            run.config["iterations"] = iterations
        if restart or iterations is not None:
            run.save(run_dir)
        return _train_locked(run_dir, run, checkpoint, rows, execution)


def _train_locked(
    run_dir: Path,
    run: Run,
    checkpoint: dict[str, Any] | None,
    rows: list[Row],
    execution: dict[str, Any],
) -> Path:
    """The loop of `train`, from `checkpoint` (None: iteration 0) with its progress `rows`
    (the logger holds them from here on)."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if checkpoint is None:
        seed_global_rngs(run.config["seed"])  # before build, which may draw from them
    agent = run.build(**execution)
    # What the run counts its experience in: env steps, or a few-shot learner's examples.
    unit = getattr(agent, "experience", "env_steps")
    state = {"iteration": 0, unit: 0, "wall_time": 0.0}
    if checkpoint is not None:
        state = {key: checkpoint[key] for key in state}
        state[unit] = int(state[unit])
    identity = {"agent": run.agent, "env": run.env}
    logger = None
    try:
        if checkpoint is not None:
            restore_agent(agent, checkpoint, latest, f"{run.agent} on {run.env}")
            if "global_rng" in checkpoint:  # absent from checkpoints written before it was added
                set_global_rng_state(checkpoint["global_rng"])  # after build, which seeds torch
            _keep_periodic_checkpoint(run_dir, run, state["iteration"])
        logger = Logger(run_dir, rows)
        total = run.config["iterations"]
        bar = tqdm(total=total, initial=state["iteration"], desc=f"{run.agent} {run.env}")
        phases = PhaseBar()
        agent.progress = phases  # the phases inside an iteration, on a nested bar
        # RL iterations take seconds and are each saved; a few-shot learner's take milliseconds,
        # and saving each would dominate: it asks for one save per `save_seconds` of training
        # (a crash loses at most that; resuming re-runs those iterations to the same rows).
        save_seconds = getattr(agent, "save_seconds", 0.0)
        threads = getattr(agent.config, "threads", None)  # a few-shot learner's; RL: unchanged
        saved = time.perf_counter()
        try:
            while state["iteration"] < total:
                start = time.perf_counter()
                try:
                    with torch_threads(threads):
                        metrics = agent.train_step()
                except FloatingPointError as error:  # a non-finite loss: one line from the CLI
                    done = state["iteration"]
                    kept = f"iteration {done}'s checkpoint is kept" if done else "no checkpoint"
                    raise ValueError(
                        f"iteration {done + 1}: {error} ({kept}; to change a value, start "
                        f"over with `metarl train --restart {run_dir} --set KEY=VALUE`)"
                    ) from error
                elapsed = time.perf_counter() - start
                state["iteration"] += 1
                state[unit] += round(float(metrics.pop(unit)))
                state["wall_time"] += elapsed
                row = {**state, **{key: float(value) for key, value in metrics.items()}}
                logger.log(row, write=False)  # written below, once the checkpoint holds it
                periodic = state["iteration"] % run.checkpoint_every == 0
                now = time.perf_counter()
                if periodic or state["iteration"] == total or now - saved >= save_seconds:
                    payload = {
                        **state,
                        "run": identity,
                        "progress": list(logger.rows),
                        "agent": agent.state_dict(),
                        "global_rng": global_rng_state(),
                    }
                    save_checkpoint(latest, payload)  # the truth: the files below derive from it
                    if periodic:
                        save_checkpoint(_periodic(run_dir, state["iteration"]), payload)
                    logger.write()
                    saved = now
                returns = {k: f"{v:.1f}" for k, v in metrics.items() if k.endswith("return")}
                returns |= {k: f"{v:.3g}" for k, v in metrics.items() if k.startswith("post_")}
                rate = state[unit] / max(state["wall_time"], 1e-9)
                bar.set_postfix(**returns, **{f"{unit}_per_s": f"{rate:,.0f}"})
                bar.update()
        except KeyboardInterrupt:
            tqdm.write(f"interrupted: continue with `metarl train --resume {run_dir}`")
            raise
        finally:
            agent.progress = SILENT
            phases.close()
            bar.close()
        _export_policy(run_dir, agent, state, identity)
    finally:
        if logger is not None:
            logger.close()
        agent.close()
    return run_dir


def _resume_point(run_dir: Path, run: Run) -> tuple[dict[str, Any] | None, list[Row]]:
    """The latest checkpoint (None for a run that has not finished an iteration) and its
    progress rows. Rows without a checkpoint are never dropped silently: a one-line
    `ValueError` says what is there and that `--restart` discards it."""
    latest = run_dir / "checkpoints" / "latest.pt"
    progress = run_dir / "progress.csv"
    if not latest.exists():
        periodic = sorted((run_dir / "checkpoints").glob("iter_*.pt"))
        has_rows = progress.is_file() and progress.stat().st_size > 0
        if not has_rows and not periodic:
            return None, []
        found = f"its newest, {periodic[-1].name}, " if periodic else "none"
        raise ValueError(
            f"{run_dir} has progress rows or checkpoints but no checkpoints/latest.pt to "
            f"continue from (kept checkpoints: {found}); copy a kept checkpoint to latest.pt "
            f"to continue from it, or discard the history with `metarl train --restart {run_dir}`"
        )
    checkpoint = load_checkpoint(latest)
    if "progress" in checkpoint:
        rows = [dict(row) for row in checkpoint["progress"]]
    else:  # a format-1 checkpoint: its rows are those of progress.csv it covers
        rows = _covered_rows(read_progress(progress), checkpoint["iteration"], progress)
    if [row["iteration"] for row in rows] != list(range(1, checkpoint["iteration"] + 1)):
        raise ValueError(f"checkpoint {latest} does not carry rows 1..{checkpoint['iteration']}")
    return checkpoint, rows


def _covered_rows(recorded: list[Row], iteration: int, path: Path) -> list[Row]:
    """The rows of iterations 1..`iteration` in `recorded`, by iteration number (the last
    of repeated ones: an older metarl could repeat rows after a crash)."""
    by_iteration = {row["iteration"]: row for row in recorded if row["iteration"] <= iteration}
    lost = [i for i in range(1, iteration + 1) if i not in by_iteration]
    if lost:
        raise ValueError(
            f"{path} lacks the rows of iterations {lost[:5]}{'…' if len(lost) > 5 else ''} "
            f"that the checkpoint covers; start over with `metarl train --restart {path.parent}`"
        )
    return [by_iteration[i] for i in range(1, iteration + 1)]


def _periodic(run_dir: Path, iteration: int) -> Path:
    """The kept checkpoint of `iteration`."""
    return run_dir / "checkpoints" / f"iter_{iteration:05d}.pt"


def _keep_periodic_checkpoint(run_dir: Path, run: Run, iteration: int) -> None:
    """Write the kept checkpoint of `iteration` from latest.pt if it is due and a crash came
    between the two."""
    path = _periodic(run_dir, iteration)
    if iteration and iteration % run.checkpoint_every == 0 and not path.exists():
        data = (run_dir / "checkpoints" / "latest.pt").read_bytes()
        write_atomically(path, lambda file: file.write(data))


def _export_policy(
    run_dir: Path, agent: Agent, state: dict[str, Any], identity: dict[str, str]
) -> None:
    """`checkpoints/policy.pt`: what `metarl evaluate` needs of the finished run, without the
    bulky state only training needs (an agent's `export_state_dict`, e.g. PEARL's without its
    replay buffers; the full state for agents that have no such method)."""
    export = getattr(agent, "export_state_dict", agent.state_dict)
    payload = {**state, "run": identity, "agent": export()}
    save_checkpoint(run_dir / "checkpoints" / "policy.pt", payload)


def seed_global_rngs(seed: int) -> None:
    """Seed the global RNGs of torch, NumPy and Python, so that a run is reproducible even where
    an agent or a library draws from them (metarl's agents use their own seeded generators)."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    random.seed(seed)


def global_rng_state() -> dict[str, Any]:
    """The state of the global RNGs, which a checkpoint keeps beside the agent's own."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the global one)
    return {
        "torch": torch.get_rng_state(),
        "numpy": (kind, key.tolist(), pos, has_gauss, gauss),  # weights_only loads no ndarrays
        "python": random.getstate(),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what `global_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    key = np.array(key, dtype=np.uint32)
    np.random.set_state((kind, key, pos, has_gauss, gauss))  # noqa: NPY002
    random.setstate(state["python"])


def _check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env (or the few-shot task distribution) once so that bad env kwargs fail
    before the run folder is written."""
    if is_fewshot_task(env_id):
        make_tasks(env_id, env_kwargs)  # its errors are one-line ValueErrors already
        return
    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad env kwargs for {env_id}: {error}") from None
