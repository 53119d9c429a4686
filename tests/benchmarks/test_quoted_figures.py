"""Every prose figure a page quotes is what its committed result gives (the registry,
tests/benchmarks/quoted_figures.py; the blocks a benchmark renders: test_figure_blocks.py)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from benchmarks.common.quoted import ROOT, Quote, block, prose, quote_error, said, write_block
from tests.benchmarks.quoted_figures import QUOTES


def test_a_block_is_replaced_in_place(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- x:begin -->\nold\n<!-- x:end -->\nafter\n")
    assert write_block(page, "x", "new\n")
    assert page.read_text() == "before\n<!-- x:begin -->\nnew\n<!-- x:end -->\nafter\n"
    assert block(page, "x") == "new\n"
    assert not write_block(page, "y", "z\n") and block(page, "y") is None


def fields(text: str) -> int:
    """How many figures a quote's text has room for."""
    names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    return max(int(name) for name in names) + 1 if names and all(names) else len(names)


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: f"{q.page}:{q.text[:40]}")
def test_a_quoted_figure_is_what_its_result_gives(quote: Quote) -> None:
    assert len(quote.figures()) == fields(quote.text), "a figure computed but not quoted is not checked"
    assert quote_error(quote) is None, quote_error(quote)


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: f"{q.page}:{q.text[:40]}")
def test_every_figure_of_a_quote_is_caught_when_the_page_changes_it(quote: Quote, tmp_path: Path) -> None:
    """A page that says the passage once, with any one figure changed, fails its check (it would
    not if the page said the passage twice or the figure were not in the passage)."""
    figures = list(quote.figures())
    said = prose(quote.text.format(*figures))
    page = tmp_path / quote.page
    page.parent.mkdir(parents=True, exist_ok=True)
    original = prose((ROOT / quote.page).read_text())
    for index, figure in enumerate(figures):
        changed = prose(quote.text.format(*figures[:index], f"{figure}9", *figures[index + 1 :]))
        page.write_text(original.replace(said, changed))
        assert quote_error(quote, tmp_path) is not None, f"figure {index} ({figure!r}) is not checked"


def test_a_changed_figure_is_caught(tmp_path: Path) -> None:
    quote = next(q for q in QUOTES if q.page == "README.md" and "{}" in q.text)
    figure = quote.figures()[0]
    page = tmp_path / quote.page
    page.write_text((ROOT / quote.page).read_text())
    assert quote_error(quote, tmp_path) is None
    said = quote.text.format(*quote.figures())
    changed = said.replace(figure, figure + "1", 1)
    page.write_text(" ".join(page.read_text().split()).replace(" ".join(said.split()), changed))
    error = quote_error(quote, tmp_path)
    assert error is not None and figure in error and quote.source in error


def test_every_quoting_page_is_registered() -> None:
    pages = {q.page for q in QUOTES}
    assert {"README.md", "docs/sharpening.md"} <= pages
    for page in pages:
        assert (ROOT / page).exists(), page


def test_a_figure_at_either_end_of_a_passage_is_read_whole() -> None:
    assert said("reached -83.7", "greedy reached -83.7).")
    assert not said("reached -83.7", "greedy reached -83.79).")
    assert not said("34 requests", "it sent 134 requests")
    assert not said("1.5 s", "it took 21.5 s") and said("1.5 s", "it took 1.5 s")
