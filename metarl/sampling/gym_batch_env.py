"""The sampler's generic path: B copies of any Gymnasium env, split over worker processes.

Each worker owns a contiguous slice of the envs and steps only those the sampler names, so the
physics of a batch runs on all cores. A worker's exception comes back as a `RuntimeError` with its
traceback; a worker that dies or stops answering is reported, never waited on forever. Workers
ignore SIGINT: a Ctrl-C in a terminal reaches the whole process group, and only the parent reports
it (it stops the workers), instead of every booting worker printing its own traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.envs.base import Task

EnvFn = Callable[[], gym.Env]
StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
"""(observations [n, ...], rewards, terminated, truncated, success) [n]: success is each env's
`info["success"]` (Meta-World's), None when the envs report none."""


class EnvGroup:
    """Some of the batch's envs, by global id, stepped one after the other in this process."""

    def __init__(self, env_fn: EnvFn, env_ids: Sequence[int]) -> None:
        """One env from `env_fn` for each global id in `env_ids`."""
        self.envs = {int(i): env_fn() for i in env_ids}

    def reset(
        self, env_ids: Sequence[int], tasks: Sequence[Task | None], seeds: Sequence[int | None]
    ) -> np.ndarray:
        """Set the named envs' tasks (None: keep the current one) and reset them with their
        seeds; returns their first observations [n, obs]."""
        observations = []
        for i, task, seed in zip(env_ids, tasks, seeds, strict=True):
            env = self.envs[int(i)]
            if task is not None:
                if not hasattr(env.unwrapped, "set_task"):
                    raise ValueError(f"{env.unwrapped} has no tasks, but a task was given: {task}")
                env.unwrapped.set_task(task)
            observations.append(env.reset(seed=None if seed is None else int(seed))[0])
        return np.stack(observations)

    def step(self, env_ids: Sequence[int], actions: np.ndarray) -> StepResult:
        """Step the named envs; returns (obs [n, ...], rewards, terminated, truncated, success)."""
        results = [self.envs[int(i)].step(a) for i, a in zip(env_ids, actions, strict=True)]
        obs, rewards, terminated, truncated, infos = zip(*results, strict=True)
        success = None
        if all("success" in info for info in infos):
            success = np.array([bool(info["success"]) for info in infos])
        return np.stack(obs), np.array(rewards), np.array(terminated), np.array(truncated), success

    def close(self) -> None:
        """Close every env of the group."""
        for env in self.envs.values():
            env.close()


def _worker(conn: Connection, env_fn: EnvFn, env_ids: Sequence[int]) -> None:
    """Serve ("reset" | "step" | "close", args) requests for an `EnvGroup` until closed."""
    # The parent started this process with SIGINT ignored and blocked (`_children_ignore_sigint`);
    # keep ignoring it, and unblock it so that processes this one starts get the usual mask.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # POSIX
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    group = None
    try:
        group = EnvGroup(env_fn, env_ids)
        conn.send(("ok", None))
        while True:
            command, args = conn.recv()
            if command == "close":
                break
            conn.send(("ok", getattr(group, command)(*args)))
    except (KeyboardInterrupt, EOFError):
        pass
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        if group is not None:
            group.close()
        conn.close()


class GymBatchEnv:
    """`num_envs` envs from `env_fn`, in `num_workers` processes (0: all in this process).

    `env_fn` must be picklable when `num_workers > 0` (e.g. `functools.partial(gym.make, id)`).
    """

    def __init__(
        self, env_fn: EnvFn, num_envs: int, num_workers: int = 2, timeout: float = 300.0
    ) -> None:
        """Read the spaces off one probe env, then build the envs here or start the workers,
        each with a contiguous slice of the ids, and wait until every worker has built its envs.
        `timeout`: seconds to wait for any answer of a worker before reporting it."""
        probe = env_fn()
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        self.num_envs, self.timeout = num_envs, timeout
        self._local: EnvGroup | None = None
        self._workers: list[tuple[mp.Process, Connection, np.ndarray]] = []
        if num_workers == 0:
            self._local = EnvGroup(env_fn, range(num_envs))
            return
        context = mp.get_context("spawn")  # no fork: the parent may run torch and MuJoCo threads
        try:
            with _children_ignore_sigint():
                for ids in np.array_split(np.arange(num_envs), min(num_workers, num_envs)):
                    parent, child = context.Pipe()
                    process = context.Process(
                        target=_worker, args=(child, env_fn, ids), daemon=True
                    )
                    process.start()
                    child.close()
                    self._workers.append((process, parent, ids))
            for worker in range(len(self._workers)):
                self._receive(worker)
        except BaseException:  # Ctrl-C or a worker that failed: stop the others now, not later
            self._stop(graceful=False)
            raise

    def reset(
        self, env_ids: np.ndarray, tasks: Sequence[Task | None], seeds: Sequence[int | None]
    ) -> np.ndarray:
        """Reset the named envs to their tasks; returns their first observations [n, obs]."""
        parts = self._call("reset", env_ids, _object_array(tasks), _object_array(seeds))
        return np.concatenate(parts)

    def step(self, env_ids: np.ndarray, actions: np.ndarray) -> StepResult:
        """Step the named envs; returns (obs [n, ...], rewards, terminated, truncated, success)
        (`StepResult`), the workers' parts joined in the order of `env_ids`."""
        parts = self._call("step", env_ids, actions)
        *arrays, successes = zip(*parts, strict=True)
        success = None if any(s is None for s in successes) else np.concatenate(successes)
        return (*(np.concatenate(field) for field in arrays), success)

    def close(self) -> None:
        """Stop the workers (terminating any that do not exit) and close every env."""
        if self._local is not None:
            self._local.close()
        self._stop(graceful=True)

    def _stop(self, graceful: bool) -> None:
        """Ask each worker to close and give it 5 s (graceful), or terminate it at once."""
        for process, conn, _ in self._workers:
            if graceful:
                try:
                    conn.send(("close", None))
                except (BrokenPipeError, OSError):
                    pass
                process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()
        self._workers = []

    def _call(self, command: str, env_ids: np.ndarray, *per_env: np.ndarray) -> list:
        """Run `command` on each worker with its share of `env_ids` and of each per-env array."""
        env_ids = np.asarray(env_ids)
        if self._local is not None:
            return [getattr(self._local, command)(env_ids, *per_env)]
        pending = []
        for worker, (_, conn, owned) in enumerate(self._workers):
            selected = np.isin(env_ids, owned)
            if selected.any():
                conn.send((command, [env_ids[selected], *(arg[selected] for arg in per_env)]))
                pending.append(worker)
        return [self._receive(worker) for worker in pending]

    def _receive(self, worker: int) -> Any:
        process, conn, _ = self._workers[worker]
        if not conn.poll(self.timeout):
            raise RuntimeError(f"sampler worker {worker} gave no answer in {self.timeout:.0f} s")
        try:
            status, payload = conn.recv()
        except EOFError:
            process.join(timeout=1)
            raise RuntimeError(
                f"sampler worker {worker} died (exit code {process.exitcode})"
            ) from None
        if status == "error":
            raise RuntimeError(f"sampler worker {worker} failed:\n{payload}")
        return payload


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside the block begin with SIGINT ignored (a disposition that survives
    `exec`, so the spawned interpreter keeps it), and blocked until `_worker` runs.

    The parent blocks SIGINT for the block's few milliseconds rather than losing it: a Ctrl-C
    that arrives meanwhile stays pending and raises `KeyboardInterrupt` here when the block ends.
    Signal handlers can only be set from the main thread, and signal masks exist on POSIX only;
    elsewhere the block changes nothing (the workers then ignore SIGINT from when `_worker`
    starts).
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _object_array(items: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of `items` (dicts, None), indexable by a boolean mask like the rest."""
    array = np.empty(len(items), dtype=object)
    array[:] = list(items)
    return array
