"""The one training loop for every agent, and its run folder (docs/architecture.md §7).

A run folder holds `config.yaml` (agent, env, env kwargs, resolved config, metarl version),
`progress.csv` and TensorBoard events (one row per iteration), and `checkpoints/` (`latest.pt`
after every iteration, `iter_NNNNN.pt` every `checkpoint_every`), all written atomically. A
resumed run continues with exactly the rows the uninterrupted run would have written.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from tqdm import tqdm

import metarl
from metarl.agents.parts.protocol import Agent
from metarl.agents.registry import agent_spec
from metarl.envs import resolve_env_id
from metarl.training.checkpoint import load_checkpoint, save_checkpoint, write_atomically
from metarl.training.config import build_config, config_dict
from metarl.training.logger import Logger


@dataclass
class Run:
    """What `config.yaml` records: enough to rebuild the agent."""

    agent: str
    env: str
    env_kwargs: dict[str, Any]
    config: dict[str, Any]
    checkpoint_every: int = 50
    version: str = metarl.__version__

    def build(self, **overrides: Any) -> Agent:
        """A fresh agent of this run (config values in `overrides` replace the recorded ones)."""
        spec = agent_spec(self.agent)
        config = build_config(spec.config_class, {**self.config, **overrides})
        return spec.agent_class(self.env, config, env_kwargs=self.env_kwargs)

    def save(self, run_dir: Path) -> None:
        """Write this record to `run_dir/config.yaml`, atomically."""
        text = yaml.safe_dump(self.__dict__, sort_keys=False).encode()
        write_atomically(run_dir / "config.yaml", lambda file: file.write(text))

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        """The run recorded in `run_dir`, or a `ValueError` if there is none."""
        path = Path(run_dir) / "config.yaml"
        if not path.is_file():
            raise ValueError(f"{run_dir} is not a metarl run folder (no config.yaml)")
        return cls(**yaml.safe_load(path.read_text()))


def new_run(
    agent: str,
    env: str,
    values: dict[str, Any],
    out_dir: Path,
    env_kwargs: dict[str, Any] | None = None,
    checkpoint_every: int = 50,
) -> Run:
    """Check the agent, env and config values, and record the run in `out_dir` (new or empty)."""
    spec = agent_spec(agent)
    config = build_config(spec.config_class, {**spec.overrides, **values})
    run = Run(
        agent, resolve_env_id(env), dict(env_kwargs or {}), config_dict(config), checkpoint_every
    )
    _check_env_kwargs(run.env, run.env_kwargs)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty: continue it with `metarl train --resume`")
    out_dir.mkdir(parents=True, exist_ok=True)
    run.save(out_dir)
    return run


def train(run_dir: Path, iterations: int | None = None) -> Path:
    """Train the run in `run_dir` to its `iterations` (or to `iterations`, recorded as the new
    total), from its latest checkpoint if it has one. On Ctrl-C the checkpoint of the last
    finished iteration is kept and the `KeyboardInterrupt` propagates; train again to continue.
    An agent's `FloatingPointError` (a loss that is NaN or infinite) becomes a `ValueError`
    "iteration N: <what is not finite>", the checkpoint of iteration N − 1 kept."""
    run_dir = Path(run_dir)
    run = Run.load(run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    checkpoint = load_checkpoint(latest) if latest.exists() else None
    state = {"iteration": 0, "env_steps": 0.0, "wall_time": 0.0}
    if checkpoint is not None:
        state = {key: checkpoint[key] for key in state}
    if iterations is not None:
        if iterations < state["iteration"]:
            raise ValueError(f"{run_dir} has already run {state['iteration']} iterations")
        run.config["iterations"] = iterations
        run.save(run_dir)
    if checkpoint is None:
        seed_global_rngs(run.config["seed"])
    agent = run.build()
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        if "global_rng" in checkpoint:  # absent from checkpoints written before it was added
            set_global_rng_state(checkpoint["global_rng"])  # after build, which seeds torch
    logger = Logger(run_dir, keep_rows=state["iteration"])
    total = run.config["iterations"]
    bar = tqdm(total=total, initial=state["iteration"], desc=f"{run.agent} {run.env}")
    try:
        while state["iteration"] < total:
            start = time.perf_counter()
            try:
                metrics = agent.train_step()
            except FloatingPointError as error:  # a non-finite loss: one line from the CLI
                raise ValueError(f"iteration {state['iteration'] + 1}: {error}") from error
            elapsed = time.perf_counter() - start
            state["iteration"] += 1
            state["env_steps"] += metrics.pop("env_steps")
            state["wall_time"] += elapsed
            logger.log({**state, **metrics})
            payload = {**state, "agent": agent.state_dict(), "global_rng": global_rng_state()}
            save_checkpoint(latest, payload)
            if state["iteration"] % run.checkpoint_every == 0:
                save_checkpoint(
                    run_dir / "checkpoints" / f"iter_{state['iteration']:05d}.pt", payload
                )
            returns = {k: f"{v:.1f}" for k, v in metrics.items() if k.endswith("return")}
            rate = state["env_steps"] / max(state["wall_time"], 1e-9)
            bar.set_postfix(**returns, steps_per_s=f"{rate:,.0f}")
            bar.update()
    except KeyboardInterrupt:
        tqdm.write(f"interrupted: continue with `metarl train --resume {run_dir}`")
        raise
    finally:
        bar.close()
        logger.close()
        agent.close()
    return run_dir


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
    """Build the env once so that bad env kwargs fail before the run folder is written."""
    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad env kwargs for {env_id}: {error}") from None
