"""`RL2Trial`: an RL² trial as one plain Gymnasium episode, for any recurrent learner.

metarl's own RL² agent gets the same inputs from its sampler (`Episodes.previous_step_inputs`);
this wrapper is how other libraries' recurrent agents (`sb3_contrib.RecurrentPPO`) train on the
same meta-RL problem (Duan et al. 2016, §2.2).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from metarl.envs.base import TaskEnv
from metarl.envs.checks import check_positive_int, describe


class RL2Trial(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """`episodes_per_trial` episodes of one task, back to back, as one episode.

    Observation: [env observation, previous action (one-hot if discrete), previous reward,
    previous done], zeros but the observation at the trial's first step. Each trial (`reset`)
    draws a new task from the env's seeded task distribution, unless `options={"task": task}`
    gives one. Inner episodes restart with the same task; the trial terminates after the last.
    """

    def __init__(self, env: gym.Env, episodes_per_trial: int) -> None:
        """Wrap `env` (a metarl task env with a flat Box observation space and a Discrete or
        flat Box action space) into trials of `episodes_per_trial` episodes."""
        if not isinstance(env, gym.Env) or not isinstance(env.unwrapped, TaskEnv):
            raise ValueError(f"RL2Trial's env must be a metarl task env, got {describe(env)}")
        episodes_per_trial = check_positive_int("episodes_per_trial", episodes_per_trial)
        gym.utils.RecordConstructorArgs.__init__(self, episodes_per_trial=episodes_per_trial)
        super().__init__(env)
        obs_space, action_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"RL2Trial needs a flat Box observation space, got {obs_space}")
        if isinstance(action_space, gym.spaces.Discrete):
            self._num_actions = int(action_space.n)
            action_low, action_high = np.zeros(self._num_actions), np.ones(self._num_actions)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self._num_actions = 0
            action_low, action_high = action_space.low, action_space.high
        else:
            raise ValueError(f"RL2Trial needs a Discrete or flat Box action space: {action_space}")
        self.episodes_per_trial = episodes_per_trial
        self.observation_space = gym.spaces.Box(
            np.concatenate([obs_space.low, action_low, [-np.inf, 0.0]]).astype(np.float32),
            np.concatenate([obs_space.high, action_high, [np.inf, 1.0]]).astype(np.float32),
            dtype=np.float32,
        )
        self._zero_action = np.zeros_like(action_low, dtype=np.float32)
        self._episodes_done = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a trial on a new task (or `options["task"]`)."""
        options = dict(options or {})
        task = options.pop("task", None)
        if task is None:
            self.env.reset(seed=seed)  # seeds the task distribution's RNG when a seed is given
            task = self.env.unwrapped.sample_tasks(1)[0]
            seed = None
        obs, info = self.env.reset(seed=seed, options={**options, "task": task})
        self._episodes_done = 0
        return self._observation(obs, self._zero_action, 0.0, False), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner episode; when it ends, start the next episode of the trial."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        episode_done = bool(terminated or truncated)
        info = {**info, "episode_index": self._episodes_done, "episode_done": episode_done}
        self._episodes_done += episode_done
        trial_over = self._episodes_done >= self.episodes_per_trial
        if episode_done and not trial_over:
            obs, _ = self.env.reset()  # the task persists across resets
        observation = self._observation(obs, self._encode(action), reward, episode_done)
        return observation, reward, trial_over, False, info

    def _encode(self, action: Any) -> np.ndarray:
        """The action as the policy sees it next step: one-hot if discrete, as is otherwise."""
        if self._num_actions:
            one_hot = np.zeros(self._num_actions, dtype=np.float32)
            one_hot[int(action)] = 1.0
            return one_hot
        return np.asarray(action, dtype=np.float32)

    @staticmethod
    def _observation(obs: np.ndarray, action: np.ndarray, reward: float, done: bool) -> np.ndarray:
        return np.concatenate([obs, action, [reward, float(done)]]).astype(np.float32)
