"""The YAML-level config loader (issue 12): `--set` items, config files and `build_config`
turn every bad input into a one-line `ValueError` that names it, and let nothing invalid
through. The fuzz checks what `build_config` returns against the spec below, written from the
algorithms, not from the checks."""

import dataclasses
import importlib.util
import math
import re
import sys
import tempfile
import types
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metarl.agents.maml import MAMLConfig
from metarl.agents.multitask import MultiTaskConfig
from metarl.agents.reference import REFERENCE_AGENTS, ThompsonConfig, UCB1Config
from metarl.agents.registry import REGISTRY
from metarl.agents.reptile import ReptileConfig
from metarl.training.config import build_config, load_yaml, parse_sets

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def assert_one_line_value_error(error):
    message = str(error)
    assert message and "\n" not in message, repr(message)


# ----- parse_sets ---------------------------------------------------------------------------


def test_set_items_parse_as_yaml():
    assert parse_sets(["hidden_sizes=[32, 32]", " seed =3", "task={goal: [1, 2]}"]) == {
        "hidden_sizes": [32, 32],
        "seed": 3,
        "task": {"goal": [1, 2]},
    }
    assert parse_sets(["horizon="]) == {"horizon": None}
    assert parse_sets(["x=a=b"]) == {"x": "a=b"}


@pytest.mark.parametrize(
    "item",
    [
        "hidden_sizes=[32,",
        "task={goal: [1, 2]",
        "x=[1]]",
        "x={[1]: 2}",  # an unhashable key
        "x=2020-99-99",  # a timestamp that is no date: datetime's ValueError
        "x=!!timestamp not-a-date",  # PyYAML's AttributeError
        "x=!!int ten",
        "x=!!python/object:os.system",
        "x=*undefined",
        "x=" + "[" * (sys.getrecursionlimit() + 10),  # deeper than Python's recursion limit
        "x=\x00",
        "x=a: b: c",
        "x=- a\n- b: c\n d",
    ],
)
def test_a_set_item_whose_value_is_not_yaml_is_named(item):
    with pytest.raises(ValueError, match=r"^--set '.*: the value is not valid YAML \(") as error:
        parse_sets([item])
    assert_one_line_value_error(error.value)


@pytest.mark.parametrize("item", ["inner_lr", "=3", " =3", ""])
def test_a_set_item_without_a_key_is_named(item):
    with pytest.raises(ValueError, match="--set takes key=value, got") as error:
        parse_sets([item])
    assert_one_line_value_error(error.value)


# ----- load_yaml ----------------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(range(256))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PNG, r"is not YAML text: the byte at offset 0 is not UTF-8"),
        (b"seed: 1\n\xff\xfe", r"is not YAML text: the byte at offset 8 is not UTF-8"),
        (bytes(range(256)) * 4, r"is not (YAML text|valid YAML)"),
        (b"a: [1, 2\n", r"is not valid YAML: .* at line \d+, column \d+"),
        (b"a: 1\nb: [\n", r"is not valid YAML"),
        (b"\x00\x01\x02", r"is not valid YAML: .*#x0000"),
        (
            b"a: 1\n---\nb: 2\n",
            r"is not valid YAML: expected a single document in the stream, but found another",
        ),
        (b"- 1\n- 2\n", r"must hold a mapping of keys to values"),
        (b"3\n", r"must hold a mapping of keys to values"),
    ],
)
def test_a_config_file_that_is_no_yaml_mapping_is_named(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"config file {path} {expected}") as error:
        load_yaml(path)
    assert_one_line_value_error(error.value)


def test_a_config_file_that_cannot_be_read_is_named(tmp_path):
    for path in (tmp_path / "missing.yaml", tmp_path):
        with pytest.raises(ValueError, match=rf"^cannot read config file {path}: ") as error:
            load_yaml(path)
        assert_one_line_value_error(error.value)
    with pytest.raises(ValueError, match=r"^cannot read config file 'a\\x00b': ") as error:
        load_yaml("a\x00b")
    assert_one_line_value_error(error.value)


