"""The layer rule of docs/architecture.md §1: a module imports only from its own layer or the
layers before it (envs → policies → sampling → backend → agents → training → cli), so the data
flows one way. Read from the source with `ast`, lazy imports inside functions included. The
supervised few-shot half (`metarl.fewshot`, issue 19) sits beside the agents: it builds on their
config checks and seeding, and training and the CLI drive it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["envs", "policies", "sampling", "backend", "agents", "fewshot", "training", "cli"]
FOLDERS = {  # where each layer's source lives (envs/ and agents/ install under metarl)
    "envs": ROOT / "envs",
    "policies": ROOT / "metarl" / "policies",
    "sampling": ROOT / "metarl" / "sampling",
    "backend": ROOT / "metarl" / "backend",
    "agents": ROOT / "agents",
    "fewshot": ROOT / "fewshot",
    "training": ROOT / "metarl" / "training",
    "cli": ROOT / "metarl" / "cli",
}


def layer_of(module: str) -> str | None:
    """The layer of a `metarl.X...` module name (None for `metarl` itself and non-metarl)."""
    parts = module.split(".")
    if parts[0] != "metarl" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name `path` imports (`from a.b import c` gives a.b and a.b.c)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_every_package_folder_is_a_layer():
    packages = {p.parent.name for p in (ROOT / "metarl").glob("*/__init__.py")}
    assert packages == {name for name, folder in FOLDERS.items() if folder.parent.name == "metarl"}
    loose = {p.name for p in (ROOT / "metarl").glob("*.py")}
    assert loose == {"__init__.py", "__main__.py"}, "every module belongs to a layer folder"


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_from_a_later_layer(layer):
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(FOLDERS[layer].rglob("*.py"))
        for name in imported_modules(path)
        if layer_of(name) not in (None, *allowed)
    ]
    assert not violations, violations


def test_the_rule_catches_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from metarl.training.trainer import train\n")
    assert layer_of(imported_modules(module)[0]) == "training"
