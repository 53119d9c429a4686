"""The figures docs quote from the studies other than the frontier (see quoted_figures.py)."""

from __future__ import annotations

from benchmarks.common.quoted import Quote

STUDIES: list[Quote] = []
