"""The capacity, pruning, serving, stepwise and frontend-ceiling figures README and docs quote are what
each study's report renders from its committed result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import frontend_ceiling, pruning, stepwise
from benchmarks.capacity import report as capacity
from benchmarks.common.figure_blocks import ROOT, FigureBlock, linked_from, requote
from benchmarks.common.quoted import block
from benchmarks.serving import report as serving

BLOCKS = (*capacity.BLOCKS, *pruning.BLOCKS, *serving.BLOCKS, *stepwise.BLOCKS, *frontend_ceiling.BLOCKS)
HOW = {"capacity": "benchmarks.capacity", "pruning": "benchmarks.pruning", "serving": "benchmarks.serving",
       "stepwise_64tokens": "benchmarks.stepwise --max-tokens 64",
       "stepwise_192tokens": "benchmarks.stepwise --max-tokens 192",
       "frontend_ceiling": "benchmarks.frontend_ceiling"}


@pytest.mark.parametrize(
    ("figures", "page"), [(f, p) for f in BLOCKS for p in f.pages], ids=lambda x: getattr(x, "name", None)
)
def test_a_quoted_block_is_what_its_committed_result_renders(figures: FigureBlock, page: Path) -> None:
    quoted = block(page, figures.name)
    assert quoted is not None, f"{page} has no {figures.name} block"
    assert quoted == figures.text_for(page), (
        f"{page.relative_to(ROOT)} quotes other {figures.name} figures than "
        f"{figures.result.relative_to(ROOT)}; run `python -m {HOW[figures.name]} --report-only`"
    )


def test_every_block_has_a_re_run_command() -> None:
    assert {f.name for f in BLOCKS} == set(HOW)


def test_links_are_made_relative_to_the_quoting_page() -> None:
    text = "see [x](benchmarks/results/x.md)"
    assert linked_from(ROOT / "README.md", text) == text
    assert linked_from(ROOT / "docs" / "performance.md", text) == "see [x](../benchmarks/results/x.md)"


def test_blocks_are_rewritten_only_for_the_committed_results(tmp_path: Path) -> None:
    page, committed = tmp_path / "page.md", tmp_path / "committed"
    committed.mkdir()
    result = committed / "r.json"
    page.write_text("a\n<!-- b:begin -->\nold\n<!-- b:end -->\n")
    result.write_text(json.dumps({"x": 1}))
    figures = FigureBlock("b", result, lambda r: f"x is {r['x']}, [link](benchmarks/y.md)\n", (page,))
    requote(tmp_path, (figures,))  # a report written elsewhere: the page stays as it is
    assert block(page, "b") == "old\n"
    requote(committed, (figures,))
    assert block(page, "b") == "x is 1, [link](../benchmarks/y.md)\n"  # the page is not at the root
