"""Every bad config value is a one-line `ValueError` naming its key, raised when the config
dataclass is made (issue 12): the Python API gets it as the CLI's `--set` and YAML files do.

The table lists each bad value once per key; it runs against every config class that has the
key (or the classes a row names, where the same key means different things)."""

import dataclasses
import math

import numpy as np
import pytest

from metarl.agents.maml import MAMLConfig
from metarl.agents.parts.config import AgentConfig
from metarl.agents.parts.inner_loop import InnerLoopConfig
from metarl.agents.parts.single_task import SingleTaskConfig
from metarl.agents.parts.trust_region import TrustRegionConfig
from metarl.agents.pearl import PEARLConfig
from metarl.agents.ppo import PPOConfig
from metarl.agents.promp import ProMPConfig
from metarl.agents.reference import (
    EpsilonGreedyConfig,
    PSRLConfig,
    ReferenceConfig,
    ThompsonConfig,
    UCB1Config,
)
from metarl.agents.registry import REGISTRY
from metarl.agents.rl2 import RL2Config, RL2PPOConfig, RL2TRPOConfig
from metarl.agents.trpo import TRPOConfig
from metarl.agents.varibad import VariBADConfig
from metarl.training.config import build_config, parse_sets

NAN, INF = math.nan, math.inf

REFERENCE = (ReferenceConfig, EpsilonGreedyConfig, UCB1Config, ThompsonConfig, PSRLConfig)
AGENT = (
    MAMLConfig,
    ProMPConfig,
    RL2TRPOConfig,
    RL2PPOConfig,
    VariBADConfig,
    PEARLConfig,
    TRPOConfig,
    PPOConfig,
)
BASES = (AgentConfig, InnerLoopConfig, TrustRegionConfig, SingleTaskConfig, RL2Config)
CLASSES = AGENT + BASES + REFERENCE

COUNTS = (  # integers >= 1: batch, episode, task, step and size counts
    "iterations meta_batch_size episodes_per_task episodes_per_trial num_inner_steps "
    "cg_iterations max_backtracks outer_steps epochs minibatch_size minibatch_trials "
    "hidden_size num_train_tasks batch_size context_batch_size num_initial_episodes "
    "num_prior_episodes latent_size replay_buffer_size num_eval_tasks max_envs "
    "value_hidden_size value_epochs value_minibatch_trials transformer_blocks transformer_heads "
    "snail_width snail_filters snail_key_size snail_value_size encoder_hidden_size "
    "embedding_size vae_updates vae_batch_trials vae_buffer_trials elbo_steps decode_steps"
).split()
NONNEGATIVE_COUNTS = (
    "num_workers num_posterior_episodes num_extra_posterior_episodes num_gradient_steps eval_every"
).split()
POSITIVE_FLOATS = (  # finite and > 0: step sizes, trust regions, clip ranges, scales
    "max_kl outer_lr learning_rate target_inner_kl max_grad_norm reward_scale reward_noise_std "
    "value_learning_rate vae_learning_rate"
).split()
NONNEGATIVE_FLOATS = (  # finite and >= 0: weights and coefficients (0 switches them off)
    "cg_damping inner_lr exploration_weight inner_kl_coeff entropy_coef kl_weight "
    "policy_mean_reg policy_std_reg c"
).split()
BOOLS = (
    "first_order learn_inner_lr adaptive_inner_kl use_next_obs_in_context automatic_entropy "
    "eval_deterministic"
).split()

