"""Every bad input to a metarl env is a one-line `ValueError` naming what is wrong (issue 12).

Tables of bad constructor arguments (through `gymnasium.make` and the class itself), bad actions
of the discrete envs and bad tasks (through `set_task`, `reset(options=...)` and the `task`
setter), then a property-based fuzz: for arbitrary JSON-like input a task validator or a
constructor either raises `ValueError` or accepts, and what it accepts resets and steps.
"""

import math
from functools import cache

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from metarl.envs import ENVS
from metarl.envs.trial import RL2Trial

# Meta-World's with its extra, but not ML45: Meta-World builds its goals in ~90 s per process
# and seed (test_metaworld.py checks its splits once).
ENV_IDS = [e.id for e in ENVS if e.installed and e.id != "metarl/ML45-v0"]
MUJOCO_IDS = [i for i in ENV_IDS if any(r in i for r in ("Cheetah", "Ant", "Humanoid", "Params"))]
RAND_PARAMS_IDS = [i for i in MUJOCO_IDS if "RandParams" in i]
ANT_IDS = [i for i in MUJOCO_IDS if "Ant" in i]
DISCRETE_IDS = ["metarl/Bandit-v0", "metarl/TabularMDP-v0"]
NAN, INF = math.nan, math.inf


def env_class(env_id):
    return load_env_creator(gym.spec(env_id).entry_point)


def short(env_id):
    return env_id.removeprefix("metarl/").removesuffix("-v0")


def assert_one_line(error, substring):
    message = str(error.value)
    assert substring in message, message
    assert "\n" not in message, message


# --- Constructor arguments -------------------------------------------------------------------

# Every keyword argument of every env, each with a valid value other than its default: the
# union of each env's configs is exactly what its error for an unknown keyword lists.
V5_VALID = [
    {
        "frame_skip": np.int64(4),
        "default_camera_config": {"distance": 5.0, "lookat": np.zeros(3)},
        "forward_reward_weight": 2.0,
        "ctrl_cost_weight": np.float32(0.2),
        "reset_noise_scale": 0,
        "exclude_current_positions_from_observation": False,
        "render_mode": "rgb_array",
        "width": 64,
        "height": 48,
        "camera_id": -1,
        "max_geom": 500,
        "visual_options": {0: True},
    },
    {"camera_name": "track", "render_mode": None, "default_camera_config": None},
]
ANT_VALID = [
    {
        "xml_file": "ant.xml",
        "contact_cost_weight": 0.0,
        "healthy_reward": 0.5,
        "main_body": "torso",
        "terminate_when_unhealthy": np.True_,
        "healthy_z_range": np.array([0.1, 2.0]),
        "contact_force_range": [-2, 2],
        "include_cfrc_ext_in_observation": False,
    },
    {"main_body": 1},
]
HEALTH_VALID = [  # the health settings of Humanoid, Walker2d and Hopper
    {
        "healthy_reward": 0.5,
        "terminate_when_unhealthy": False,
        "healthy_z_range": (0.5, math.inf),
    },
]
RAND_PARAMS_VALID = [
    {
        "log_scale_limit": 0.0,
        "rand_params": ["dof_damping"],
        "healthy_angle_range": [-0.5, 0.5],
        "xml_file": "walker2d_v5.xml",
    },
    {"log_scale_limit": np.float32(1.5), "rand_params": ("geom_friction", "body_mass")},
]
VALID_KWARGS = {
    "metarl/Navigation2D-v0": [{"goal_range": [-1, 1], "max_action": 0.2}],
    "metarl/Bandit-v0": [{"k": np.int32(3), "prob_range": (0.2, 0.8)}],
    "metarl/TabularMDP-v0": [
        {
            "num_states": 4,
            "num_actions": 2,
            "reward_mean": -1,
            "reward_mean_std": 0.0,
            "reward_noise_std": 0.0,
            "dirichlet_alpha": 0.5,
            "start_state": 3,
        }
    ],
    "metarl/HalfCheetahVel-v0": [
        {"velocity_range": (1.5, 1.5), "xml_file": "half_cheetah.xml"},
        *V5_VALID,
    ],
    "metarl/HalfCheetahDir-v0": [{"directions": [1], "xml_file": "half_cheetah.xml"}, *V5_VALID],
    "metarl/AntDir-v0": [{"directions": (-1.0, 0.0, 1.0)}, *V5_VALID, *ANT_VALID],
    "metarl/AntDir2D-v0": [{"angle_range": [0.0, math.pi]}, *V5_VALID, *ANT_VALID],
    "metarl/AntGoal-v0": [
        {"goal_radius": 0.0, "terminate_when_unhealthy": True},
        *V5_VALID,
        *ANT_VALID,
    ],
    "metarl/AntVel-v0": [{"velocity_range": (0.5, 1.0)}, *V5_VALID, *ANT_VALID],
    "metarl/HumanoidDir-v0": [
        {
            "angle_range": [0.0, 1.0],
            "xml_file": "humanoid.xml",
            "contact_cost_weight": 0.0,
            "contact_cost_range": (-INF, 5.0),
            "include_cinert_in_observation": False,
            "include_cvel_in_observation": False,
            "include_qfrc_actuator_in_observation": False,
            "include_cfrc_ext_in_observation": False,
        },
        *V5_VALID,
        *HEALTH_VALID,
    ],
    "metarl/ML1-v0": [{"env_name": "push-v3", "benchmark_seed": 1, "render_mode": "rgb_array"}],
    "metarl/ML10-v0": [{"benchmark_seed": 0, "render_mode": None}],
    "metarl/ML45-v0": [{"benchmark_seed": np.int64(0), "render_mode": None}],
    "metarl/Walker2dRandParams-v0": [*RAND_PARAMS_VALID, *V5_VALID, *HEALTH_VALID],
    "metarl/HopperRandParams-v0": [
        {"healthy_state_range": (-50.0, 50.0)},
        *RAND_PARAMS_VALID,
        *V5_VALID,
        *HEALTH_VALID,
    ],
}

