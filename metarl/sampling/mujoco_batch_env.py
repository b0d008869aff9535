"""The sampler's fast path for metarl's MuJoCo task envs: B physics states stepped in C threads.

All B states live in one array and are stepped on all cores in one of two ways:
- envs whose reward and observation read `MjData` arrays besides the state (`data_fields`: Ant's
  contact forces; Humanoid's inertias, velocities and forces too) keep MuJoCo's full integration
  state, warm start included; each of `num_threads` Python threads steps its share through its
  own `MjData` with `mj_step` (which releases the GIL) and `mj_rnePostConstraint`, and copies
  those arrays out. Every step equals the Gymnasium env's bit for bit.
- the others (HalfCheetah) go through `mujoco.rollout`, one C call for the whole batch with no
  Python per env, which keeps both cores busy. Its state omits the solver's warm start, so a step
  can differ from the Gymnasium env's by the solver tolerance (~1e-12, tested).
An env whose task changes the physics (`task_changes_model`: the RandParams envs) steps with a
model of its own, built once per distinct task and shared by the envs that run it.
Observations, rewards and terminations are then computed for the whole batch at once by the env's
own vectorized code (`MujocoTaskEnv`). `step_async` starts a step and returns at once, so that
the sampler can compute the policy of one half of its batch while the other half steps.
"""

from __future__ import annotations

import copy
import functools
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
from gymnasium.utils import seeding
from mujoco import rollout