CASES = [
    # The user's report.
    ("discount", 2, "must lie in (0, 1], got 2", None),
    ("discount", 2.0, "must lie in (0, 1], got 2.0", None),
    ("discount", 0.0, "must lie in (0, 1], got 0.0", None),
    ("discount", -0.5, "(0, 1]", None),
    ("discount", NAN, "got nan", None),
    ("discount", INF, "got inf", None),
    ("gae_lambda", 1.5, "must lie in [0, 1], got 1.5", None),
    ("gae_lambda", -0.1, "[0, 1]", None),
    ("gae_lambda", NAN, "got nan", None),
    ("horizon", 0, "None (the env's registered horizon) or an integer >= 1, got 0", None),
    ("horizon", -5, "got -5", None),
    ("fisher_tasks", 0, "None (all tasks) or an integer in [1, meta_batch_size = 40]", None),
    ("fisher_tasks", 41, "got 41", None),
    ("num_tasks_sample", 0, "an integer in [1, num_train_tasks = 100], got 0", None),
    ("num_tasks_sample", 101, "got 101", None),
    ("fisher_trials", 0, "None (all trials) or an integer in [1, meta_batch_size = 100]", None),
    ("fisher_trials", 101, "got 101", None),
    ("max_kl", 0.0, "must be a finite number > 0, got 0.0", None),
    ("max_kl", -0.01, "> 0", None),
    ("max_kl", INF, "got inf", None),
    ("max_backtracks", -1, "must be an integer >= 1, got -1", None),
    ("max_backtracks", 0, "must be an integer >= 1, got 0", None),  # would never take a step
    ("backtrack_ratio", 0.0, "must lie in (0, 1), got 0.0", None),
    ("backtrack_ratio", 1.0, "(0, 1)", None),
    ("backtrack_ratio", 1.5, "(0, 1)", None),
    ("backtrack_ratio", NAN, "got nan", None),
    ("num_workers", -1, "must be an integer >= 0, got -1", None),
    ("device", "gpu", "must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'", None),
    ("device", 0, "must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 0", None),
    ("seed", -1, "must be an integer in [0, 2**32), got -1", None),
    ("seed", 2**32, "got 4294967296", None),
    ("seed", 1.5, "[0, 2**32)", None),
    ("hidden_sizes", (64, 0), "layer widths, each an integer >= 1, got (64, 0)", None),
    ("hidden_sizes", [-1], "got [-1]", None),
    ("hidden_sizes", (1.5,), "layer widths", None),
    ("hidden_sizes", "64", "layer widths", None),
    ("hidden_sizes", 64, "layer widths", None),
    ("encoder_hidden_sizes", (0,), "layer widths", None),
    ("encoder_hidden_sizes", [True], "layer widths", None),
    ("decoder_hidden_sizes", (0,), "layer widths", None),
    ("policy_hidden_sizes", (8, -1), "layer widths", None),
    # Step sizes and their NaNs.
    ("inner_lr", -0.1, "must be a finite number >= 0, got -0.1", None),
    ("inner_lr", NAN, "got nan", None),
    ("learning_rate", 0.0, "> 0, got 0.0", None),
    ("learning_rate", -3e-4, "> 0", None),
    ("learning_rate", NAN, "got nan", None),
    ("outer_lr", 0.0, "> 0", None),
    ("outer_lr", INF, "got inf", None),
    # Clip ranges, weights and rates.
    ("clip", 0.0, "must be a finite number > 0, got 0.0", None),
    ("clip", -0.2, "> 0", None),
    ("clip", NAN, "got nan", None),
    ("cg_damping", -1e-5, ">= 0", None),
    ("cg_damping", NAN, "got nan", None),
    ("exploration_weight", -0.1, ">= 0", None),
    ("exploration_weight", INF, "got inf", None),
    ("inner_kl_coeff", -1.0, ">= 0", None),
    ("target_inner_kl", 0.0, "> 0", None),
    ("entropy_coef", -0.01, ">= 0", None),
    ("entropy_coef", NAN, "got nan", None),
    ("max_grad_norm", 0.0, "> 0", None),
    ("max_grad_norm", INF, "got inf", None),  # torch reads inf as "no clip": say so instead
    ("reward_scale", 0.0, "> 0", None),
    ("kl_weight", -1.0, ">= 0", None),
    ("kl_weight", NAN, "got nan", None),
    ("tau", 0.0, "must lie in (0, 1], got 0.0", None),
    ("tau", 1.5, "(0, 1]", None),
    ("alpha", 0.0, "> 0", (PEARLConfig, ThompsonConfig)),  # log α, Beta(α, β)
    ("alpha", -1.0, ">= 0", (UCB1Config,)),  # pseudo-counts
    ("alpha", NAN, "got nan", None),
    ("beta", 0.0, "> 0", (ThompsonConfig,)),
    ("beta", -1.0, ">= 0", (UCB1Config,)),
    ("beta", INF, "got inf", None),
    ("policy_mean_reg", -1e-3, ">= 0", None),
    ("policy_std_reg", NAN, "got nan", None),
    ("epsilon", 1.5, "must lie in [0, 1], got 1.5", None),
    ("epsilon", -0.1, "[0, 1]", None),
    ("epsilon", NAN, "got nan", None),
    ("c", -1.0, ">= 0", None),
    ("c", INF, "got inf", None),
    ("reward_noise_std", 0.0, "> 0", None),
    ("reward_noise_std", NAN, "got nan", None),
    # Where the envs step: a sampler's name, a cluster address, a count of Ray actors.
    ("sampler", "rya", "must be 'local' or 'ray', got 'rya'", None),
    ("sampler", None, "must be 'local' or 'ray', got None", None),
    ("ray_address", 6379, "must be 'HOST:PORT', 'auto' or null, got 6379", None),
    ("ray_workers", 0, "must be an integer >= 1, got 0", None),
    ("ray_workers", 1.5, "integer", None),
    # RL²'s value function: one of two names.
    ("value_function", "mlp", "must be 'linear' or 'gru', got 'mlp'", None),
    ("value_function", None, "must be 'linear' or 'gru', got None", None),
    # RL²'s policy network, and the Transformer's width (even: sinusoidal positions).
    ("policy", "lstm", "must be 'gru', 'snail' or 'transformer', got 'lstm'", None),
    ("policy", None, "got None", None),
    ("transformer_width", 1, "must be an integer >= 2, got 1", None),
    # The task of a single-task trainer is a mapping of field names (the env checks the rest).
    ("task", 3, "None or a mapping of task field names to values", None),
    ("task", "goal", "mapping", None),
    ("task", {1: 2}, "mapping", None),
    # Types, through the Python API (build_config checks them for the CLI first).
    ("iterations", 2.0, "must be an integer >= 1, got 2.0", None),
    ("iterations", "10", "integer", None),
    ("iterations", True, "integer", None),
    ("discount", "0.9", "must be a number in (0, 1], got '0.9'", None),
    ("discount", True, "number", None),
    ("max_kl", None, "must be a finite number > 0, got None", None),
    # numpy scalars show as Python numbers; arrays, which a config would keep as given, fail.
    ("iterations", np.int64(0), "must be an integer >= 1, got 0", None),
    ("discount", np.float32(2.0), "must lie in (0, 1], got 2.0", None),
    ("iterations", np.array(10), "must be an integer >= 1, got array(10)", None),
    ("seed", np.array(3), "must be an integer in [0, 2**32), got array(3)", None),
    ("hidden_sizes", [np.array(64)], "layer widths", None),
    ("discount", np.array(0.9), "must be a number in (0, 1], got array(0.9)", None),
]
CASES += [(key, 0, "must be an integer >= 1, got 0", None) for key in COUNTS]
CASES += [(key, -1, "got -1", None) for key in COUNTS + NONNEGATIVE_COUNTS]
CASES += [(key, -1, "must be an integer >= 0, got -1", None) for key in NONNEGATIVE_COUNTS]
CASES += [(key, 1.0, "integer", None) for key in COUNTS + NONNEGATIVE_COUNTS]
CASES += [(key, value, "got", None) for key in POSITIVE_FLOATS for value in (0.0, -1.0, NAN)]
CASES += [(key, value, "got", None) for key in NONNEGATIVE_FLOATS for value in (-1.0, NAN, INF)]
CASES += [(key, value, "must be true or false", None) for key in BOOLS for value in (1, "yes")]


