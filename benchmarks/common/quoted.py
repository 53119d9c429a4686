"""Figures quoted in README and docs, checked against a committed result so they cannot drift.

Two shapes, one rule (a page says what its result gives, and a test checks it):

- a block between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, which the benchmark that owns
  NAME renders from its result JSON (`write_block` puts it in place, `block` reads it back);
- a `Quote`: a figure in a page's prose, with a function computing it from the committed result
  (the registry is tests/benchmarks/quoted_figures.py; `quote_error` checks one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Quote:
    """A figure a page quotes in its prose: `text` as the page says it, with `{}` where each
    figure stands, and `figures`, which computes those figures from the committed result."""

    page: str  # the quoting page, relative to the repository root
    text: str  # line breaks and runs of spaces in the page count as one space
    source: str  # the committed result the figures come from, relative to the repository root
    figures: Callable[[], Sequence[str]]


def prose(text: str) -> str:
    """`text` with every run of whitespace as one space, as a page's wrapped lines read."""
    return " ".join(text.split())


def said(expected: str, page: str) -> bool:
    """Whether `page` says `expected`, a figure at either end whole: "-83.7" is not said by
    "-83.79", nor "34 requests" by "134 requests"."""
    before = r"(?<![\d.+-])" if expected[:1].isdigit() or expected[:1] in "+-" else ""
    after = r"(?!\.?\d)" if expected[-1:].isdigit() else ""
    return re.search(before + re.escape(expected) + after, page) is not None


def quote_error(quote: Quote, root: Path = ROOT) -> str | None:
    """Why `quote` does not hold (its page does not say what its result gives), None when it does."""
    expected = prose(quote.text.format(*quote.figures()))
    if said(expected, prose((root / quote.page).read_text())):
        return None
    return f"{quote.page} does not say {expected!r}, which is what {quote.source} gives"
