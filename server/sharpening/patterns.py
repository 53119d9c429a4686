"""Client-supplied answer patterns, compiled for RE2: matching takes time linear in the text.

Python's `re` backtracks, so a pattern such as `^(\\w+\\s?)*$` can take exponential time on
ordinary text. RE2 guarantees linear-time matching by leaving out the features that need
backtracking (backreferences, lookaround, atomic groups, possessive quantifiers); a pattern
that uses one is refused with the feature's name.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre
import re._parser as sre_parse
from typing import Any

import re2

from server.errors import InvalidRequest

MAX_PATTERN_CHARS = 1000
MAX_PROGRAM_BYTES = 8 << 20  # RE2's memory budget for one compiled pattern
Pattern = Any  # re2's compiled pattern type is not exported under a public name


class PatternError(InvalidRequest):
    """The pattern is not a valid regex, too long, or uses a feature RE2 cannot run."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Pattern:
    """The pattern compiled for RE2, or PatternError saying what is wrong with it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"is {len(pattern)} characters long; the limit is {MAX_PATTERN_CHARS}")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(explain(pattern, exc)) from None


def explain(pattern: str, exc: Exception) -> str:
    """Why RE2 refused a pattern, naming the unsupported feature when there is one."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as syntax:
        return f"is not a valid regex: {syntax}"
    feature = unsupported_feature(parsed)
    if feature:
        return f"uses {feature}, which the linear-time regex engine (RE2) does not support"
    detail = exc.args[0] if exc.args else exc
    detail = detail.decode() if isinstance(detail, bytes) else str(detail)
    return f"is not accepted by the linear-time regex engine (RE2): {detail}"


_FEATURES = {
    sre.GROUPREF: "a backreference",
    sre.GROUPREF_EXISTS: "a conditional group",
    sre.ATOMIC_GROUP: "an atomic group",
    sre.POSSESSIVE_REPEAT: "a possessive quantifier",
}


def unsupported_feature(parsed: Any) -> str | None:
    """The first backtracking-only feature in a parsed Python pattern, or None."""
    for op, arg in parsed:
        if op in _FEATURES:
            return _FEATURES[op]
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            return "a lookahead assertion" if arg[0] == 1 else "a lookbehind assertion"
        for child in _children(op, arg):
            found = unsupported_feature(child)
            if found:
                return found
    return None


def _children(op: Any, arg: Any) -> list[Any]:
    if op is sre.SUBPATTERN:
        return [arg[3]]
    if op is sre.BRANCH:
        return list(arg[1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        return [arg[2]]
    return []


def extract_answer(text: str, pattern: str | Pattern) -> str | None:
    """The first match's group 1 (the whole match when there is no group), stripped; None if absent.

    A match whose group 1 did not take part (an optional group) is no answer.
    """
    if isinstance(pattern, str):
        pattern = compile_pattern(pattern)
    match = pattern.search(text)
    if match is None:
        return None
    found = match.group(1) if pattern.groups else match.group(0)
    return (found or "").strip() or None
