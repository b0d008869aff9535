"""Agent configs from defaults, a YAML file and `--set key=value` overrides
(docs/architecture.md §7)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from metarl.envs.checks import describe

_shown = functools.partial(describe, plain_numbers=True)
"""A value as the config errors show it (one line, numpy scalars as numbers)."""


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["key=value", ...]` → dict, each value parsed as YAML (`[32, 32]`, `true`, `0.05`); an
    item without `=` or a key, or whose value is not valid YAML, is a `ValueError` naming it."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set takes key=value, got {_shown(item)}")
        try:
            values[key] = yaml.safe_load(raw)
        except Exception as error:  # YAML's constructors raise more than YAMLError
            raise ValueError(
                f"--set {_shown(item)}: the value is not valid YAML ({_yaml_problem(error)})"
            ) from None
    return values


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping of keys to values; a file that cannot be read, is not UTF-8 text
    (a binary file), is not valid YAML or holds no mapping is a `ValueError` naming it."""
    name = str(path) if str(path).isprintable() else repr(str(path))  # as the messages show it
    try:
        raw = Path(path).read_bytes()
    except (OSError, ValueError) as error:  # ValueError: a path with a NUL byte
        raise ValueError(f"cannot read config file {name}: {_one_line(error)}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"config file {name} is not YAML text: the byte at offset {error.start} is not "
            "UTF-8 (a binary file?)"
        ) from None
    try:
        data = yaml.safe_load(text)
    except Exception as error:  # YAML's constructors raise more than YAMLError
        raise ValueError(f"config file {name} is not valid YAML: {_yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {name} must hold a mapping of keys to values")
    return dict(data)


def build_config(config_class: type, values: Mapping[str, Any]) -> Any:
    """`config_class(**values)` after checking every key exists and every value's type (YAML
    ints become floats where a float goes, lists tuples); the config's own checks then check
    the values. Every bad key or value is a one-line `ValueError` that names it."""
    hints = _field_types(config_class)
    names = list(hints)
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ValueError(
            f"unknown config key(s) [{', '.join(_shown(key) for key in unknown)}] for "
            f"{config_class.__name__}; the keys are: {', '.join(names)}"
        )
    checked = {key: _check(key, value, hints[key]) for key, value in values.items()}
    return config_class(**checked)


@functools.cache
def _field_types(config_class: type) -> dict[str, Any]:
    """The config class's field names, in order, and their types (evaluated once per class)."""
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


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
    raise ValueError(f"config key {key!r} must be {_describe(hint)}, got {_shown(value)}")


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
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _INVALID
        try:
            return float(value)
        except OverflowError:  # an int beyond float's range: the field's check names its range
            return value
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


def _yaml_problem(error: BaseException) -> str:
    """One line on what is wrong with some YAML: the problem and where, without the echo of
    the text that a YAML error's message carries."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = ", ".join(part for part in (error.context, error.problem) if part)
        return f"{what or 'invalid YAML'}{where}"
    if isinstance(error, yaml.reader.ReaderError):
        char = error.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        return f"{error.reason}: character {shown} at position {error.position}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    """An error's message on one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
