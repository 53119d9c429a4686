"""Print `-v PATH:PATH:ro` for every pip configuration file of this machine and every local path it names.

A container build that mounts these runs pip the way this machine does (its index mirrors, local
wheel folders, constraints and CA bundle), without the repository naming any of them. The user's
own configuration (found under this HOME) and pip settings given as PIP_* environment variables,
which a build would not see, are merged into one generated file that the build sees as root's
user configuration.
"""

from __future__ import annotations

import ast
import configparser
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG_FILE = re.compile(r"^\s+(/\S+), exists: True$")
SETTING = re.compile(r"^\s+[\w.:-]+: (.+)$")
ENV_SETTING = re.compile(r"^\s+PIP_(\w+)=(.+)$")  # `pip config debug` prints PIP_NAME='value'
NOT_A_SETTING = {"config-file"}  # PIP_CONFIG_FILE names a file; it sets nothing itself
BUILD_USER_CONFIG = Path("/root/.config/pip/pip.conf")  # where pip in the build (as root) finds a user's
GENERATED = Path(tempfile.gettempdir()) / "whetstone-image-pip.conf"


def local_paths(pip_config_debug: str) -> list[Path]:
    """The existing files and folders that `pip config debug` output mentions, outermost only."""
    found: set[Path] = set()
    for line in pip_config_debug.splitlines():
        if match := CONFIG_FILE.match(line):
            found.add(Path(match.group(1)))
        elif match := SETTING.match(line):
            found.update(paths_in(match.group(1)))
    for value in environment_settings(pip_config_debug).values():
        found.update(paths_in(value))
    return sorted(p for p in found if not any(parent in found for parent in p.parents))


def paths_in(value: str) -> set[Path]:
    """The existing local paths a setting's value names (a local index: the folder beside its pages)."""
    found = set()
    for word in value.split():
        path = Path(word.removeprefix("file://"))
        if word.startswith("file://"):  # a local index: its pages link to files beside it
            path = path.parent
        if path.is_absolute() and path.exists():
            found.add(path)
    return found


def environment_settings(pip_config_debug: str) -> dict[str, str]:
    """pip settings given as PIP_* environment variables, by option name (PIP_FIND_LINKS: find-links)."""
    settings = {}
    for line in pip_config_debug.splitlines():
        if match := ENV_SETTING.match(line):
            name = match.group(1).lower().replace("_", "-")
            if name not in NOT_A_SETTING:
                settings[name] = str(ast.literal_eval(match.group(2)))
    return settings


def user_config_files(pip_config_debug: str) -> list[Path]:
    """The user-level pip configuration files that exist (the `user:` section)."""
    files, in_user = [], False
    for line in pip_config_debug.splitlines():
        if not line.startswith(" "):
            in_user = line == "user:"
        elif in_user and (match := CONFIG_FILE.match(line)):
            files.append(Path(match.group(1)))
    return files


def merged_user_config(pip_config_debug: str) -> str | None:
    """The user's pip configuration with the environment's settings over it; None without either."""
    users, settings = user_config_files(pip_config_debug), environment_settings(pip_config_debug)
    if not users and not settings:
        return None
    config = configparser.ConfigParser(interpolation=None)
    config.read(users)
    if settings and not config.has_section("global"):
        config.add_section("global")
    for name, value in settings.items():
        config.set("global", name, value)
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def mount_flags(pip_config_debug: str) -> list[str]:
    """`-v` flags for the build: the local paths, and the user configuration (the user's files and
    the environment's settings, merged) where pip in the build looks for it."""
    users = set(user_config_files(pip_config_debug))
    flags = [f"-v {p}:{p}:ro" for p in local_paths(pip_config_debug) if p not in users]
    merged = merged_user_config(pip_config_debug)
    if merged is not None:
        GENERATED.write_text(merged)
        flags.append(f"-v {GENERATED}:{BUILD_USER_CONFIG}:ro")
    return flags


def main() -> None:
    """Print the mount flags on one line."""
    debug = subprocess.run(
        [sys.executable, "-m", "pip", "config", "debug"], capture_output=True, text=True, check=True
    ).stdout
    print(" ".join(mount_flags(debug)))


if __name__ == "__main__":
    main()
