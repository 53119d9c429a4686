"""Answer checkers: does a completion's text give the reference answer? (pure)"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import Literal

CheckerName = Literal["numeric", "exact", "auto"]
CHECKERS: tuple[CheckerName, ...] = ("numeric", "exact", "auto")
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def parse_number(text: str) -> float | None:
    """`text` as a number (thousands commas allowed), or None."""
    cleaned = text.strip().replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def last_number(text: str) -> float | None:
    """The last number written in `text`, or None."""
    found = NUMBER.findall(text)
    return parse_number(found[-1]) if found else None


def numeric_match(text: str, answer: str) -> bool:
    """The last number in `text` equals the numeric answer."""
    expected = parse_number(answer)
    got = last_number(text)
    if expected is None or got is None:
        return False
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


def normalise(text: str) -> str:
    """Lower case, surrounding punctuation and quotes dropped, whitespace collapsed."""
    return " ".join(text.lower().split()).strip(string.punctuation + " ")


def exact_match(text: str, answer: str) -> bool:
    """The normalised text equals the normalised answer."""
    return normalise(text) == normalise(answer)


def auto_match(text: str, answer: str) -> bool:
    """Numeric matching for a numeric answer, exact matching otherwise."""
    if parse_number(answer) is not None:
        return numeric_match(text, answer)
    return exact_match(text, answer)


def extract_answer(text: str, pattern: str | re.Pattern[str]) -> str | None:
    """The first match's group 1 (the whole match without groups), stripped; None if nothing is found.

    The server's `majority` strategy reads answers the same way.
    """
    match = re.search(pattern, text)
    if match is None:
        return None
    found = match.group(1) if match.re.groups else match.group(0)
    return (found or "").strip() or None


def checker(name: CheckerName, answer_pattern: str | None = None) -> Callable[[str, str], bool]:
    """The checker for a name; with `answer_pattern` it judges only the extracted answer."""
    check = {"numeric": numeric_match, "exact": exact_match, "auto": auto_match}[name]
    if answer_pattern is None:
        return check
    pattern = re.compile(answer_pattern)

    def check_extracted(text: str, answer: str) -> bool:
        found = extract_answer(text, pattern)
        return found is not None and check(found, answer)

    return check_extracted
