"""`metarl train AGENT --help`: the agent's config keys with their types, defaults and
docstrings, read from the config dataclasses themselves so the help never drifts from the code."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import typing
from typing import Any

from metarl.agents.registry import REGISTRY, agent_spec
from metarl.fewshot.data import is_fewshot_task
from metarl.fewshot.registry import FEWSHOT_REGISTRY, fewshot_spec


def field_docs(config_class: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), from the class
    and its bases; fields without one are left out."""
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen install): no docstrings
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            doc = _string(following)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and doc:
                docs[node.target.id] = " ".join(inspect.cleandoc(doc).split())
    return docs


def config_help(agent: str, env: str | None = None) -> str:
    """The config keys of `agent` (a registry name) as help text: name, type and default (with
    the registry's overrides, as `metarl train AGENT` starts from), then the docstring. A name
    of both halves (fo-maml, meta-sgd, reptile) is the RL agent unless `env` is a few-shot
    task distribution; one of the few-shot half alone is that learner."""
    few_shot = env is not None and is_fewshot_task(env)
    if few_shot or (agent in FEWSHOT_REGISTRY and agent not in REGISTRY):
        spec = fewshot_spec(agent)
    else:
        spec = agent_spec(agent)
    hints = typing.get_type_hints(spec.config_class)
    docs = field_docs(spec.config_class)
    defaults = spec.config_class(**spec.overrides)
    lines = [
        f"config keys of {agent} (--set KEY=VALUE, or a --config YAML file; "
        f"{spec.config_class.__name__}):"
    ]
    if agent in FEWSHOT_REGISTRY and agent in REGISTRY and not few_shot:
        lines.insert(
            0, f"(the few-shot {agent}'s keys: metarl train {agent} --env sinusoid --help)"
        )
    for item in dataclasses.fields(spec.config_class):
        kind = _describe(hints[item.name])
        value = _yaml_value(getattr(defaults, item.name))
        lines.append(f"  {item.name} ({kind}, default {value})")
        if item.name in docs:
            lines += textwrap.wrap(
                docs[item.name], width=96, initial_indent="      ", subsequent_indent="      "
            )
    return "\n".join(lines)


def _string(node: ast.stmt) -> str | None:
    """The string of an expression statement that is a string literal."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return node.value.value if isinstance(node.value.value, str) else None
    return None


def _describe(hint: Any) -> str:
    """A type hint as a short name (`int | None`, `Sequence[int]`)."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _yaml_value(value: Any) -> str:
    """A default as it is written in YAML (`[64, 64]`, `null`, `true`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)
