"""Quality-benchmark data: loaders, prompts, answer patterns, checkers, determinism, export."""

import json
import re
from pathlib import Path

import pytest

from benchmarks.common.datasets import (
    ARITHMETIC_PATTERN,
    LETTER_PATTERN,
    NUMBER_PATTERN,
    TASKS,
    Item,
    check_arithmetic,
    check_letter,
    check_number,
    load_task,
    main,
)
from clients.checkers import extract_answer

TASK_NAMES = sorted(TASKS)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_loader_returns_requested_number_of_well_formed_items(name: str) -> None:
    items = load_task(name, 25)
    assert len(items) == 25
    assert len({item.id for item in items}) == 25
    for item in items:
        assert isinstance(item, Item)
        assert item.id.startswith(f"{name}-")
        assert item.answer.strip() == item.answer != ""
        assert item.answer_pattern == TASKS[name].answer_pattern
        assert [m["role"] for m in item.messages] == ["user", "assistant", "user"]
        assert all(m["content"].strip() for m in item.messages)
        assert item.messages[0]["content"] != item.messages[2]["content"]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_one_shot_example_is_in_the_answer_format(name: str) -> None:
    task = TASKS[name]
    example = load_task(name, 1)[0].messages[1]["content"]
    found = extract_answer(example, task.answer_pattern)
    assert found is not None
    assert task.check(example, found)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_checker_accepts_the_answer_and_rejects_others(name: str) -> None:
    task = TASKS[name]
    for item in load_task(name, 20):
        assert task.check(f"Some reasoning.\nAnswer: {item.answer}", item.answer)
        wrong = "Z" if task.answer_pattern == LETTER_PATTERN else str(int(item.answer) + 1)
        assert not task.check(f"Answer: {wrong}", item.answer)
        assert not task.check("I do not know.", item.answer)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_items_are_deterministic_and_a_longer_list_extends_a_shorter_one(name: str) -> None:
    assert load_task(name, 30) == load_task(name, 30)
    assert load_task(name, 10) == load_task(name, 30)[:10]


@pytest.mark.parametrize(("name", "size"), [("gsm8k", 1319), ("arc_easy", 2376), ("arithmetic", 1000)])
def test_full_task_sizes(name: str, size: int) -> None:
    items = load_task(name)
    assert len(items) == size
    assert len({item.id for item in items}) == size


def test_gsm8k_answers_are_integers_the_checker_reads() -> None:
    for item in load_task("gsm8k"):
        assert re.fullmatch(r"-?\d+", item.answer), item.answer
        assert check_number(f"Answer: {item.answer}", item.answer)


def test_arc_easy_answer_is_one_of_the_offered_letters() -> None:
    for item in load_task("arc_easy"):
        question = item.messages[2]["content"]
        assert question.startswith("Question: ")
        assert f"\n{item.answer}. " in question
        assert "Answer:" in question  # only in the instruction, not left over from the source query
        assert question.count("Answer:") == 1


def test_arithmetic_answers_are_the_values_of_the_expressions() -> None:
    items = load_task("arithmetic")
    questions = [item.messages[2]["content"] for item in items]
    assert len(set(questions)) == len(questions)
    for item, question in zip(items, questions, strict=True):
        match = re.match(r"What is (\d{1,2}) ([+-]) (\d{1,2})\?", question)
        assert match is not None, question
        a, op, b = int(match[1]), match[2], int(match[3])
        assert int(item.answer) == (a + b if op == "+" else a - b) >= 0


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("Answer: 18", "18", True),
        ("So she makes $18 a day.\nAnswer: $18.", "18", True),
        ("Answer: **1,250**", "1250", True),
        ("Answer: 18.0", "18", True),
        ("answer: -3", "-3", True),
        ("Answer: 17", "18", False),
        ("Answer: 180", "18", False),
        ("18", "18", False),
        ("2 + 16 = 18", "18", False),
        ("Answer: 12\nAnswer: 18", "18", False),
    ],
)
def test_check_number(text: str, answer: str, expected: bool) -> None:
    assert check_number(text, answer) is expected


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("7 - 4 = 3", "3", True),
        ("23 + 19 = 42\nAnswer: 42", "42", True),
        ("Answer: 42", "42", True),
        ("9 - 4 = 4", "5", False),
        ("The answer is 5", "5", False),
    ],
)
def test_check_arithmetic(text: str, answer: str, expected: bool) -> None:
    assert check_arithmetic(text, answer) is expected


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("Answer: B", "B", True),
        ("Answer: (C)", "C", True),
        ("Answer: **D**", "D", True),
        ("Answer: A. air temperature", "A", True),
        ("Answer: C", "B", False),
        ("Answer: a bird", "A", False),
        ("B", "B", False),
    ],
)
def test_check_letter(text: str, answer: str, expected: bool) -> None:
    assert check_letter(text, answer) is expected


@pytest.mark.parametrize("pattern", [NUMBER_PATTERN, ARITHMETIC_PATTERN, LETTER_PATTERN])
def test_patterns_have_the_answer_in_group_one(pattern: str) -> None:
    assert re.compile(pattern).groups == 1


def test_load_task_rejects_unknown_names_and_negative_limits() -> None:
    with pytest.raises(KeyError):
        load_task("nope")
    with pytest.raises(ValueError):
        load_task("arithmetic", -1)
    assert load_task("arithmetic", 0) == []


def test_export_writes_messages_and_answer_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    assert main(["export", "arc_easy", "--limit", "3", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    items = load_task("arc_easy", 3)
    assert rows == [{"messages": item.messages, "answer": item.answer} for item in items]
