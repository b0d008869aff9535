"""An env for the sampler's worker-failure test, importable without torch by spawned workers."""

import gymnasium as gym

import metarl  # noqa: F401  (registers the envs in the worker process)


class WrappedNavigation(gym.Env):
    """A Navigation2D behind a wrapper class, so that the sampler takes its generic path
    (picklable: defined at module level)."""

    def __init__(self):
        self.env = gym.make("metarl/Navigation2D-v0")
        self.observation_space, self.action_space = (
            self.env.observation_space,
            self.env.action_space,
        )

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)


class FailingEnv(WrappedNavigation):
    """A Navigation2D whose `step` raises on its third call."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def step(self, action):
        self.calls += 1
        if self.calls == 3:
            raise FloatingPointError("physics exploded")
        return super().step(action)


class SucceedingNavigation(WrappedNavigation):
    """A Navigation2D that reports `info["success"]` as Meta-World does: set on the steps whose
    reward (minus the distance to the goal) is above -0.3."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "success": float(reward > -0.3)}
