"""The sampler's fast path for metarl's MuJoCo task envs: B physics states stepped in C threads.

All B states live in one array (MuJoCo's full integration state, warm start included); each of
`num_threads` threads steps its share through its own `MjData` with `mj_step`, which releases the
GIL, so the physics runs on all cores. Observations, rewards and terminations are then computed
for the whole batch at once by the env's own vectorized code (`MujocoTaskEnv`). Given the same
reset seed and actions, every step equals the Gymnasium env's (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
from gymnasium.utils import seeding

from metarl.envs.base import Task
from metarl.envs.mujoco_task import MujocoTaskEnv

STATE = mujoco.mjtState.mjSTATE_INTEGRATION


class MujocoBatchEnv:
    """`num_envs` copies of `env` (a `MujocoTaskEnv`, owned as the template) as state arrays."""

    def __init__(self, env: MujocoTaskEnv, num_envs: int, num_threads: int = 2):
        if not isinstance(env, MujocoTaskEnv):
            raise TypeError(f"the fast path needs a MujocoTaskEnv, got {type(env).__name__}")
        self.env, self.model = env, env.model
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.num_envs = num_envs
        nq, nv = self.model.nq, self.model.nv
        # Offsets of qpos and qvel in the state vector, which starts with time (mjtState order).
        time = mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_TIME)
        self._qpos = slice(time, time + nq)
        self._qvel = slice(time + nq, time + nq + nv)
        self.state = np.zeros((num_envs, mujoco.mj_stateSize(self.model, STATE)))
        self.cfrc_ext = np.zeros((num_envs, self.model.nbody, 6))
        self.task_values = np.zeros((num_envs, len(env.task_vector(env.get_task()))))
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._datas = [mujoco.MjData(self.model) for _ in range(num_threads)]
        self._pool = ThreadPoolExecutor(num_threads, thread_name_prefix="metarl-physics")

    def reset(
        self, env_ids: np.ndarray, tasks: Sequence[Task | None], seeds: Sequence[int | None]
    ) -> np.ndarray:
        """Reset the named envs with v5's own `reset_model`; returns observations [n, obs]."""
        env = self.env  # the template env's MjData serves as scratch space for resets
        for i, task, seed in zip(env_ids, tasks, seeds, strict=True):
            if task is not None:
                self.task_values[i] = env.task_vector(env.task_distribution.validate(task))
            if seed is not None:
                self._rngs[i] = seeding.np_random(int(seed))[0]
            env.np_random = self._rngs[i]
            mujoco.mj_resetData(self.model, env.data)
            env.reset_model()
            mujoco.mj_getState(self.model, env.data, self.state[i], STATE)
            self.cfrc_ext[i] = env.data.cfrc_ext
        return self._observations(env_ids)

    def step(
        self, env_ids: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the named envs; returns (obs [n, obs], rewards, terminated, truncated) [n]."""
        qpos_before = self.state[env_ids, self._qpos]
        chunks = np.array_split(np.arange(len(env_ids)), len(self._datas))
        jobs = [
            self._pool.submit(self._step_chunk, env_ids[chunk], actions[chunk], data)
            for chunk, data in zip(chunks, self._datas, strict=True)
            if len(chunk)
        ]
        for job in jobs:
            job.result()
        qpos, qvel = self.state[env_ids, self._qpos], self.state[env_ids, self._qvel]
        terms = self.env.reward_terms(
            self.task_values[env_ids],
            qpos_before,
            qpos,
            actions.astype(np.float64),
            self.cfrc_ext[env_ids],
        )
        rewards = sum(terms.values())
        terminated = self.env.batch_terminated(qpos, qvel)
        return self._observations(env_ids), rewards, terminated, np.zeros_like(terminated)

    def close(self) -> None:
        """Stop the physics threads."""
        self._pool.shutdown(wait=True)

    def _step_chunk(self, env_ids: np.ndarray, actions: np.ndarray, data: mujoco.MjData) -> None:
        model, frame_skip = self.model, self.env.frame_skip
        contact = self.env.needs_contact_forces
        for i, action in zip(env_ids, actions, strict=True):
            mujoco.mj_setState(model, data, self.state[i], STATE)
            data.ctrl[:] = action
            mujoco.mj_step(model, data, nstep=frame_skip)
            if contact:
                mujoco.mj_rnePostConstraint(model, data)
                self.cfrc_ext[i] = data.cfrc_ext
            mujoco.mj_getState(model, data, self.state[i], STATE)

    def _observations(self, env_ids: np.ndarray) -> np.ndarray:
        state = self.state[env_ids]
        return self.env.batch_observations(
            state[:, self._qpos], state[:, self._qvel], self.cfrc_ext[env_ids]
        )