COMMON_BAD = [
    ({"colour": "red"}, "colour"),
    ({"seed": 0}, "seed"),
]
V5_BAD = [
    ({"ctrl_cost_weight": -0.1}, "ctrl_cost_weight"),
    ({"ctrl_cost_weight": "0.1"}, "ctrl_cost_weight"),
    ({"ctrl_cost_weight": NAN}, "ctrl_cost_weight"),
    ({"frame_skip": 0}, "frame_skip"),
    ({"frame_skip": "5"}, "frame_skip"),
    ({"frame_skip": 2.5}, "frame_skip"),
    ({"frame_skip": True}, "frame_skip"),
    ({"frame_skip": 2**31}, "frame_skip"),
    ({"xml_file": "no_such_model.xml"}, "xml_file"),
    ({"xml_file": 3}, "xml_file"),
    ({"xml_file": "."}, "xml_file"),
    ({"forward_reward_weight": INF}, "forward_reward_weight"),
    ({"forward_reward_weight": [1.0]}, "forward_reward_weight"),
    ({"reset_noise_scale": -1}, "reset_noise_scale"),
    ({"reset_noise_scale": NAN}, "reset_noise_scale"),
    ({"exclude_current_positions_from_observation": 1}, "exclude_current_positions"),
    ({"exclude_current_positions_from_observation": "no"}, "exclude_current_positions"),
    ({"render_mode": "rgb"}, "render_mode"),
    ({"width": 0}, "width"),
    ({"width": "64"}, "width"),
    ({"width": 2**40}, "width"),  # past MuJoCo's C int
    ({"height": -1}, "height"),
    ({"max_geom": 0}, "max_geom"),
    ({"camera_id": -2}, "camera_id"),
    ({"camera_id": 99}, "camera_id"),
    ({"camera_id": 0.5}, "camera_id"),
    ({"camera_name": "no_such_camera"}, "camera_name"),
    ({"camera_name": 3}, "camera_name"),
    ({"camera_id": 0, "camera_name": "track"}, "camera_id"),
    ({"default_camera_config": "far"}, "default_camera_config"),
    ({"default_camera_config": {"distance": "far"}}, "default_camera_config['distance']"),
    ({"default_camera_config": {"distance": NAN}}, "default_camera_config['distance']"),
    ({"default_camera_config": {"zoom": 1.0}}, "default_camera_config['zoom']"),
    ({"default_camera_config": {"lookat": [0.0, 1.0]}}, "default_camera_config['lookat']"),
    ({"visual_options": [1]}, "visual_options"),
    ({"visual_options": {99: True}}, "visual_options"),
    ({"visual_options": {1: "on"}}, "visual_options[1]"),
    ({"ctrl_cost": 0.1}, "ctrl_cost_weight"),  # the hint names the closest accepted name
]
ANT_BAD = [
    ({"contact_cost_weight": -1.0}, "contact_cost_weight"),
    ({"healthy_reward": "1"}, "healthy_reward"),
    ({"healthy_reward": -1.0}, "healthy_reward"),
    ({"healthy_z_range": (1.0, 0.2)}, "healthy_z_range"),
    ({"healthy_z_range": [0.2]}, "healthy_z_range"),
    ({"healthy_z_range": "0.2"}, "healthy_z_range"),
    ({"contact_force_range": (NAN, 1.0)}, "contact_force_range"),
    ({"contact_force_range": (1.0, -1.0)}, "contact_force_range"),
    ({"main_body": "no_such_body"}, "main_body"),
    ({"main_body": 99}, "main_body"),
    ({"main_body": -1}, "main_body"),
    ({"main_body": 1.0}, "main_body"),
    ({"terminate_when_unhealthy": "no"}, "terminate_when_unhealthy"),
    ({"include_cfrc_ext_in_observation": None}, "include_cfrc_ext_in_observation"),
]
HEALTH_BAD = [
    ({"healthy_reward": -1.0}, "healthy_reward"),
    ({"terminate_when_unhealthy": 1}, "terminate_when_unhealthy"),
    ({"healthy_z_range": (2.0, 1.0)}, "healthy_z_range"),
    ({"healthy_z_range": (NAN, 1.0)}, "healthy_z_range"),
    ({"healthy_z_range": 1.0}, "healthy_z_range"),
]
RAND_PARAMS_BAD = [
    ({"log_scale_limit": -1.0}, "log_scale_limit"),
    ({"log_scale_limit": NAN}, "log_scale_limit"),
    ({"log_scale_limit": "3"}, "log_scale_limit"),
    ({"rand_params": []}, "rand_params"),
    ({"rand_params": ["body_mass", "body_mass"]}, "rand_params"),
    ({"rand_params": ["gravity"]}, "rand_params"),
    ({"rand_params": 3}, "rand_params"),
    ({"healthy_angle_range": (1.0, -1.0)}, "healthy_angle_range"),
]
OWN_BAD = {
    "metarl/Navigation2D-v0": [
        ({"goal_range": (1, 0)}, "goal_range"),
        ({"goal_range": (0.5, -0.5)}, "goal_range"),
        ({"goal_range": "01"}, "goal_range"),
        ({"goal_range": (0, 1, 2)}, "goal_range"),
        ({"goal_range": ()}, "goal_range"),
        ({"goal_range": (0, NAN)}, "goal_range"),
        ({"goal_range": (-INF, INF)}, "goal_range"),
        ({"goal_range": (-1e308, 1e308)}, "goal_range"),  # a width past float's range
        ({"goal_range": (False, True)}, "goal_range"),
        ({"goal_range": 0.5}, "goal_range"),
        ({"goal_range": [[0], [1]]}, "goal_range"),
        ({"goal_range": {"low": 0, "high": 1}}, "goal_range"),
        ({"max_action": 0.0}, "max_action"),
        ({"max_action": -0.1}, "max_action"),
        ({"max_action": "0.1"}, "max_action"),
        ({"max_action": NAN}, "max_action"),
        ({"max_action": INF}, "max_action"),
        ({"max_action": 1e39}, "max_action"),  # past float32, the action space's dtype
        ({"max_action": True}, "max_action"),
        ({"max_action": [0.1]}, "max_action"),
        ({"max_action": None}, "max_action"),
        ({"max_action": 10**400}, "max_action"),  # past float's range: was an OverflowError
        ({"goal_range": (0, 10**400)}, "goal_range"),
        ({"render_mode": "rgb_array"}, "render_mode"),
    ],
    "metarl/Bandit-v0": [
        ({"k": 0}, "k"),
        ({"k": -1}, "k"),
        ({"k": 2.5}, "k"),
        ({"k": 5.0}, "k"),
        ({"k": "5"}, "k"),
        ({"k": True}, "k"),
        ({"k": None}, "k"),
        ({"k": NAN}, "k"),
        ({"prob_range": (0.0, 2.0)}, "prob_range"),
        ({"prob_range": (-0.1, 1.0)}, "prob_range"),
        ({"prob_range": (1.0, 0.0)}, "prob_range"),
        ({"prob_range": "01"}, "prob_range"),
        ({"prob_range": (0.5,)}, "prob_range"),
        ({"arms": 5}, "arms"),
    ],
    "metarl/TabularMDP-v0": [
        ({"num_states": 0}, "num_states"),
        ({"num_states": -3}, "num_states"),
        ({"num_states": 2.0}, "num_states"),
        ({"num_states": "10"}, "num_states"),
        ({"num_states": True}, "num_states"),
        ({"num_actions": 0}, "num_actions"),
        ({"num_actions": 1.5}, "num_actions"),
        ({"num_actions": False}, "num_actions"),
        ({"reward_mean": "a"}, "reward_mean"),
        ({"reward_mean": NAN}, "reward_mean"),
        ({"reward_mean": -INF}, "reward_mean"),
        ({"reward_mean": None}, "reward_mean"),
        ({"reward_mean": True}, "reward_mean"),
        ({"reward_mean": -(10**400)}, "reward_mean"),
        ({"reward_mean_std": -1.0}, "reward_mean_std"),
        ({"reward_mean_std": "1"}, "reward_mean_std"),
        ({"reward_mean_std": NAN}, "reward_mean_std"),
        ({"reward_noise_std": -1.0}, "reward_noise_std"),
        ({"reward_noise_std": INF}, "reward_noise_std"),
        ({"dirichlet_alpha": 0.0}, "dirichlet_alpha"),
        ({"dirichlet_alpha": -1.0}, "dirichlet_alpha"),
        ({"dirichlet_alpha": [1.0]}, "dirichlet_alpha"),
        ({"start_state": 10}, "start_state"),
        ({"start_state": -1}, "start_state"),
        ({"start_state": 1.0}, "start_state"),
        ({"start_state": True}, "start_state"),
        ({"start_state": "0"}, "start_state"),
        ({"num_states": 3, "start_state": 3}, "start_state"),
        ({"states": 10}, "states"),
    ],
    "metarl/HalfCheetahVel-v0": [
        ({"velocity_range": (3.0, 0.0)}, "velocity_range"),
        ({"velocity_range": (0.0, INF)}, "velocity_range"),
        ({"velocity_range": 3.0}, "velocity_range"),
        ({"velocity_range": "03"}, "velocity_range"),
        ({"velocity_range": [0.0, 1.0, 2.0]}, "velocity_range"),
        ({"velocity": 1.0}, "velocity_range"),  # the hint
    ],
    "metarl/HalfCheetahDir-v0": [
        ({"directions": ()}, "directions"),
        ({"directions": (1.0, NAN)}, "directions"),
        ({"directions": "+-"}, "directions"),
        ({"directions": 1.0}, "directions"),
        ({"directions": [True, False]}, "directions"),
        ({"directions": [[1.0]]}, "directions"),
        ({"directions": [10**400]}, "directions"),
    ],
    "metarl/AntDir-v0": [
        ({"directions": []}, "directions"),
        ({"directions": (-1.0, "1")}, "directions"),
    ],
    "metarl/AntDir2D-v0": [
        ({"angle_range": (1.0, 0.0)}, "angle_range"),
        ({"angle_range": (0.0, INF)}, "angle_range"),
        ({"angle_range": "0"}, "angle_range"),
    ],
    "metarl/AntGoal-v0": [
        ({"goal_radius": -3.0}, "goal_radius"),
        ({"goal_radius": NAN}, "goal_radius"),
        ({"goal_radius": "3"}, "goal_radius"),
        ({"goal_radius": True}, "goal_radius"),
        ({"ctrl_cost_weight": NAN}, "ctrl_cost_weight"),
        ({"exclude_current_positions_from_observation": "no"}, "exclude_current_positions"),
        ({"terminate_when_unhealthy": 0}, "terminate_when_unhealthy"),
    ],
    "metarl/AntVel-v0": [
        ({"velocity_range": (3.0, 0.0)}, "velocity_range"),
        ({"velocity_range": "03"}, "velocity_range"),
    ],
    "metarl/HumanoidDir-v0": [
        ({"angle_range": (1.0, 0.0)}, "angle_range"),
        ({"contact_cost_range": (1.0, 0.0)}, "contact_cost_range"),
        ({"contact_cost_weight": -1.0}, "contact_cost_weight"),
        ({"include_cvel_in_observation": "yes"}, "include_cvel_in_observation"),
        *HEALTH_BAD,
    ],
    "metarl/ML1-v0": [
        ({"env_name": "push"}, "env_name"),
        ({"env_name": 3}, "env_name"),
        ({"benchmark_seed": -1}, "benchmark_seed"),
        ({"benchmark_seed": 0.5}, "benchmark_seed"),
        ({"render_mode": "depth_array"}, "render_mode"),
    ],
    "metarl/ML10-v0": [({"env_name": "push-v3"}, "env_name"), ({"benchmark_seed": "0"}, "seed")],
    "metarl/ML45-v0": [({"render_mode": "rgb"}, "render_mode")],
    "metarl/Walker2dRandParams-v0": [*RAND_PARAMS_BAD, *HEALTH_BAD],
    "metarl/HopperRandParams-v0": [
        ({"healthy_state_range": (1.0, -1.0)}, "healthy_state_range"),
        *RAND_PARAMS_BAD,
        *HEALTH_BAD,
    ],
}


