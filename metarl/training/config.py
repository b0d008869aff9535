"""Agent configs from defaults, a YAML file and `--set key=value` overrides
(docs/architecture.md §7)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["key=value", ...]` → dict, each value parsed as YAML (`[32, 32]`, `true`, `0.05`)."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value, got {item!r}")
        values[key.strip()] = yaml.safe_load(raw)
    return values


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping of keys to values."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read config file {path}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path} must hold a mapping of keys to values")
    return dict(data)


def build_config(config_class: type, values: Mapping[str, Any]) -> Any:
    """`config_class(**values)` after checking every key exists and every value's type."""
    hints = typing.get_type_hints(config_class)
    names = [f.name for f in dataclasses.fields(config_class)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} for {config_class.__name__}; "
            f"the keys are: {', '.join(names)}"
        )
    checked = {key: _check(key, value, hints[key]) for key, value in values.items()}
    return config_class(**checked)


def config_dict(config: Any) -> dict[str, Any]:
    """A config as plain YAML-ready values (tuples become lists)."""
    return yaml.safe_load(yaml.safe_dump(_plain(dataclasses.asdict(config))))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check(key: str, value: Any, hint: Any) -> Any:
    """`value` converted to the field type `hint`, or a `ValueError` naming the key."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    for option in options:
        converted = _convert(value, option)
        if converted is not _INVALID:
            return converted
    raise ValueError(f"config key {key!r} must be {_describe(hint)}, got {value!r}")


_INVALID = object()


def _convert(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return None if value is None else _INVALID
    if hint is bool:
        return value if isinstance(value, bool) else _INVALID
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else _INVALID
    if hint is str:
        return value if isinstance(value, str) else _INVALID
    if origin in (Sequence, tuple, list) or hint in (tuple, list):
        if not isinstance(value, list | tuple):
            return _INVALID
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [value_ if item is Any else _convert(value_, item) for value_ in value]
        return _INVALID if any(i is _INVALID for i in items) else tuple(items)
    if origin is dict or hint is dict:
        return dict(value) if isinstance(value, Mapping) else _INVALID
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _describe(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")
