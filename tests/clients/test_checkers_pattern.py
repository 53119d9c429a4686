"""Checkers that judge only the answer a regex extracts."""

from clients.checkers import checker


def test_pattern_checker_extracts_the_letter() -> None:
    check = checker("exact", r"Answer: ([A-D])")
    assert check("Let me think. Answer: C", "C")
    assert not check("Answer: B", "C")
    assert not check("C", "C")  # no match counts as wrong


def test_pattern_checker_composes_with_numeric() -> None:
    check = checker("numeric", r"= (-?\d+)")
    assert check("7 + 5 = 12, and 99 more", "12")
    assert not check("7 + 5 = 13", "12")


def test_no_pattern_is_the_plain_checker() -> None:
    assert checker("auto")("the answer is 12", "12")


def test_an_optional_group_that_did_not_match_is_no_answer() -> None:
    check = checker("auto", r"answer:\s*(\d+)?")
    assert not check("answer: none given", "4")
    assert check("answer: 4", "4")
