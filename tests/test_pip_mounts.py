"""deploy/images/pip_mounts.py: which of this machine's pip files a container build gets to see."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "pip_mounts", Path(__file__).resolve().parents[1] / "deploy" / "images" / "pip_mounts.py"
)
assert spec is not None and spec.loader is not None
pip_mounts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pip_mounts)


def test_config_files_and_the_local_paths_they_name_outermost_only(tmp_path: Path) -> None:
    config, wheels, index = tmp_path / "pip.conf", tmp_path / "wheels", tmp_path / "mirror" / "simple"
    for folder in (wheels / "sub", index):
        folder.mkdir(parents=True)
    config.touch()
    debug = "\n".join([
        "global:",
        f"  {config}, exists: True",
        f"    global.find-links: {wheels} {wheels / 'sub'}",
        f"    global.extra-index-url: file://{index} https://example.invalid/simple",
        f"  {tmp_path / 'missing.conf'}, exists: False",
        "    global.timeout: 180",
    ])
    assert pip_mounts.local_paths(debug) == [tmp_path / "mirror", config, wheels]


def test_environment_settings_are_merged_over_the_user_config_into_roots_user_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels, user = tmp_path / "wheels", tmp_path / "home" / "pip.conf"
    wheels.mkdir()
    user.parent.mkdir()
    user.write_text("[global]\ntimeout = 60\nextra-index-url = https://mirror.invalid/simple\n")
    monkeypatch.setattr(pip_mounts, "GENERATED", tmp_path / "generated.conf")
    debug = "\n".join([
        "env_var:",
        f"  PIP_FIND_LINKS='{wheels}'",
        "  PIP_TIMEOUT='180'",
        f"  PIP_CONFIG_FILE='{tmp_path / 'other.conf'}'",
        "env:",
        "user:",
        f"  {user}, exists: True",
        "    global.timeout: 60",
    ])
    generated = tmp_path / "generated.conf"
    assert pip_mounts.mount_flags(debug) == [  # the user's file itself is not mounted: it is merged
        f"-v {wheels}:{wheels}:ro", f"-v {generated}:/root/.config/pip/pip.conf:ro",
    ]
    merged = configparser.ConfigParser()
    merged.read_string(generated.read_text())
    assert dict(merged["global"]) == {  # the environment wins, as it does for pip itself
        "timeout": "180", "extra-index-url": "https://mirror.invalid/simple", "find-links": str(wheels),
    }


def test_without_user_config_or_environment_settings_only_the_files_are_mounted(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.touch()
    debug = "\n".join(["env_var:", "env:", "global:", f"  {config}, exists: True", "user:"])
    assert pip_mounts.mount_flags(debug) == [f"-v {config}:{config}:ro"]
