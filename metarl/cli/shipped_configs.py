"""The benchmark configs that ship with metarl (`metarl/cli/configs/*.yaml`), so that
`metarl train ... --config rl2-bandit` works after `pip install .`, outside the repository."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "configs"
"""Where the shipped configs are installed."""


def shipped_configs() -> dict[str, Path]:
    """Each shipped config's name (its file name without `.yaml`) → its file."""
    return {path.stem: path for path in sorted(CONFIG_DIR.glob("*.yaml"))}


def config_path(name: str) -> Path:
    """`name` as a config file: a path that exists, else a shipped config's name (with or
    without `.yaml`); a one-line `ValueError` listing the shipped ones if it is neither."""
    path = Path(name)
    if path.exists():
        return path
    shipped = shipped_configs()
    stem = path.name.removesuffix(".yaml")
    if path.parent == Path(".") and stem in shipped:
        return shipped[stem]
    raise ValueError(
        f"no config file {name}, and no shipped config of that name (they are: "
        f"{', '.join(shipped)})"
    )
