"""A report as a few plain blocks, rendered to Markdown or to one self-contained HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class Code(str):
    """Text shown as code."""


class Strong(str):
    """Text shown in bold."""


Cell = str  # plain text, or Code / Strong
Inline = Sequence[Cell]


def with_code_spans(text: str) -> list[Cell]:
    """Markdown-style text whose `backticked` spans become Code pieces."""
    return [Code(part) if odd else part for odd, part in
            ((i % 2 == 1, part) for i, part in enumerate(text.split("`"))) if part]


@dataclass(frozen=True)
class Heading:
    """A section heading of `level` 1 or 2."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline pieces."""

    parts: Inline


@dataclass(frozen=True)
class Bullets:
    """An unordered list of plain lines."""

    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """A table with a header row."""

    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]


@dataclass(frozen=True)
class Images:
    """PNG files: linked from Markdown, inlined (base64) in HTML."""

    paths: Sequence[Path]


Block = Heading | Paragraph | Bullets | Table | Images

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #1d2330; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #dfe3ea; padding: 4px 10px; text-align: left; }
th { background: #f6f7f9; }
code { background: #f6f7f9; padding: 1px 4px; border-radius: 4px; font-size: 0.9em; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def _md_inline(parts: Inline) -> str:
    text = []
    for part in parts:
        escaped = part.replace("|", "\\|")
        text.append(f"`{escaped}`" if isinstance(part, Code) else
                    f"**{escaped}**" if isinstance(part, Strong) else escaped)
    return "".join(text)


def to_markdown(blocks: Sequence[Block]) -> str:
    """The blocks as Markdown; images are linked by file name (they sit beside the report)."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            lines.append(_md_inline(block.parts))
        elif isinstance(block, Bullets):
            lines += [f"- {_md_inline([item])}" for item in block.items]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("| " + " | ".join("---" for _ in block.header) + " |")
            lines += ["| " + " | ".join(_md_inline([cell]) for cell in row) + " |" for row in block.rows]
        else:
            lines += [f"![{path.stem}]({path.name})" for path in block.paths]
        lines.append("")
    return "\n".join(lines)


def _html_inline(parts: Inline) -> str:
    text = []
    for part in parts:
        escaped = html.escape(part)
        text.append(f"<code>{escaped}</code>" if isinstance(part, Code) else
                    f"<strong>{escaped}</strong>" if isinstance(part, Strong) else escaped)
    return "".join(text)


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The blocks as one HTML page that needs no other file: styles and plots are inline."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_html_inline(block.parts)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline([c])}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            body += [f'<img alt="{html.escape(p.stem)}" src="{_png_data_uri(p)}">' for p in block.paths]
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
