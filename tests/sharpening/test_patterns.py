"""Answer patterns: RE2 compilation, the features it refuses, and linear-time matching."""

from __future__ import annotations

import time

import pytest

from server.sharpening import InvalidSharpening, SharpeningConfig
from server.sharpening.patterns import MAX_PATTERN_CHARS, PatternError, compile_pattern, extract_answer

# Patterns that make a backtracking engine take exponential (or huge polynomial) time.
PATHOLOGICAL = [
    r"^(\w+\s?)*$",
    r"(a+)+$",
    r"(a|aa)+$",
    r"(a|a?)+b",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
    r"(x+x+)+y",
    r"(.*a){12}",
    r"((ab)*|(ba)*|(a|b)*)*c",
]


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_pathological_patterns_match_long_text_in_linear_time(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    text = ("hello world " * 4000) + "!" + "a" * 5000
    started = time.perf_counter()
    extract_answer(text, compiled)
    assert time.perf_counter() - started < 2.0  # RE2: milliseconds; Python re: minutes


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "backreference"),
        (r"Answer(?= is)", "lookahead"),
        (r"(?<!not )yes", "lookbehind"),
        (r"(?>ab|a)c", "atomic group"),
        (r"a++b", "possessive quantifier"),
        (r"(\d)(?(1)a|b)", "conditional group"),
        (r"a{1001}", "repetition size"),
        (r"((a{100}){100}){100}", "repetition size"),
        ("(unclosed", "not a valid regex"),
        ("x" * (MAX_PATTERN_CHARS + 1), "limit is"),
    ],
)
def test_refused_patterns_say_why(pattern: str, feature: str) -> None:
    with pytest.raises(PatternError, match=feature):
        compile_pattern(pattern)


def test_refusal_names_the_request_field() -> None:
    with pytest.raises(InvalidSharpening) as info:
        SharpeningConfig(strategy="majority", answer_pattern=r"(\d+)\1").compiled_pattern()
    assert info.value.param == "sharpening.answer_pattern"
    assert "backreference" in str(info.value)


def test_extract_answer_reads_group_one_or_the_whole_match() -> None:
    assert extract_answer("so the answer: 42.", r"answer: (\d+)") == "42"
    assert extract_answer("so the answer: 42.", r"\d+") == "42"
    assert extract_answer("nothing here", r"answer: (\d+)") is None
    assert extract_answer("answer: x", r"answer: (\d+)?x") is None  # optional group took no part
