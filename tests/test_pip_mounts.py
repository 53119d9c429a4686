"""deploy/images/pip_mounts.py: which of this machine's pip files a container build gets to see."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
