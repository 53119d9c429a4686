"""The figure blocks a study's report renders into docs/performance.md (benchmarks/common/quoted.py
has the block format): which block, from which committed result, rendered how, and when to rewrite it."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.quoted import ROOT, write_block

PERFORMANCE_PAGE = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results"


def linked_from(page: Path, text: str) -> str:
    """`text` (links written from the repository root) with its links to benchmarks/ made relative
    to `page`."""
    return text if page.parent == ROOT else text.replace("](benchmarks/", "](../benchmarks/")


@dataclass(frozen=True)
class FigureBlock:
    """Block `name`, which `pages` quote, rendered by `render` from the committed result `result`."""

    name: str
    result: Path
    render: Callable[[dict[str, Any]], str]
    pages: tuple[Path, ...] = (PERFORMANCE_PAGE,)

    def text_for(self, page: Path, result: dict[str, Any] | None = None) -> str:
        """The block as `page` quotes it (from the committed result unless one is given)."""
        return linked_from(page, self.render(result or json.loads(self.result.read_text())))

    def write(self) -> None:
        """Render the block from the committed result into every page that quotes it."""
        result = json.loads(self.result.read_text())
        for page in self.pages:
            if not write_block(page, self.name, self.text_for(page, result)):
                raise ValueError(f"{page} has no {self.name} block")


def requote(out: Path, blocks: tuple[FigureBlock, ...]) -> None:
    """Rewrite the blocks whose committed result a report has just written to `out` (a report
    written anywhere else leaves the pages alone)."""
    for figures in blocks:
        if figures.result.parent.resolve() == out.resolve() and figures.result.exists():
            figures.write()


def run_stamp(module: str) -> dict[str, str]:
    """When a result was made and the command line (`python -m module ...`) that made it."""
    command = " ".join(["python -m", module, shlex.join(sys.argv[1:])]).strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "command": command}
