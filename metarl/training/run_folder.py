"""The run folder on disk (docs/architecture.md §7): its record `config.yaml`, the format
version and the migration of older folders, claiming a folder for a new run, and the lock that
keeps one trainer per folder.

Every file of a run is derived from `checkpoints/latest.pt`, the one source of truth: it holds
the agent's state and every progress row, so `progress.csv` and the TensorBoard events are
rewritten from it when a run resumes, whatever moment a crash hit.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import metarl
from metarl.agents.parts.config import EXECUTION_KEYS
from metarl.agents.parts.protocol import Agent
from metarl.agents.registry import REGISTRY, AgentSpec, agent_spec
from metarl.envs import resolve_env_id
from metarl.fewshot.data import TASK_DISTRIBUTIONS, is_fewshot_task, resolve_task_id
from metarl.fewshot.registry import FEWSHOT_REGISTRY, fewshot_spec
from metarl.training.checkpoint import make_folder, write_atomically
from metarl.training.config import build_config, config_dict

RUN_FORMAT = 2
"""The run-folder layout this metarl writes. 1: metarl 0.1.0 before issue 12 (no `format` key,
`config` may repeat `env_kwargs`, checkpoints without progress rows). 2: `config.yaml` has
`format`; every checkpoint carries the progress rows up to its iteration and names its run."""

_RECORD_TYPES = {
    "agent": str,
    "env": str,
    "env_kwargs": dict,
    "config": dict,
    "checkpoint_every": int,
    "version": str,
}


@dataclass
class Run:
    """What `config.yaml` records: enough to rebuild the agent."""

    agent: str
    """Registry name of the agent (`metarl list`)."""
    env: str
    """Full Gymnasium id of the env."""
    env_kwargs: dict[str, Any]
    """Arguments of `gymnasium.make`."""
    config: dict[str, Any]
    """Every field of the agent's config, resolved."""
    checkpoint_every: int = 50
    """Iterations between kept `iter_NNNNN.pt` checkpoints."""
    version: str = metarl.__version__
    """The metarl that wrote the folder."""
    format: int = field(default=RUN_FORMAT)
    """The run-folder layout the record was read in (`save` always writes `RUN_FORMAT`)."""

    @classmethod
    def create(
        cls,
        agent: str,
        env: str,
        values: dict[str, Any],
        env_kwargs: dict[str, Any] | None = None,
        checkpoint_every: int = 50,
    ) -> Run:
        """The record of a new run: the agent's config built from `values` on top of its
        registry overrides and defaults (a bad value is a one-line `ValueError`), the env's
        full id."""
        spec = learner_spec(agent, env)
        config = build_config(spec.config_class, {**spec.overrides, **values})
        return cls(
            agent,
            resolve_task_id(env) if is_fewshot_task(env) else resolve_env_id(env),
            dict(env_kwargs or {}),
            config_dict(config),
            checkpoint_every,
        )

    def build(self, **overrides: Any) -> Agent:
        """A fresh agent of this run (config values in `overrides` replace the recorded ones)."""
        spec = learner_spec(self.agent, self.env)
        config = build_config(spec.config_class, {**self.config, **overrides})
        return spec.agent_class(self.env, config, env_kwargs=self.env_kwargs)

    def with_values(self, values: dict[str, Any]) -> Run:
        """This run with the config `values` changed (checked as a new run's are)."""
        spec = learner_spec(self.agent, self.env)
        config = build_config(spec.config_class, {**self.config, **values})
        return Run(
            self.agent, self.env, self.env_kwargs, config_dict(config), self.checkpoint_every
        )

    def save(self, run_dir: Path) -> None:
        """Write this record to `run_dir/config.yaml`, atomically."""
        record = {"format": RUN_FORMAT, **{key: getattr(self, key) for key in _RECORD_TYPES}}
        text = yaml.safe_dump(record, sort_keys=False).encode()
        write_atomically(Path(run_dir) / "config.yaml", lambda file: file.write(text))

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        """The run recorded in `run_dir` (an older format migrated), or a one-line `ValueError`
        saying what is wrong with the folder or its `config.yaml`."""
        run_dir = Path(run_dir)
        path = run_dir / "config.yaml"
        if not path.is_file():
            if not run_dir.is_dir():
                raise ValueError(f"{run_dir} is not a folder")
            if path.with_name("config.yaml.tmp").exists():
                raise ValueError(
                    f"{run_dir}: its creation was interrupted before config.yaml was written; "
                    f"start it again with `metarl train AGENT --env ENV --out {run_dir}`"
                )
            raise ValueError(f"{run_dir} is not a metarl run folder (no config.yaml)")
        try:
            record = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ValueError(f"{path} is not valid YAML ({reason})") from None
        return cls.from_record(record, path)

    @classmethod
    def from_record(cls, record: Any, path: Path) -> Run:
        """The run in the mapping `record` read from `path`, migrated to `RUN_FORMAT`."""
        keys = ", ".join(_RECORD_TYPES)
        if not isinstance(record, dict):
            got = "an empty file" if record is None else f"a {type(record).__name__}"
            raise ValueError(f"{path} must hold a mapping with the keys {keys}; it holds {got}")
        record = dict(record)
        version = record.pop("format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{path}: 'format' must be a run-folder format >= 1, got {version!r}")
        if version > RUN_FORMAT:
            raise ValueError(
                f"{path} was written by metarl {record.get('version', '?')} (run-folder format "
                f"{version}); this metarl {metarl.__version__} reads formats up to {RUN_FORMAT}: "
                "upgrade metarl"
            )
        if version == 1:
            record = _migrate_v1(record, path)
        missing = [key for key in _RECORD_TYPES if key not in record]
        extra = [key for key in record if key not in _RECORD_TYPES]
        if missing or extra:
            what = [f"missing {missing}" if missing else "", f"unknown {extra}" if extra else ""]
            problem = " and ".join(filter(None, what))
            raise ValueError(f"{path}: keys {problem}; the keys are {keys}")
        for key, kind in _RECORD_TYPES.items():
            if not isinstance(record[key], kind) or isinstance(record[key], bool):
                raise ValueError(f"{path}: {key!r} must be a {kind.__name__}, got {record[key]!r}")
        if record["checkpoint_every"] < 1:
            raise ValueError(f"{path}: 'checkpoint_every' must be >= 1")
        return cls(**record, format=version)


