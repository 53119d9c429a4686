"""Figures quoted in README and docs, written from a committed result so they cannot drift.

A quoted block sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in a markdown file.
The benchmark that owns NAME renders the block from its result JSON and `write_block` puts it
in place; `block` reads it back, so a test can compare what a page says with what the JSON gives.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {re.escape(name)}:begin -->\n)(.*?)(<!-- {re.escape(name)}:end -->)", re.S)


def block(page: Path, name: str) -> str | None:
    """The text of block NAME in `page`, None when the page has no such block."""
    found = _pattern(name).search(page.read_text())
    return None if found is None else found.group(2)


def write_block(page: Path, name: str, text: str) -> bool:
    """Replace block NAME in `page` with `text` (ending in a newline); False when there is none."""
    content = page.read_text()
    pattern = _pattern(name)
    if pattern.search(content) is None:
        return False
    page.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(3), content, count=1))
    return True
