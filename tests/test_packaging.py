"""The wheel installs envs/ and agents/ as metarl.envs and metarl.agents, never top-level."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
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
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("metarl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
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
    ]:
        assert module in wheel_files


def test_wheel_declares_the_console_script(wheel_files, tmp_path):
    assert any(name.endswith("entry_points.txt") for name in wheel_files)


def test_env_modules_import_under_metarl():
    import metarl.envs.ant
    import metarl.envs.half_cheetah

    assert Path(metarl.envs.ant.__file__).parent == ROOT / "envs"
    assert metarl.envs.half_cheetah.HalfCheetahVelEnv.__module__ == "metarl.envs.half_cheetah"