def learner_spec(agent: str, env: str) -> AgentSpec:
    """The spec of the agent `agent` for `env`: a few-shot learner for a few-shot task
    distribution (`metarl.fewshot`), an RL agent for an env. A name of the other half is a
    one-line `ValueError` saying which envs it takes."""
    fewshot_envs = ", ".join(TASK_DISTRIBUTIONS)
    if is_fewshot_task(env):
        if agent in REGISTRY and agent not in FEWSHOT_REGISTRY:
            raise ValueError(
                f"{agent} is an RL agent, and {env} a few-shot task distribution; the few-shot "
                f"learners are: {', '.join(FEWSHOT_REGISTRY)}"
            )
        return fewshot_spec(agent)
    if agent in FEWSHOT_REGISTRY and agent not in REGISTRY:
        rl = " (the RL agent is maml-trpo)" if agent == "maml" else ""
        raise ValueError(
            f"{agent} is a few-shot learner: its envs are {fewshot_envs}, not {env}{rl}"
        )
    return agent_spec(agent)


def _migrate_v1(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """A format-1 record as format 2: early 0.1.0 folders repeated `env_kwargs` inside
    `config`, where it is no config key."""
    config = record.get("config")
    if isinstance(config, dict) and "env_kwargs" in config:
        config = dict(config)
        inner = config.pop("env_kwargs")
        outer = record.get("env_kwargs") or {}
        if inner and outer and inner != outer:
            raise ValueError(
                f"{path}: env_kwargs {outer} and config.env_kwargs {inner} disagree; "
                "keep the one the run used"
            )
        record = {**record, "config": config, "env_kwargs": outer or inner or {}}
    return record


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder (`DIR/.lock`, `fcntl.flock`) while a trainer
    writes into it; a one-line `ValueError` if another process holds it. The OS drops the lock
    when its process ends, SIGKILL included, so a lock never outlives its holder."""
    run_dir = Path(run_dir)
    try:
        file = open(run_dir / ".lock", "a")  # closed below, which unlocks
    except OSError as error:
        raise ValueError(f"cannot write into {run_dir}: {error.strerror}") from None
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"{run_dir} is being trained by another metarl process; wait for it to end or "
                "stop it (one trainer per run folder)"
            ) from None
        yield


def claim_folder(out_dir: Path) -> Path:
    """Create `out_dir` for a new run (or take it if empty): a one-line `ValueError` if it is a
    file, lies under a file, cannot be written, or holds anything but the leftovers of a run
    whose creation was interrupted (`*.tmp`, `.lock`), which are removed."""
    out_dir = make_folder(out_dir)
    leftovers = [p for p in out_dir.iterdir() if p.name == ".lock" or p.name.endswith(".tmp")]
    if len(leftovers) < len(list(out_dir.iterdir())):
        raise ValueError(
            f"{out_dir} is not empty: continue its run with `metarl train --resume {out_dir}`, "
            "or pick another --out"
        )
    for path in leftovers:
        if path.name != ".lock":
            path.unlink()
    return out_dir


def discard_history(run_dir: Path) -> str:
    """Remove a run's checkpoints, `progress.csv` and TensorBoard events (for `--restart`), and
    say what was removed. Checkpoints go first, so that an interrupted discard leaves rows
    without a checkpoint, which `--resume` refuses, rather than a checkpoint to resume from."""
    run_dir = Path(run_dir)
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt"))
    progress = run_dir / "progress.csv"
    lines = len(progress.read_bytes().splitlines()) if progress.is_file() else 0
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        latest.unlink()
    for path in (run_dir / "checkpoints", run_dir / "tensorboard"):
        shutil.rmtree(path, ignore_errors=True)
    if progress.exists():
        progress.unlink()
    rows = max(lines - 1, 0)
    return f"discarded {rows} progress row(s) and {len(checkpoints)} checkpoint(s) of {run_dir}"


def differences(expected: Run, recorded: Run) -> str:
    """What differs between two run records' settings (empty: nothing), one line: the agent,
    the env and every config value but the iteration count and `EXECUTION_KEYS`, which say
    how long and where a run trains, not what it computes."""
    pairs = {"agent": (expected.agent, recorded.agent), "env": (expected.env, recorded.env)}
    pairs["env_kwargs"] = (expected.env_kwargs, recorded.env_kwargs)
    for key in sorted(
        (set(expected.config) | set(recorded.config)) - {"iterations", *EXECUTION_KEYS}
    ):
        pairs[key] = (expected.config.get(key), recorded.config.get(key))
    return ", ".join(f"{k} {b!r} (wanted: {a!r})" for k, (a, b) in pairs.items() if a != b)
