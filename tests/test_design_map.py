"""docs/design.md's map names every module of server/, clients/ and training/ (one line each)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_map_names_every_module() -> None:
    page = (ROOT / "docs" / "design.md").read_text()
    start = page.index("Every module, one line each:")
    listed = set(re.findall(r"^\s+([a-z_]+\.py)\s", page[start:], re.M))
    missing = [str(path.relative_to(ROOT)) for room in ("server", "clients", "training")
               for path in sorted((ROOT / room).rglob("*.py")) if path.name not in listed]
    assert not missing, "docs/design.md's map lacks: " + ", ".join(missing)