def fields_of(config_class):
    return {f.name for f in dataclasses.fields(config_class)}


TABLE = [
    pytest.param(config_class, key, value, expected, id=f"{config_class.__name__}-{key}={value!r}")
    for key, value, expected, only in CASES
    for config_class in (only or CLASSES)
    if key in fields_of(config_class)
]


def key_named(message, key, config_class):
    """The reference agents' messages lead with the field; every other config's says
    "config key 'KEY'"."""
    if config_class in REFERENCE:
        return message.startswith(f"{key} must ")
    return message.startswith(f"config key {key!r} ")


@pytest.mark.parametrize(("config_class", "key", "value", "expected"), TABLE)
def test_a_bad_value_is_a_one_line_error_naming_its_key(config_class, key, value, expected):
    with pytest.raises(ValueError) as error:
        config_class(**{key: value})
    message = str(error.value)
    assert expected in message
    assert key_named(message, key, config_class), message
    assert "\n" not in message


def test_the_table_covers_every_case_of_the_report_for_every_agent_that_has_the_key():
    covered = {(p.values[0], p.values[1]) for p in TABLE}
    for key in ("discount", "gae_lambda", "hidden_sizes", "horizon", "max_kl", "seed"):
        for config_class in AGENT:
            if key in fields_of(config_class):
                assert (config_class, key) in covered
    assert {c for c, k in covered if k == "fisher_tasks"} == {MAMLConfig}
    assert {c for c, k in covered if k == "backtrack_ratio"} == {
        MAMLConfig,
        RL2TRPOConfig,
        TRPOConfig,
        TrustRegionConfig,
    }
    every_key = set().union(*(fields_of(c) for c in CLASSES))
    assert every_key == {k for _, k in covered}  # a bad value of every key is in the table