from metarl.envs.base import Task
from metarl.envs.mujoco_task import MujocoTaskEnv, Transitions

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(observations [n, obs], rewards [n], terminated [n], truncated [n])."""

INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION  # the threads path: exact, warm start too
FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS  # what mujoco.rollout takes and returns


class MujocoBatchEnv:
    """`num_envs` copies of `env` (a `MujocoTaskEnv`, owned as the template) as state arrays."""

    def __init__(self, env: MujocoTaskEnv, num_envs: int, num_threads: int = 2) -> None:
        """Allocate the states [num_envs, ·] for `env`'s model and `num_threads` physics
        threads: a thread pool for envs that read `data_fields`, a `mujoco.rollout` otherwise."""
        if not isinstance(env, MujocoTaskEnv):
            raise TypeError(f"the fast path needs a MujocoTaskEnv, got {type(env).__name__}")
        self.env, self.model = env, env.model
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.num_envs, self.num_threads = num_envs, num_threads
        nq, nv = self.model.nq, self.model.nv
        # Offsets of qpos and qvel in the state vector, which starts with time (mjtState order).
        time = mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_TIME)
        self._qpos = slice(time, time + nq)
        self._qvel = slice(time + nq, time + nq + nv)
        self._exact = bool(env.data_fields)
        self._spec = INTEGRATION if self._exact else FULLPHYSICS
        self.state = np.zeros((num_envs, mujoco.mj_stateSize(self.model, self._spec)))
        self.data = {  # each env's `data_fields` after its last reset or step
            name: np.zeros((num_envs, *getattr(env.data, name).shape)) for name in env.data_fields
        }
        # Until told otherwise every env runs the template's task (drawn if it had none).
        self.task_values = np.tile(env.task_vector(env.get_task()), (num_envs, 1))
        # The model each env steps with: the template's, or for a task that changes the physics
        # a copy with the task applied, one per distinct task (`_task_models`, by task values).
        self._env_models = [self.model] * num_envs
        self._task_models: dict[bytes, mujoco.MjModel] = {}
        if env.task_changes_model:
            self._env_models = [self._model_for(0, env.get_task())] * num_envs
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._datas = [mujoco.MjData(self.model) for _ in range(num_threads)]
        if self._exact:
            self._pool = ThreadPoolExecutor(num_threads, thread_name_prefix="metarl-physics")
            self._free_datas: queue.SimpleQueue[mujoco.MjData] = queue.SimpleQueue()
            for data in self._datas:
                self._free_datas.put(data)
        else:
            self._rollout = rollout.Rollout(nthread=num_threads)  # takes one model per env
            # One Python thread to make `rollout`'s (GIL-free) call from, for `step_async`.
            self._submitter = ThreadPoolExecutor(1, thread_name_prefix="metarl-rollout")

    @staticmethod
    def bytes_per_env(env: MujocoTaskEnv) -> int:
        """Bytes of the arrays one copy of `env` takes: its physics state, `data_fields` and
        task values (float64), as `__init__` allocates them (for the sampler's memory check),
        and its own model where a task changes the physics."""
        spec = INTEGRATION if env.data_fields else FULLPHYSICS
        task_size = len(env.task_vector(env.get_task()))
        fields = sum(getattr(env.data, name).size for name in env.data_fields)
        arrays = 8 * (mujoco.mj_stateSize(env.model, spec) + fields + task_size)
        return arrays + (env.model.nbuffer if env.task_changes_model else 0)  # its own model

    def reset(
        self, env_ids: np.ndarray, tasks: Sequence[Task | None], seeds: Sequence[int | None]
    ) -> np.ndarray:
        """Reset the named envs with v5's own `reset_model`; returns observations [n, obs]."""
        env = self.env  # the template env's MjData serves as scratch space for resets
        for i, task, seed in zip(env_ids, tasks, seeds, strict=True):
            if task is not None:
                task = env.task_distribution.validate(task)
                self.task_values[i] = env.task_vector(task)
                if env.task_changes_model:
                    self._env_models[i] = self._model_for(i, task)
            if seed is not None:
                self._rngs[i] = seeding.np_random(int(seed))[0]
            env.np_random = self._rngs[i]
            mujoco.mj_resetData(self.model, env.data)
            env.reset_model()
            mujoco.mj_getState(self.model, env.data, self.state[i], self._spec)
            for name, values in self.data.items():
                values[i] = getattr(env.data, name)
        if env.task_changes_model:  # forget the models of tasks no env runs any more
            live = {id(model) for model in self._env_models}
            self._task_models = {k: m for k, m in self._task_models.items() if id(m) in live}
        return self._observations(env_ids)

    def _model_for(self, env_id: int, task: Task) -> mujoco.MjModel:
        """The model of env `env_id`'s task (whose values are in `task_values`): a copy of the
        template's with the task applied, shared by every env that runs the same task."""
        key = self.task_values[env_id].tobytes()
        model = self._task_models.get(key)
        if model is None:
            model = copy.copy(self.model)  # MjModel's copy is a deep copy (mj_copyModel)
            self.env.apply_task(model, task)
            self._task_models[key] = model
        return model

    def step(self, env_ids: np.ndarray, actions: np.ndarray) -> StepResult:
        """Step the named envs; returns (obs [n, obs], rewards, terminated, truncated) [n]."""
        return self._start(env_ids, actions, background=False)()

    def step_async(self, env_ids: np.ndarray, actions: np.ndarray) -> Callable[[], StepResult]:
        """Start stepping the named envs in the physics threads and return at once; the call
        returned waits for them and gives what `step` gives.

        The sampler steps half its batch this way while it computes the policy for the other
        half (issue 13): `mujoco.rollout` and `mj_step` release the GIL. Steps in flight must
        name disjoint envs, and their calls are made in the order the steps started.
        """
        return self._start(env_ids, actions, background=True)

    def close(self) -> None:
        """Stop the physics threads."""
        if self._exact:
            self._pool.shutdown(wait=True)
        else:
            self._submitter.shutdown(wait=True)
            self._rollout.close()

    def _start(
        self, env_ids: np.ndarray, actions: np.ndarray, background: bool
    ) -> Callable[[], StepResult]:
        """Start the physics of a step (on this thread unless `background`, and then only the
        exact path's per-thread share runs here); the call that finishes it."""
        qpos_before = self.state[env_ids, self._qpos]
        data_before = {name: values[env_ids] for name, values in self.data.items()}
        actions = actions.astype(np.float64)
        if self._exact:
            wait = self._start_threads(env_ids, actions)
        else:
            wait = self._start_rollout(env_ids, actions, background)

        def finish() -> StepResult:
            wait()
            return self._outcome(env_ids, actions, qpos_before, data_before)

        return finish

    def _outcome(
        self,
        env_ids: np.ndarray,
        actions: np.ndarray,
        qpos_before: np.ndarray,
        data_before: dict[str, np.ndarray],
    ) -> StepResult:
        """Observations, rewards and end flags of the stepped envs, from their new states."""
        state = self.state[env_ids]
        qpos, qvel = state[:, self._qpos], state[:, self._qvel]
        data = {name: values[env_ids] for name, values in self.data.items()}
        batch = Transitions(
            self.task_values[env_ids], qpos_before, qpos, qvel, actions, data_before, data
        )
        terms = self.env.reward_terms(batch)
        rewards = sum(terms.values())
        terminated = self.env.batch_terminated(qpos, qvel)
        observations = self.env.batch_observations(qpos, qvel, data)
        return observations, rewards, terminated, np.zeros_like(terminated)

    def _start_threads(self, env_ids: np.ndarray, actions: np.ndarray) -> Callable[[], None]:
        chunks = np.array_split(np.arange(len(env_ids)), len(self._datas))
        jobs = [
            self._pool.submit(self._step_chunk, env_ids[chunk], actions[chunk])
            for chunk in chunks
            if len(chunk)
        ]

        def wait() -> None:
            for job in jobs:
                job.result()

        return wait

    def _step_chunk(self, env_ids: np.ndarray, actions: np.ndarray) -> None:
        """Step the envs one after another through a scratch `MjData` no other job holds (the
        jobs of two steps in flight may run at once, `num_threads` at most)."""
        frame_skip = self.env.frame_skip
        data = self._free_datas.get()
        try:
            for i, action in zip(env_ids.tolist(), actions, strict=True):
                model = self._env_models[i]
                mujoco.mj_setState(model, data, self.state[i], INTEGRATION)
                data.ctrl[:] = action
                mujoco.mj_step(model, data, nstep=frame_skip)
                mujoco.mj_rnePostConstraint(model, data)
                for name, values in self.data.items():
                    values[i] = getattr(data, name)
                mujoco.mj_getState(model, data, self.state[i], INTEGRATION)
        finally:
            self._free_datas.put(data)

    def _start_rollout(
        self, env_ids: np.ndarray, actions: np.ndarray, background: bool
    ) -> Callable[[], None]:
        frame_skip, count = self.env.frame_skip, len(env_ids)
        controls = np.repeat(actions[:, None], frame_skip, axis=1)
        states = np.empty((count, frame_skip, self.state.shape[1]))
        call = functools.partial(
            self._rollout.rollout,
            [self._env_models[i] for i in env_ids.tolist()],
            self._datas,
            self.state[env_ids],
            controls,
            nstep=frame_skip,
            state=states,
            sensordata=np.empty((count, frame_skip, self.model.nsensordata)),
            skip_checks=True,
        )
        job = self._submitter.submit(call) if background else None
        if job is None:
            call()

        def wait() -> None:
            if job is not None:
                job.result()
            self.state[env_ids] = states[:, -1]

        return wait

    def _observations(self, env_ids: np.ndarray) -> np.ndarray:
        state = self.state[env_ids]
        data = {name: values[env_ids] for name, values in self.data.items()}
        return self.env.batch_observations(state[:, self._qpos], state[:, self._qvel], data)
