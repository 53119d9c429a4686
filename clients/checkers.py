"""Answer checkers: does a completion's text give the reference answer? (pure)"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import Literal

from server.sharpening.patterns import compile_pattern, extract_answer

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


def checker(name: CheckerName, answer_pattern: str | None = None) -> Callable[[str, str], bool]:
    """The checker for a name; with `answer_pattern` it judges only the extracted answer."""
    check = {"numeric": numeric_match, "exact": exact_match, "auto": auto_match}[name]
    if answer_pattern is None:
        return check
    pattern = compile_pattern(answer_pattern)

    def check_extracted(text: str, answer: str) -> bool:
        found = extract_answer(text, pattern)
        return found is not None and check(found, answer)

    return check_extracted
