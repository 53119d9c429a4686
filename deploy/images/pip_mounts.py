"""Print `-v PATH:PATH:ro` for every pip configuration file of this machine and every local path it names.

A container build that mounts these runs pip the way this machine does (its index mirrors, local
wheel folders, constraints and CA bundle), without the repository naming any of them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CONFIG_FILE = re.compile(r"^\s+(/\S+), exists: True$")
SETTING = re.compile(r"^\s+[\w.:-]+: (.+)$")


def local_paths(pip_config_debug: str) -> list[Path]:
    """The existing files and folders that `pip config debug` output mentions, outermost only."""
    found: set[Path] = set()
    for line in pip_config_debug.splitlines():
        if match := CONFIG_FILE.match(line):
            found.add(Path(match.group(1)))
        elif match := SETTING.match(line):
            for word in match.group(1).split():
                path = Path(word.removeprefix("file://"))
                if word.startswith("file://"):  # a local index: its pages link to files beside it
                    path = path.parent
                if path.is_absolute() and path.exists():
                    found.add(path)
    return sorted(p for p in found if not any(parent in found for parent in p.parents))


def main() -> None:
    """Print the mount flags on one line."""
    debug = subprocess.run(
        [sys.executable, "-m", "pip", "config", "debug"], capture_output=True, text=True, check=True
    ).stdout
    print(" ".join(f"-v {p}:{p}:ro" for p in local_paths(debug)))


if __name__ == "__main__":
    main()