def test_a_config_file_holds_a_mapping(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("# nothing\n")
    assert load_yaml(path) == {}
    path.write_bytes("\ufeffseed: 3  # γ\nhidden_sizes: [8]\n".encode())  # with a BOM
    assert load_yaml(path) == {"seed": 3, "hidden_sizes": [8]}


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_load_yaml_on_arbitrary_bytes(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "fuzz.yaml")
        path.write_bytes(content)
        try:
            values = load_yaml(path)
        except ValueError as error:
            assert_one_line_value_error(error)
            assert str(path) in str(error)
        else:
            assert isinstance(values, dict)


# ----- build_config -------------------------------------------------------------------------


def test_build_config_names_unknown_keys_and_wrong_types():
    with pytest.raises(ValueError, match=r"^unknown config key\(s\) \['colour'\] for MAMLConfig"):
        build_config(MAMLConfig, {"colour": 1})
    with pytest.raises(ValueError, match=r"^config key 'inner_lr' must be float, got 'fast'$"):
        build_config(MAMLConfig, {"inner_lr": "fast"})
    with pytest.raises(ValueError, match=r"^config key 'hidden_sizes' must be Sequence\[int\]"):
        build_config(MAMLConfig, {"hidden_sizes": "64"})
    with pytest.raises(ValueError, match=r"got an integer of about 401 digits$"):
        build_config(MAMLConfig, {"seed": 10**400})
    long = build_config.__name__ * 100
    with pytest.raises(ValueError, match=r"\.\.\.$") as error:
        build_config(MAMLConfig, {"iterations": long})
    assert len(str(error.value)) < 200


def real(value):
    """A finite number (a bool is none, nor an int past float's range)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return abs(value) < 2**1024 and math.isfinite(value)


def integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def count(low=1):
    return lambda value, config: integer(value) and value >= low


def number(low, high=math.inf, low_open=False, high_open=False):
    def ok(value, config):
        if not real(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return ok


def optional_count_up_to(bound_key):
    return lambda value, config: (
        value is None or (integer(value) and 1 <= value <= getattr(config, bound_key))
    )


def widths(value, config):
    return isinstance(value, tuple) and all(integer(v) and v >= 1 for v in value)


def flag(value, config):
    return isinstance(value, bool)


def task(value, config):
    return value is None or (isinstance(value, dict) and all(isinstance(k, str) for k in value))


def inner_lr(value, config):
    return real(value) and (value > 0 if config.learn_inner_lr else value >= 0)


def inner_kl_coeff(value, config):
    return real(value) and (value > 0 if config.adaptive_inner_kl else value >= 0)


def exploration_weight(value, config):
    return real(value) and (value == 0 or (value > 0 and config.meta_batch_size >= 2))


def device(value, config):
    """auto and cpu anywhere; cuda and cuda:N only where torch finds that GPU."""
    if not isinstance(value, str):
        return False
    if value in ("auto", "cpu"):
        return True
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if not match or not torch.cuda.is_available():
        return False
    return match.group(1) is None or int(match.group(1)) < torch.cuda.device_count()


def transformer_shape(width, heads):
    """Whether a Transformer of `width` units and `heads` heads can be built."""
    return width % 2 == 0 and width % heads == 0


RAY_INSTALLED = importlib.util.find_spec("ray") is not None
"""`sampler: ray` is valid only where the extra is installed (else its one-line error)."""

VALID = {
    "iterations": count(),
    "device": device,
    "seed": lambda value, config: integer(value) and 0 <= value < 2**32,
    "horizon": lambda value, config: value is None or count()(value, config),
    "discount": number(0, 1, low_open=True),
    "num_workers": count(0),
    "sampler": lambda value, config: value == "local" or (value == "ray" and RAY_INSTALLED),
    "ray_address": lambda value, config: value is None or isinstance(value, str),
    "ray_workers": count(),
    "gae_lambda": number(0, 1),
    "hidden_sizes": widths,
    "encoder_hidden_sizes": widths,
    "task": task,
    # the trust region
    "max_kl": number(0, low_open=True),
    "cg_iterations": count(),
    "cg_damping": number(0),
    "max_backtracks": count(),
    "backtrack_ratio": number(0, 1, low_open=True, high_open=True),
    # the inner loop, MAML and ProMP
    "meta_batch_size": count(),
    "episodes_per_task": count(),
    "inner_lr": inner_lr,
    "num_inner_steps": count(),
    "first_order": flag,
    "learn_inner_lr": flag,
    "exploration_weight": exploration_weight,
    "fisher_tasks": optional_count_up_to("meta_batch_size"),
    "outer_steps": count(),
    "outer_lr": number(0, low_open=True),
    "inner_kl_coeff": inner_kl_coeff,
    "adaptive_inner_kl": flag,
    "meta_step_size": number(0, low_open=True),
    "anneal_meta_step_size": flag,
    "post_episodes": flag,
    "target_inner_kl": number(0, low_open=True),
    # RL², PPO
    "episodes_per_trial": count(),
    "hidden_size": count(),
    "fisher_trials": optional_count_up_to("meta_batch_size"),
    "clip": number(0, low_open=True),
    "learning_rate": number(0, low_open=True),
    "epochs": count(),
    "minibatch_trials": count(),
    "minibatch_size": count(),
    "entropy_coef": number(0),
    "max_grad_norm": number(0, low_open=True),
    "value_function": lambda value, config: isinstance(value, str) and value in ("linear", "gru"),
    "value_hidden_size": count(),
    "value_learning_rate": number(0, low_open=True),
    "value_epochs": count(),
    "value_minibatch_trials": count(),
    # RL²'s attention policies (the Transformer's width: even, divisible by its heads)
    "policy": lambda value, config: (
        value in ("gru", "snail", "transformer")
        and (
            value != "transformer"
            or transformer_shape(config.transformer_width, config.transformer_heads)
        )
    ),
    "transformer_width": lambda value, config: (
        count(2)(value, config)
        and (config.policy != "transformer" or transformer_shape(value, config.transformer_heads))
    ),
    "transformer_heads": lambda value, config: (
        count()(value, config)
        and (config.policy != "transformer" or transformer_shape(config.transformer_width, value))
    ),
    "transformer_blocks": count(),
    "snail_width": count(),
    "snail_filters": count(),
    "snail_key_size": count(),
    "snail_value_size": count(),
    # VariBAD
    "encoder_hidden_size": count(),
    "embedding_size": count(),
    "decoder_hidden_sizes": widths,
    "policy_hidden_sizes": widths,
    "vae_learning_rate": number(0, low_open=True),
    "vae_updates": count(),
    "vae_batch_trials": count(),
    "vae_buffer_trials": count(),
    "elbo_steps": count(),
    "decode_steps": count(),
    # PEARL
    "num_train_tasks": count(),
    "batch_size": count(),
    "context_batch_size": count(),
    "num_initial_episodes": count(),
    "num_tasks_sample": lambda value, config: (
        integer(value) and 1 <= value <= config.num_train_tasks
    ),
    "num_prior_episodes": count(),
    "num_posterior_episodes": count(0),
    "num_extra_posterior_episodes": count(0),
    "num_gradient_steps": count(0),
    "latent_size": count(),
    "use_next_obs_in_context": flag,
    "reward_scale": number(0, low_open=True),
    "kl_weight": number(0),
    "tau": number(0, 1, low_open=True),
    "alpha": number(0, low_open=True),  # PEARL's log α; Thompson's Beta prior
    "automatic_entropy": flag,
    "policy_mean_reg": number(0),
    "policy_std_reg": number(0),
    "replay_buffer_size": count(),
    "eval_every": count(0),
    "num_eval_tasks": count(),
    "eval_deterministic": flag,
    "max_envs": count(),
    # the reference agents
    "epsilon": number(0, 1),
    "c": number(0),
    "beta": number(0, low_open=True),
    "reward_noise_std": number(0, low_open=True),
}
VALID_IN = {
    (UCB1Config, "alpha"): number(0),
    (UCB1Config, "beta"): number(0),
    (ReptileConfig, "learn_inner_lr"): lambda value, config: value is False,
    (MultiTaskConfig, "learn_inner_lr"): lambda value, config: value is False,
}


def valid(config_class, key):
    return VALID_IN.get((config_class, key), VALID[key])


AGENT_CLASSES = list(dict.fromkeys(spec.config_class for spec in REGISTRY.values()))
REFERENCE_CLASSES = list(dict.fromkeys(spec.config_class for spec in REFERENCE_AGENTS.values()))
CLASSES = AGENT_CLASSES + REFERENCE_CLASSES
OVERRIDES = {  # the registry's variants of a config class (e-maml's exploration_weight, say)
    config_class: [
        spec.overrides for spec in REGISTRY.values() if spec.config_class is config_class
    ]
    or [{}]
    for config_class in CLASSES
}
assert len(AGENT_CLASSES) == 11 and ThompsonConfig in REFERENCE_CLASSES


def test_the_spec_has_every_key_of_every_config():
    keys = {f.name for c in CLASSES for f in dataclasses.fields(c)}
    assert keys == set(VALID)


SPECIAL_NUMBERS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 0.5, 1e-300, 1e300, -1]
HUGE_INTS = [2**31, 2**32 - 1, 2**32, 2**63, 2**64, -(2**63), 10**30, 10**400, -(10**400)]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.sampled_from(SPECIAL_NUMBERS + HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
EDGES = st.sampled_from(  # the edges of the valid ranges, and just past them
    [
        *(0, 1, 2, -1, 0.0, 1.0, 0.5, 1e-9, 2**32 - 1, None, True, False, [], [1], [0], [8, 8]),
        *("auto", "cpu", "cuda", "cuda:0", "cuda:9", "gpu", "cpu:0"),  # devices
    ]
)
VALUES = st.one_of(  # YAML-like: scalars, lists (of widths, say) and mappings, nested once
    EDGES,
    EDGES,
    SCALARS,
    st.lists(st.one_of(st.integers(-2, 64), SCALARS, st.lists(SCALARS, max_size=2)), max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), SCALARS, max_size=2),
)


def keys_of(config_class):
    """Mostly the class's keys, sometimes any text (an unknown key, or another class's)."""
    real_keys = st.sampled_from([f.name for f in dataclasses.fields(config_class)])
    return st.one_of(real_keys, real_keys, real_keys, st.text(max_size=8))


def check_build(config_class, overrides, values):
    try:
        config = build_config(config_class, {**overrides, **values})
    except ValueError as error:
        assert_one_line_value_error(error)
        return None
    names = {f.name for f in dataclasses.fields(config_class)}
    assert set(values) <= names  # an unknown key never passes
    for key in names:
        value = getattr(config, key)
        assert valid(config_class, key)(value, config), f"{key}={value!r} accepted"
    return config


def fuzz_build(config_class, data):
    overrides = data.draw(st.sampled_from(OVERRIDES[config_class]))
    values = data.draw(st.dictionaries(keys_of(config_class), VALUES, max_size=3))
    check_build(config_class, overrides, values)


@pytest.mark.parametrize("config_class", AGENT_CLASSES, ids=lambda c: c.__name__)
@FUZZ
@given(data=st.data())
def test_fuzz_build_config_raises_a_value_error_or_returns_a_valid_config(config_class, data):
    """Every registered agent's config class, under each of its registry variants' overrides,
    with any YAML-like values for real and unknown keys."""
    fuzz_build(config_class, data)


@FUZZ
@given(data=st.data())
def test_fuzz_build_config_of_the_reference_agents(data):
    fuzz_build(data.draw(st.sampled_from(REFERENCE_CLASSES)), data)


EDGE_VALUES = [
    *[0, 1, 2, -1, 10**400, 2**32 - 1, 2**32],
    *[0.0, 1.0, 0.5, -0.5, 1.5, 1e-9, math.nan, math.inf],
    *[None, True, False, "1", [], [1], [0], [8, 8], [1.0], {"goal": [0.1, 0.2]}, {}],
]


def as_built(value):
    """What build_config makes of a YAML value before the config checks it."""
    return tuple(value) if isinstance(value, list) else value


@pytest.mark.parametrize("config_class", CLASSES, ids=lambda c: c.__name__)
def test_every_key_accepts_exactly_the_values_the_spec_allows(config_class):
    """Each key alone, at and just past the edges of its range: build_config accepts a value
    exactly when the spec says the config it makes, the other keys at their defaults, is
    valid (a key can make another's value invalid: num_train_tasks=1, num_tasks_sample=5)."""
    defaults = dataclasses.asdict(config_class())
    for key in defaults:
        for value in EDGE_VALUES:
            wanted = types.SimpleNamespace(**{**defaults, key: as_built(value)})
            allowed = all(valid(config_class, k)(v, wanted) for k, v in vars(wanted).items())
            try:
                config = build_config(config_class, {key: value})
            except ValueError as error:
                assert not allowed, f"{key}={value!r} refused: {error}"
                assert_one_line_value_error(error)
            else:
                assert allowed, f"{key}={value!r} accepted"
                assert getattr(config, key) == as_built(value)


def test_the_fuzz_values_reach_valid_configs_too():
    """Not only errors: in-range values of the right type build (the fuzz is not vacuous)."""
    config = check_build(MAMLConfig, {}, {"discount": 1, "hidden_sizes": [3], "horizon": 2})
    assert config.discount == 1.0 and config.hidden_sizes == (3,)


SET_ITEMS = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda key, value: f"{key}={value}",
        st.sampled_from(["discount", "hidden_sizes", "seed", "task", "horizon", "fisher_tasks"]),
        st.one_of(
            st.text(max_size=20),
            st.text(alphabet="[]{}:,.-+0123456789eEnaifty !&*'\"\n\t#", max_size=20),
        ),
    ),
)


@FUZZ
@given(st.lists(SET_ITEMS, max_size=4))
def test_fuzz_parse_sets_raises_a_value_error_or_gives_a_mapping(items):
    try:
        values = parse_sets(items)
    except ValueError as error:
        assert_one_line_value_error(error)
        return
    assert isinstance(values, dict) and all(isinstance(k, str) and k for k in values)
    check_build(MAMLConfig, {}, values)  # and whatever they parse to, build_config copes
