"""The wheel installs envs/, agents/ and fewshot/ as metarl.envs, metarl.agents and
metarl.fewshot, never top-level, and declares the `metarl` console script; building it leaves the
repository untouched."""

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_OUTPUTS = ("build", "dist", "metarl.egg-info")
"""What setuptools writes into the source tree it builds from."""


def source_files() -> list[str]:
    """The repository's files, relative to ROOT: tracked ones and untracked ones git does not
    ignore (what a fresh checkout plus the work in progress holds), or, outside a git checkout,
    everything but build outputs and caches."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    skip = {*BUILD_OUTPUTS, ".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
    return [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_file() and not skip & set(path.relative_to(ROOT).parts)
    ]


def snapshot(paths: tuple[str, ...]) -> dict[str, int]:
    """Modification time of every file and folder under ROOT / each of `paths` that exists."""
    found = {}
    for name in paths:
        top = ROOT / name
        if top.exists():
            for path in [top, *top.rglob("*")]:
                found[str(path.relative_to(ROOT))] = path.stat().st_mtime_ns
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a temporary copy of the source, and the repository's build outputs
    before and after."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    before = snapshot(BUILD_OUTPUTS)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("metarl-*.whl")
    return built, before, snapshot(BUILD_OUTPUTS)


@pytest.fixture(scope="module")
def wheel_files(wheel):
    with zipfile.ZipFile(wheel[0]) as archive:
        return archive.namelist()


def test_wheel_maps_envs_and_agents_under_metarl(wheel_files):
    top_level = {name.split("/")[0] for name in wheel_files}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"metarl"}
    for module in [
        "metarl/envs/ant.py",
        "metarl/envs/base.py",
        "metarl/agents/__init__.py",
        "metarl/cli/main.py",
        "metarl/sampling/sampler.py",
        "metarl/agents/parts/trust_region.py",
        "metarl/fewshot/maml.py",
        "metarl/fewshot/data/digits.py",
        "metarl/fewshot/parts/problem.py",
    ]:
        assert module in wheel_files


def test_wheel_ships_the_benchmark_configs_that_the_readme_uses(wheel_files):
    shipped = {Path(n).name for n in wheel_files if n.startswith("metarl/cli/configs/")}
    assert shipped == {p.name for p in (ROOT / "metarl" / "cli" / "configs").glob("*.yaml")}
    assert "rl2-bandit.yaml" in shipped  # README: --config rl2-bandit


def test_wheel_declares_the_console_script(wheel, wheel_files):
    (name,) = [n for n in wheel_files if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel[0]) as archive:
        text = archive.read(name).decode()
    entry_points = configparser.ConfigParser(interpolation=None)
    entry_points.read_string(text)
    assert dict(entry_points["console_scripts"]) == {"metarl": "metarl.cli:main"}, text


def test_building_the_wheel_writes_nothing_into_the_repository(wheel):
    _, before, after = wheel
    assert after == before  # no build/, dist/ or egg-info written or rewritten


def test_env_modules_import_under_metarl():
    import metarl.envs.ant
    import metarl.envs.half_cheetah

    assert Path(metarl.envs.ant.__file__).parent == ROOT / "envs"
    assert metarl.envs.half_cheetah.HalfCheetahVelEnv.__module__ == "metarl.envs.half_cheetah"