def bad_kwargs_cases():
    for env_id in ENV_IDS:
        rows = [*COMMON_BAD, *OWN_BAD[env_id]]
        if env_id in MUJOCO_IDS:
            rows += V5_BAD
        if env_id in ANT_IDS:
            rows += ANT_BAD
        for i, (kwargs, substring) in enumerate(rows):
            yield pytest.param(env_id, kwargs, substring, id=f"{short(env_id)}-{i}-{substring}")


BAD_KWARGS = list(bad_kwargs_cases())


# Gymnasium's `make` warns of a render_mode the env does not list before the env rejects it.
@pytest.mark.filterwarnings("ignore:.*render_mode")
@pytest.mark.parametrize("env_id, kwargs, substring", BAD_KWARGS)
def test_bad_constructor_arguments_raise_value_error_naming_them(env_id, kwargs, substring):
    for construct in (env_class(env_id), lambda **kw: gym.make(env_id, **kw)):
        with pytest.raises(ValueError) as error:
            construct(**kwargs)
        assert_one_line(error, substring)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_an_unknown_keyword_lists_every_accepted_one(env_id):
    accepted = env_class(env_id).constructor_kwargs()
    assert set(accepted) == {name for config in VALID_KWARGS[env_id] for name in config}
    with pytest.raises(ValueError) as error:
        gym.make(env_id, colour="red")
    assert_one_line(error, "unknown keyword arguments ['colour']")
    assert all(name in str(error.value) for name in accepted)


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        pytest.param(env_id, config, id=f"{short(env_id)}-{i}")
        for env_id, configs in VALID_KWARGS.items()
        if env_id in ENV_IDS
        for i, config in enumerate(configs)
    ],
)
def test_valid_constructor_arguments_still_work(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()


@pytest.mark.parametrize(
    "env, episodes, substring",
    [
        ("bandit", 2, "env"),
        (None, 2, "env"),
        (lambda: gym.make("CartPole-v1"), 2, "env"),
        (lambda: gym.make("metarl/Bandit-v0"), 0, "episodes_per_trial"),
        (lambda: gym.make("metarl/Bandit-v0"), 1.5, "episodes_per_trial"),
        (lambda: gym.make("metarl/Bandit-v0"), True, "episodes_per_trial"),
        (lambda: gym.make("metarl/Bandit-v0"), "2", "episodes_per_trial"),
    ],
)
def test_bad_rl2_trial_arguments_raise_value_error(env, episodes, substring):
    with pytest.raises(ValueError) as error:
        RL2Trial(env() if callable(env) else env, episodes)
    assert_one_line(error, substring)


# --- Actions of the discrete envs ------------------------------------------------------------

BAD_ACTIONS = [-1, 5, np.int64(-1), 1.5, 1.0, np.float32(2.0), True, np.True_, "1", None]
BAD_ACTIONS += [[1], np.array([1]), np.array(1.0)]


@pytest.mark.parametrize("action", BAD_ACTIONS, ids=repr)
@pytest.mark.parametrize("env_id", DISCRETE_IDS)
def test_bad_discrete_actions_raise_value_error(env_id, action):
    env = gym.make(env_id)  # 5 actions in both
    env.reset(seed=0)
    assert not env.action_space.contains(action) or isinstance(action, bool | np.bool_)
    with pytest.raises(ValueError) as error:
        env.step(action)
    assert_one_line(error, "action")
    for good in (4, np.int64(0), np.array(2)):  # the env still steps after the error
        env.reset()
        env.step(good)


@pytest.mark.parametrize("env_id", DISCRETE_IDS)
def test_rl2_trials_pass_bad_actions_on_to_the_env(env_id):
    trial = RL2Trial(gym.make(env_id), 2)
    trial.reset(seed=0)
    with pytest.raises(ValueError) as error:
        trial.step(-1)
    assert_one_line(error, "action")


# --- Tasks -----------------------------------------------------------------------------------


@cache
def _env_and_task(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    return env, env.get_task()


def sample_task(env_id):
    """A shared env of each id (building MuJoCo envs per case is slow), set to a fixed task."""
    env, task = _env_and_task(env_id)
    env.set_task(task)
    return env, env.get_task()


def full(like, value):
    """`value` in the shape of the task value `like`, as nested lists (a scalar for a scalar)."""
    return np.full(np.shape(like), value, dtype=object).tolist()


def one(like, value):
    """`like` with its last number replaced by `value`."""
    array = np.array(like, dtype=object)
    array.flat[-1] = value
    return array.tolist()


# Bad values of one field of a good task: the message must name the field.
FIELD_MUTATIONS = {
    "nan": lambda v: full(v, NAN),
    "one nan": lambda v: one(v, NAN),
    "inf": lambda v: full(v, -INF),
    "string": lambda v: "0.5",
    "strings": lambda v: full(v, "0.5"),
    "none": lambda v: None,
    "one none": lambda v: one(v, None),
    "bool": lambda v: full(v, True),
    "one bool": lambda v: one(v, True),
    "huge int": lambda v: full(v, 10**400),
    "complex": lambda v: full(v, 1j),
    "wrong shape": lambda v: [v, v],
    "flattened": lambda v: [*np.ravel(v).tolist(), 0.0],
    "ragged": lambda v: [v, [v]],
    "dict": lambda v: {"x": 1.0},
    "missing": None,  # the field left out
}
# Bad tasks as a whole, and what the message must name.
TASK_MUTATIONS = [
    ("extra field", lambda task: {**task, "colour": 1}, "colour"),
    ("empty", lambda task: {}, "lacks the fields"),
    ("list", lambda task: list(task.values()), "dict"),
    ("string", lambda task: "task", "dict"),
    ("none", lambda task: None, "dict"),
    ("number", lambda task: 0.5, "dict"),
]
FIELDS = {
    "metarl/Navigation2D-v0": ["goal"],
    "metarl/Bandit-v0": ["probs"],
    "metarl/TabularMDP-v0": ["reward_means", "transitions"],
    "metarl/HalfCheetahVel-v0": ["velocity"],
    "metarl/HalfCheetahDir-v0": ["direction"],
    "metarl/AntDir-v0": ["direction"],
    "metarl/AntDir2D-v0": ["angle"],
    "metarl/AntGoal-v0": ["goal"],
    "metarl/AntVel-v0": ["velocity"],
    "metarl/HumanoidDir-v0": ["angle"],
    "metarl/ML1-v0": ["env_name", "rand_vec"],
    "metarl/ML10-v0": ["env_name", "rand_vec"],
    "metarl/ML45-v0": ["env_name", "rand_vec"],
    "metarl/Walker2dRandParams-v0": ["body_mass", "body_inertia", "dof_damping", "geom_friction"],
    "metarl/HopperRandParams-v0": ["body_mass", "body_inertia", "dof_damping", "geom_friction"],
}
SPECIFIC_BAD_TASKS = [
    ("metarl/Navigation2D-v0", {"goal": [0.1]}, "goal"),
    ("metarl/Navigation2D-v0", {"goal": 0.1}, "goal"),
    ("metarl/Bandit-v0", {"probs": [0.1, 0.2, 1.5, 0.3, 0.4]}, "probs"),
    ("metarl/Bandit-v0", {"probs": [0.1, 0.2, -0.5, 0.3, 0.4]}, "probs"),
    ("metarl/Bandit-v0", {"probs": [0.5, 0.5]}, "probs"),
    ("metarl/Bandit-v0", {"probs": [0.5] * 6}, "probs"),
    ("metarl/Bandit-v0", {"Probs": [0.5] * 5}, "probs"),
    ("metarl/AntGoal-v0", {"goal": [1.0, 2.0, 3.0]}, "goal"),
    ("metarl/HalfCheetahVel-v0", {"velocity": [1.0]}, "velocity"),
    ("metarl/HalfCheetahVel-v0", {"velocity": "1.0"}, "velocity"),
    ("metarl/AntDir2D-v0", {"angle": [0.0, 1.0]}, "angle"),
    *[
        (env_id, change, field)
        for env_id in RAND_PARAMS_IDS
        for change, field in [
            (lambda task: {**task, "body_mass": [0.0] * len(task["body_mass"])}, "body_mass"),
            (lambda task: {**task, "dof_damping": [-1.0] * len(task["dof_damping"])}, "damping"),
            (lambda task: {**task, "geom_friction": task["geom_friction"][:-1]}, "geom_friction"),
        ]
    ],
]


def bad_task_cases():
    for env_id, fields in FIELDS.items():
        if env_id not in ENV_IDS:  # an extra's env, not installed here
            continue
        for field in fields:
            for name in FIELD_MUTATIONS:
                yield pytest.param(env_id, field, name, id=f"{short(env_id)}-{field}-{name}")
        for name, _, _ in TASK_MUTATIONS:
            yield pytest.param(env_id, None, name, id=f"{short(env_id)}-{name}")


BAD_TASKS = list(bad_task_cases())


def assert_rejected_by_every_route(env, bad, substring):
    """`bad` raises through `set_task`, `reset(options=...)` and the setter; the task stays."""
    before = env.get_task()
    for route in ("set_task", "reset", "setter"):
        with pytest.raises(ValueError) as error:
            if route == "set_task":
                env.set_task(bad)
            elif route == "reset":
                env.reset(options={"task": bad})
            else:
                env.task = bad
        assert_one_line(error, substring)
        assert env.get_task() == before, route


@pytest.mark.parametrize("env_id, field, mutation", BAD_TASKS)
def test_malformed_tasks_raise_value_error_naming_the_field(env_id, field, mutation):
    env, task = sample_task(env_id)
    assert list(task) == FIELDS[env_id]
    if field is None:
        make_bad, substring = next((m, s) for n, m, s in TASK_MUTATIONS if n == mutation)
        bad = make_bad(task)
    elif mutation == "missing":
        bad, substring = {k: v for k, v in task.items() if k != field}, field
    else:
        bad, substring = {**task, field: FIELD_MUTATIONS[mutation](task[field])}, field
    assert_rejected_by_every_route(env, bad, substring)


@pytest.mark.parametrize("env_id, task, substring", SPECIFIC_BAD_TASKS)
def test_tasks_outside_their_domain_raise_value_error(env_id, task, substring):
    env, good = sample_task(env_id)
    assert_rejected_by_every_route(env, task(good) if callable(task) else task, substring)


@pytest.mark.parametrize(
    "change, substring",
    [
        (lambda t: np.asarray(t["transitions"]) * 2, "transitions"),
        (lambda t: np.asarray(t["transitions"]) - 0.1, "transitions"),
        (lambda t: np.asarray(t["transitions"])[:, :, :-1], "transitions"),
        (lambda t: np.asarray(t["transitions"])[:, :-1], "transitions"),
    ],
    ids=["sums-to-2", "negative", "too-few-states", "too-few-actions"],
)
def test_tabular_mdp_transitions_must_be_distributions(change, substring):
    env, task = sample_task("metarl/TabularMDP-v0")
    assert_rejected_by_every_route(env, {**task, "transitions": change(task).tolist()}, substring)


@pytest.mark.parametrize("options", ["task", [("task", {})], 3])
def test_reset_options_must_be_a_dict(options):
    env, _ = sample_task("metarl/Navigation2D-v0")
    with pytest.raises(ValueError) as error:
        env.reset(options=options)
    assert_one_line(error, "options")


# --- Property-based fuzz ---------------------------------------------------------------------

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±inf included
    | st.text(max_size=6)
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@cache
def task_strategy_of(env_id):
    """The task strategy of each id, built once (building it per example is slow)."""
    return task_strategy(sample_task(env_id)[1])


def task_strategy(template):
    """Tasks near `template` (its fields, with values of its shapes or arbitrary) and far
    from it (arbitrary JSON)."""

    def values(like):
        shape = np.shape(like)
        return st.one_of(
            st.just(like),
            arrays(np.float64, shape, elements=st.floats(width=64)).map(np.ndarray.tolist),
            arrays(np.float64, shape, elements=st.floats(0, 1)).map(np.ndarray.tolist),
            arrays(np.float64, shape, elements=st.floats(0.01, 1)).map(  # probability rows
                lambda a: (a / a.sum(-1, keepdims=True) if a.ndim else a).tolist()
            ),
            arrays(np.int64, shape, elements=st.integers(-(2**63), 2**63 - 1)).map(
                np.ndarray.tolist
            ),
            JSON_LIKE,
        )

    fields = {field: values(like) for field, like in template.items()}
    keys = st.sampled_from(list(template)) | st.text(max_size=6)
    return st.one_of(
        st.fixed_dictionaries(fields),
        st.fixed_dictionaries(fields, optional={"extra": JSON_LIKE}),
        st.dictionaries(keys, JSON_LIKE | st.sampled_from(list(template.values())), max_size=3),
        JSON_LIKE,
    )


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fuzz_set_task_raises_value_error_or_accepts_a_working_task(env_id, data):
    env, before = sample_task(env_id)
    task = data.draw(task_strategy_of(env_id), label="task")
    try:
        env.set_task(task)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        assert env.get_task() == before
        return
    expected = {  # numbers as float lists; a name (Meta-World's env_name) as it is
        k: v if isinstance(v, str) else np.asarray(v, dtype=np.float64).tolist()
        for k, v in task.items()
    }
    assert env.get_task() == expected
    with np.errstate(all="ignore"):  # a huge finite task may make an infinite reward
        env.reset(seed=0)
        env.step(env.action_space.sample())
    assert env.get_task() == expected


CONFIG_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)  # counts allocate memory and steps: k = 10**9 would be valid, and slow
    | st.floats(-1e100, 1e100)  # near float's limit NumPy's samplers overflow (see the report)
    | st.sampled_from([NAN, INF, -INF, 0.0, 0.5, 1.0])
    | st.sampled_from(["", "rgb_array", "track", "torso", "red"])
    | st.text(max_size=6).filter(lambda s: s != "human")  # "human" would open a window
)
CONFIG_VALUES = (
    CONFIG_SCALARS
    | st.lists(CONFIG_SCALARS, max_size=3).map(
        lambda v: sorted(v) if all(isinstance(x, float) for x in v) else v
    )
    | st.dictionaries(
        CONFIG_SCALARS.filter(lambda k: k is not None and k == k), CONFIG_SCALARS, max_size=2
    )
)


