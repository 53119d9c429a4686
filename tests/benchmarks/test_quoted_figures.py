"""Every figure block a page quotes is what its benchmark renders from the committed result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.capacity.report import QUOTING_PAGES, RESULTS, quoted_for
from benchmarks.common.quoted import block, write_block


@pytest.mark.parametrize("page", QUOTING_PAGES, ids=lambda p: p.name)
def test_the_capacity_figures_are_the_committed_result(page: Path) -> None:
    result = json.loads((RESULTS / "capacity.json").read_text())
    quoted = block(page, "capacity")
    assert quoted is not None, f"{page} has no capacity block"
    assert quoted == quoted_for(page, result), (
        f"{page} quotes other capacity figures than benchmarks/results/capacity/capacity.json; "
        "run `python -m benchmarks.capacity --report-only`"
    )


def test_a_block_is_replaced_in_place(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- x:begin -->\nold\n<!-- x:end -->\nafter\n")
    assert write_block(page, "x", "new\n")
    assert page.read_text() == "before\n<!-- x:begin -->\nnew\n<!-- x:end -->\nafter\n"
    assert block(page, "x") == "new\n"
    assert not write_block(page, "y", "z\n") and block(page, "y") is None