@pytest.mark.parametrize("config_class", CLASSES, ids=lambda c: c.__name__)
def test_every_field_of_every_config_is_checked(config_class):
    """A value of no field's type, for every field: each config checks all its fields."""
    for key in fields_of(config_class):
        with pytest.raises(ValueError, match=rf"^(config key )?'?{key}'? must ") as error:
            config_class(**{key: object()})
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("config_class", CLASSES, ids=lambda c: c.__name__)
def test_the_defaults_are_accepted(config_class):
    config_class()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_agent_accepts_its_defaults_and_overrides(name):
    spec = REGISTRY[name]
    spec.config_class(**spec.overrides)
    build_config(spec.config_class, spec.overrides)


@pytest.mark.parametrize(
    ("config_class", "values"),
    [
        (MAMLConfig, {"discount": 1.0, "gae_lambda": 0.0}),
        (MAMLConfig, {"gae_lambda": 1, "discount": 1}),  # ints where floats go
        (MAMLConfig, {"num_workers": 0, "horizon": 1, "seed": 2**32 - 1}),
        (MAMLConfig, {"fisher_tasks": 40, "max_backtracks": 1, "cg_damping": 0.0}),
        (MAMLConfig, {"meta_batch_size": 3, "fisher_tasks": 3}),
        (MAMLConfig, {"hidden_sizes": ()}),  # a linear policy: the networks take it
        (MAMLConfig, {"hidden_sizes": [8]}),
        (MAMLConfig, {"iterations": np.int64(3), "discount": np.float32(0.5), "seed": np.uint8(7)}),
        (InnerLoopConfig, {"inner_lr": 0.0}),  # a constant zero step: no adaptation
        (ProMPConfig, {"inner_kl_coeff": 0.0}),  # no inner KL penalty
        (RL2TRPOConfig, {"fisher_trials": 100}),
        (RL2PPOConfig, {"minibatch_trials": 1000}),  # one minibatch of all trials
        (PEARLConfig, {"num_gradient_steps": 0, "eval_every": 0, "kl_weight": 0.0}),
        (PEARLConfig, {"num_tasks_sample": 100, "tau": 1.0, "encoder_hidden_sizes": ()}),
        (PPOConfig, {"task": {"goal": [0.3, -0.2]}, "entropy_coef": 0.0}),
        (TRPOConfig, {"task": None, "gae_lambda": 0.0}),
        (EpsilonGreedyConfig, {"epsilon": 0.0}),
        (EpsilonGreedyConfig, {"epsilon": 1}),
        (UCB1Config, {"c": 0.0, "alpha": 0.0, "beta": 0.0}),
        (ReferenceConfig, {"seed": 2**32 - 1}),
    ],
)
def test_the_edges_of_the_valid_ranges_are_accepted(config_class, values):
    config = config_class(**values)
    assert all(getattr(config, key) == value for key, value in values.items())


@pytest.mark.parametrize(
    ("config_class", "values", "expected"),
    [
        (MAMLConfig, {"meta_batch_size": 4, "fisher_tasks": 5}, "meta_batch_size = 4], got 5"),
        (RL2TRPOConfig, {"meta_batch_size": 4, "fisher_trials": 5}, "meta_batch_size = 4]"),
        (PEARLConfig, {"num_train_tasks": 3, "num_tasks_sample": 5}, "num_train_tasks = 3]"),
        (MAMLConfig, {"learn_inner_lr": True, "inner_lr": 0.0}, "> 0 with learn_inner_lr"),
        (ProMPConfig, {"learn_inner_lr": True, "inner_lr": 0.0}, "> 0 with learn_inner_lr"),
        (
            ProMPConfig,
            {"adaptive_inner_kl": True, "inner_kl_coeff": 0.0},
            "'inner_kl_coeff' must be > 0 with adaptive_inner_kl",
        ),
        (
            MAMLConfig,
            {"meta_batch_size": 1, "exploration_weight": 0.1},
            "'exploration_weight' > 0 (E-MAML) needs meta_batch_size >= 2",
        ),
    ],
)
def test_values_that_fit_only_with_other_keys_name_both(config_class, values, expected):
    with pytest.raises(ValueError) as error:
        config_class(**values)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_nan_from_yaml_is_refused_by_the_field_check():
    with pytest.raises(ValueError, match=r"config key 'discount' must lie in \(0, 1\], got nan"):
        build_config(MAMLConfig, parse_sets(["discount=.nan"]))
    with pytest.raises(ValueError, match=r"config key 'max_kl' .* got inf"):
        build_config(TRPOConfig, parse_sets(["max_kl=.inf"]))


def test_a_huge_integer_where_a_float_goes_is_named_by_its_range():
    with pytest.raises(ValueError, match=r"'discount' must lie in \(0, 1\], got an integer of"):
        build_config(MAMLConfig, {"discount": 10**400})
    with pytest.raises(ValueError, match=r"'learning_rate' must be a finite number > 0"):
        PPOConfig(learning_rate=10**400)