@cache
def config_strategy(env_id):
    """The env's class and a strategy for its keyword arguments: up to 3 of its names, each
    with an arbitrary value or one of its valid values in `VALID_KWARGS`, and at times an
    unknown name."""
    cls = env_class(env_id)
    valid = {}
    for config in VALID_KWARGS[env_id]:
        for name, value in config.items():
            valid.setdefault(name, []).append(value)
    values = {name: st.sampled_from(v) | CONFIG_VALUES for name, v in valid.items()}

    @st.composite
    def configs(draw):
        names = draw(st.lists(st.sampled_from(sorted(values)), unique=True, max_size=3))
        unknown = draw(st.sampled_from([{}, {}, {}, {"colour": 1}]))
        return {**unknown, **{name: draw(values[name]) for name in names}}

    return cls, configs()


# A huge reset_noise_scale makes MuJoCo warn that the simulation is unstable, as it should.
@pytest.mark.filterwarnings("ignore:MuJoCo:RuntimeWarning")
@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fuzz_constructors_raise_value_error_or_build_a_working_env(env_id, data):
    cls, configs = config_strategy(env_id)
    kwargs = data.draw(configs, label="kwargs")
    try:
        env = cls(**kwargs)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        return
    try:
        with np.errstate(all="ignore"):
            env.reset(seed=0)
            env.step(env.action_space.sample())
    finally:
        env.close()
